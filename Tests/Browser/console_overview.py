#!/usr/bin/env python3
"""Opens the console's overview in a real browser (the system Chromium, driven by Playwright;
no browser download) and prints what a person would read, as one JSON object.

Usage: console_overview.py URL [--screenshot FILE] [--chromium /usr/bin/chromium]

Printed: the page title and heading, the number in each (target, state) cell of the
transmissions table, the readiness text, the header's computed background colour (the
stylesheet applied under the page's Content-Security-Policy), and every console message and
failed request (a CSP violation shows up there). Exit 0 when the page loaded, 1 otherwise.
"""
import argparse
import json
import sys

from playwright.sync_api import sync_playwright


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--screenshot")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    with sync_playwright() as p:
        # --no-sandbox: Chromium refuses its sandbox as root (CI runs as root); the page is local.
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"], timeout=30_000)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1400})
            messages, failed = [], []
            page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
            page.on("requestfailed", lambda r: failed.append(r.url))
            response = page.goto(args.url, wait_until="load", timeout=15_000)
            cells = {}
            for cell in page.query_selector_all("td[data-target][data-state]"):
                key = f"{cell.get_attribute('data-target')}/{cell.get_attribute('data-state')}"
                cells[key] = int(cell.inner_text().strip())
            result = {
                "status": response.status if response else None,
                "title": page.title(),
                "heading": page.inner_text("main h2"),
                "cells": cells,
                "ready": page.inner_text("#ready"),
                "header_background": page.eval_on_selector("header", "e => getComputedStyle(e).backgroundColor"),
                "console": messages,
                "failed_requests": failed,
            }
            if args.screenshot:
                page.screenshot(path=args.screenshot, full_page=True)
        finally:
            browser.close()
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["status"] == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
