"""What the browser tests share: Debian's Chromium driven by Playwright's Python API (no browser download), and
a built site served from a folder over a local HTTP server."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tools import require, require_module

from publisher.review import CHROMIUM_FLAGS  # the headless flags that work on these machines (../shared/TESTING.md)
from publisher.review import chromium_path as find_chromium


def chromium_path() -> str:
    """Chromium's executable and Playwright's package, or the test fails (CI=true) or skips (`tools.require`)."""
    path = find_chromium()
    require(path is not None, "Chromium", "apt-get install chromium")
    require_module("playwright")
    return path  # type: ignore[return-value]


@contextmanager
def chromium() -> Iterator[object]:
    """A launched headless Chromium (a Playwright Browser), closed afterwards."""
    path = chromium_path()
    import playwright.sync_api as playwright_api

    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # type: ignore[no-untyped-def]  # noqa: A002 (the base class's name)
        pass


@contextmanager
def served_folder(directory: Path) -> Iterator[str]:
    """`directory` over HTTP on 127.0.0.1; yields the base URL ("http://127.0.0.1:PORT/")."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
