"""A Flask app on a real socket, and Debian's Chromium driven by Playwright.

Browser tests and the API's property-based run talk real HTTP to the app, served from a
werkzeug thread of the test process (so the fake Twilio, ``responses``, still catches
its REST calls). No Chromium is a failure, never a skip.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from playwright.sync_api import Browser, sync_playwright
from werkzeug.serving import make_server

CHROMIUM_ARGS = [
    "--no-sandbox",  # running as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@contextmanager
def serving(app: Flask, port: int = 0) -> Iterator[int]:
    """Serve ``app`` on 127.0.0.1 (``port``, or any free one) until the block ends;
    yields the port."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(10)


def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError("Debian's chromium is not installed: run scripts/test (apt chromium)")
    return path


@contextmanager
def launched_chromium() -> Iterator[Browser]:
    """Debian's Chromium (Playwright never downloads one), headless."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
