#!/usr/bin/env python3
"""Drives the console's login and Échecs page in a real browser (the system Chromium, through
Playwright; no browser download) as a person would, and prints what happened as one JSON object.

Usage: console_failures.py CONSOLE_URL --transmission ID --operator NAME:PASSWORD --reader NAME:PASSWORD
                           [--screenshots DIR] [--chromium /usr/bin/chromium]

Steps: the Échecs page sends to the login page; a wrong password is refused; the reader
(lecteur) signs in, sees the failures without any action button, and a POST with their valid
CSRF token is still refused (403); they sign out and the page asks for a login again. The
operator signs in; a forged POST without CSRF token is refused (403); they tick transmission
ID, press Renvoyer, read the confirmation page, confirm, and read the result; then sign out.
Every console message and failed request is recorded (a CSP violation shows up there).
Exit 0 when every step could be run (the caller checks the values), 1 otherwise.
"""
import argparse
import json
import os
import sys

from playwright.sync_api import sync_playwright


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--transmission", required=True)
    parser.add_argument("--operator", required=True)
    parser.add_argument("--reader", required=True)
    parser.add_argument("--screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    base = args.url if args.url.endswith("/") else args.url + "/"
    result = {"steps": []}

    def shot(page, name):
        if args.screenshots:
            os.makedirs(args.screenshots, exist_ok=True)
            page.screenshot(path=os.path.join(args.screenshots, name), full_page=True)

    def login(page, credentials):
        name, password = credentials.split(":", 1)
        page.fill("#nom", name)
        page.fill("#mot_de_passe", password)
        with page.expect_navigation():
            page.click("form.login button[type=submit]")

    with sync_playwright() as p:
        # --no-sandbox: Chromium refuses its sandbox as root (CI runs as root); the pages are local.
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"], timeout=30_000)
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            page = context.new_page()
            messages, failed = [], []
            page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
            page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))

            # Not signed in: the login page, then a wrong password.
            page.goto(base + "echecs", wait_until="load", timeout=15_000)
            result["redirected_to_login"] = "/console/connexion" in page.url
            shot(page, "connexion.png")
            login(page, args.reader.split(":", 1)[0] + ":not-the-password")
            result["bad_password_message"] = page.inner_text("#login-error") if page.query_selector("#login-error") else None

            # The reader: reads, cannot act, even with a valid token.
            login(page, args.reader)
            result["reader_landed"] = page.url
            result["reader_viewer"] = page.inner_text("#viewer")
            result["reader_rows"] = len(page.query_selector_all("tr[data-transmission]"))
            result["reader_action_buttons"] = len(page.query_selector_all("button[name=action]"))
            token = page.get_attribute("header form input[name=csrf]", "value")
            refused = page.request.post(base + "echecs/confirmer", form={"csrf": token, "action": "renvoyer", "id": args.transmission},
                                        max_redirects=0)
            result["reader_post_status"] = refused.status
            with page.expect_navigation():
                page.click("header form button[type=submit]")  # Se déconnecter
            result["after_logout_url"] = page.url
            page.goto(base + "echecs", wait_until="load")
            result["after_logout_asks_login"] = "/console/connexion" in page.url

            # The operator.
            login(page, args.operator)
            result["operator_viewer"] = page.inner_text("#viewer")
            result["operator_rows"] = len(page.query_selector_all("tr[data-transmission]"))
            result["failed_before"] = page.get_attribute(f"tr[data-transmission='{args.transmission}']", "data-state")
            shot(page, "echecs.png")
            forged = page.request.post(base + "echecs/executer", form={"action": "renvoyer", "id": args.transmission}, max_redirects=0)
            result["forged_post_status"] = forged.status
            result["forged_post_text"] = forged.text()[:2000]
            page.reload(wait_until="load")
            result["state_after_forged_post"] = page.get_attribute(f"tr[data-transmission='{args.transmission}']", "data-state")

            page.check(f"input[name=id][value='{args.transmission}']")
            with page.expect_navigation():
                page.click("button[name=action][value=renvoyer]")
            result["confirmation_heading"] = page.inner_text("main h2")
            result["confirmation_summary"] = page.inner_text("#summary")
            result["confirmation_rows"] = len(page.query_selector_all("#effects tr[data-transmission]"))
            shot(page, "confirmation.png")
            with page.expect_navigation():
                page.click("#confirm")
            result["done"] = page.inner_text("#done") if page.query_selector("#done") else None
            result["done_url"] = page.url
            result["header_background"] = page.eval_on_selector("header", "e => getComputedStyle(e).backgroundColor")
            with page.expect_navigation():
                page.click("header form button[type=submit]")
            result["operator_logged_out"] = "/console/connexion" in page.url
            result["console"] = messages
            result["failed_requests"] = failed
            ok = True
        except Exception as error:  # the caller prints what was reached
            result["error"] = repr(error)
            ok = False
        finally:
            browser.close()
    print(json.dumps(result, ensure_ascii=False))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
