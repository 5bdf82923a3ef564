#!/usr/bin/env python3
"""Walks the console's pages in a real browser (the system Chromium, driven by Playwright; no
browser download) as a person would, and prints what they read as one JSON object.

Usage: console_pages.py BASE_URL [--screenshots DIR] [--chromium /usr/bin/chromium]

BASE_URL is the console's root (http://127.0.0.1:PORT/console/). The walk: the overview's
activity chart; File d'attente filtered on DMP through the form, Page suivante, Première page,
then the failed ones; the first document's page from its link; the Rapport page, and its CSV
downloaded through its link. Every console message and failed request is collected (a CSP
violation shows up there). With --screenshots, overview.png, queue.png, document.png and
rapport.png are written into DIR. Exit 0 when every page answered 200, 1 otherwise.
"""
import argparse
import json
import os
import sys
import tempfile

from playwright.sync_api import sync_playwright


def rows(page):
    return [int(r.get_attribute("data-id")) for r in page.query_selector_all("#queue tbody tr")]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("--screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    def shot(page, name):
        if args.screenshots:
            page.screenshot(path=os.path.join(args.screenshots, name), full_page=True)

    statuses = []
    with sync_playwright() as p:
        # --no-sandbox: Chromium refuses its sandbox as root (CI runs as root); the pages are local.
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"], timeout=30_000)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
            page = context.new_page()
            messages, failed = [], []
            page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.on("response", lambda r: statuses.append(r.status) if r.request.resource_type == "document" else None)

            page.goto(args.base, wait_until="load", timeout=15_000)
            overview = {
                "bars": len(page.query_selector_all("#activity-chart rect.bar")),
                "received_day": int(page.inner_text("#received-day")),
                "bar_fill": page.eval_on_selector("#activity-chart rect.bar.received", "e => getComputedStyle(e).fill"),
            }
            shot(page, "overview.png")

            # File d'attente through the navigation and the filter form.
            page.click("header nav >> text=File d’attente")
            page.select_option("select[name=destination]", "dmp")
            page.click("#queue-filters button[type=submit]")
            page.wait_for_load_state("load")
            queue = {"filtered_url": page.url, "first_page": rows(page),
                     "targets": sorted({t.inner_text() for t in page.query_selector_all("#queue tbody tr td:nth-child(3)")})}
            shot(page, "queue.png")
            page.click("#next-page")
            page.wait_for_load_state("load")
            queue["second_page"] = rows(page)
            queue["next_on_second"] = page.query_selector("#next-page") is not None
            page.click("#first-page")
            page.wait_for_load_state("load")
            queue["back_to_first"] = rows(page)
            page.select_option("select[name=etat]", "failed")
            page.click("#queue-filters button[type=submit]")
            page.wait_for_load_state("load")
            queue["failed"] = rows(page)
            queue["failed_error"] = page.inner_text("#queue tbody tr td.message")

            # The first failed transmission's document, from its link.
            page.click("#queue tbody tr td:nth-child(2) a")
            page.wait_for_load_state("load")
            document = {
                "id": page.inner_text("#document-id"),
                "masked_ins": page.inner_text("#masked-ins-1"),
                "transmissions": len(page.query_selector_all("article.transmission")),
                "attempts": len(page.query_selector_all("table.attempts tbody tr")),
                "text": page.inner_text("main"),
            }
            shot(page, "document.png")

            # Rapport, and its CSV through the download link.
            page.click("header nav >> text=Rapport")
            page.wait_for_load_state("load")
            report = {
                "heading": page.inner_text("#report h1"),
                "tables": len(page.query_selector_all("#report table")),
                # rapport.css applies (h2 underlined in the report's blue) under the CSP.
                "h2_border": page.eval_on_selector("#report h2", "e => getComputedStyle(e).borderBottomColor"),
            }
            shot(page, "rapport.png")
            with page.expect_download(timeout=15_000) as info:
                page.click("#download-csv")
            download = info.value
            path = os.path.join(tempfile.mkdtemp(), download.suggested_filename)
            download.save_as(path)
            with open(path, "rb") as f:
                data = f.read()
            report["csv_name"] = download.suggested_filename
            # passerelle report's CSV starts with a UTF-8 BOM (for spreadsheets).
            report["csv_bom"] = data.startswith(b"\xef\xbb\xbf")
            report["csv_first_line"] = data.decode("utf-8-sig").splitlines()[0]
        finally:
            browser.close()
    result = {"overview": overview, "queue": queue, "document": document, "report": report,
              "statuses": statuses, "console": messages, "failed_requests": failed}
    print(json.dumps(result, ensure_ascii=False))
    return 0 if statuses and all(s == 200 for s in statuses) else 1


if __name__ == "__main__":
    sys.exit(main())
