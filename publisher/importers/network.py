"""Reading http(s) URLs for an import (a feed's pages, an issue's images): whatever answers is untrusted, so every
response is size-limited and time-limited, and only http(s) is fetched, redirects included."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from ..errors import PublisherError

MAX_BYTES = 5 * 1024 * 1024  # one feed page
TIMEOUT = 15.0  # seconds without a byte
TOTAL_TIMEOUT = 120.0  # seconds for one whole response (a server that drips a byte at a time)
FEED_TYPES = "application/atom+xml, application/rss+xml, application/feed+json, application/xml;q=0.9, */*;q=0.5"


class _OnlyHttpRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise PublisherError(f"{req.full_url} redirects to {newurl}, which is not http(s)",
                                 hint="only http(s) URLs are fetched")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def read_limited(stream: Any, where: str, limit: int, deadline: float | None = None) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        if deadline is not None and time.monotonic() > deadline:
            raise PublisherError(f"{where} took longer than {TOTAL_TIMEOUT:.0f} s to download; refused")
        chunk = stream.read(min(65536, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise PublisherError(f"{where} is larger than the limit of {limit // 1024} KiB; refused",
                                 hint="is it really what was meant? import a smaller file")


def fetch(url: str, *, limit: int = MAX_BYTES, timeout: float = TIMEOUT, accept: str = FEED_TYPES
          ) -> tuple[bytes, str]:
    """GET an http(s) URL: (body, its Content-Type); at most `limit` bytes, `timeout` seconds per blocking step,
    redirects to http(s) only."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise PublisherError(f"{url} is not an http(s) URL", hint="give an http(s) URL or a file path")
    opener = urllib.request.build_opener(_OnlyHttpRedirects)
    request = urllib.request.Request(url, headers={"User-Agent": "publisher-import/1", "Accept": accept})
    try:
        with opener.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > limit:
                raise PublisherError(f"{url} is larger than the limit of {limit // 1024} KiB "
                                     f"({int(length)} bytes); refused", hint="import a smaller file")
            body = read_limited(response, url, limit, time.monotonic() + TOTAL_TIMEOUT)
            return body, response.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        raise PublisherError(f"{url} answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise PublisherError(f"{url} could not be read: {reason}") from None


def fetch_url(url: str, *, limit: int = MAX_BYTES, timeout: float = TIMEOUT) -> bytes:
    """The body at an http(s) URL (see `fetch`)."""
    return fetch(url, limit=limit, timeout=timeout)[0]


def is_url(text: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text)) and not re.match(r"^[A-Za-z]:[\\/]", text)
