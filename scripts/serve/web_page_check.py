#!/usr/bin/env python3
"""Drives `mixmoe serve`'s web page with headless Chromium, as a user would.

  python3 scripts/serve/web_page_check.py [--binary .build/release/mixmoe] [--model models/base]
      [--text "Datei konnte nicht geöffnet werden."] [--screenshot docs/images/serve_page.png]

Starts the server on a free loopback port, opens http://127.0.0.1:PORT/ in Debian's `chromium`
(driven by Playwright: `pip install playwright`; no browser download, the system Chromium is
used), types the text, picks German -> English, clicks Translate, waits for the result, and
checks that the translation in the DOM equals the /v1/translate answer for the same text. Saves a
screenshot, prints the translation and the time the page shows, and exits non-zero on any
mismatch. The server is stopped with SIGTERM.
"""
import argparse, json, shutil, signal, sys, time, urllib.request

from playwright.sync_api import sync_playwright
from serve_util import start_server


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/mixmoe")
    ap.add_argument("--model", default="models/base")
    ap.add_argument("--text", default="Datei konnte nicht geöffnet werden.")
    ap.add_argument("--screenshot", default="docs/images/serve_page.png")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    a = ap.parse_args()

    srv, port = start_server(a.binary, a.model, ["--threads", "2"])
    base = f"http://127.0.0.1:{port}"
    try:
        req = urllib.request.Request(base + "/v1/translate", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"source_lang": "de", "target_lang": "en", "text": [a.text]}).encode())
        with urllib.request.urlopen(req, timeout=120) as r:
            want = json.loads(r.read())["translations"][0]

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=a.chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 900, "height": 560})
            t0 = time.perf_counter()
            page.goto(base + "/")
            page.wait_for_function("document.getElementById('model').textContent !== '…'")
            page.select_option("#from", "de")
            page.select_option("#to", "en")
            page.fill("#source", a.text)
            page.click("#translate")
            page.wait_for_function("document.getElementById('time').textContent.includes(' s,')", timeout=120_000)
            got = page.inner_text("#result")
            shown = page.inner_text("#time")
            model = page.inner_text("#model")
            page.screenshot(path=a.screenshot)
            browser.close()
        print(json.dumps({"model": model, "source": a.text, "dom_translation": got, "api_translation": want, "page_time": shown,
                          "seconds_in_browser": round(time.perf_counter() - t0, 2), "screenshot": a.screenshot},
                         ensure_ascii=False, indent=1))
        ok = got == want
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(timeout=60)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
