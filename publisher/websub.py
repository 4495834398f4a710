"""WebSub (W3C Recommendation, formerly PubSubHubbub): tell the hubs in `feeds.hubs` that feeds changed.

Discovery is in the feeds themselves (feeds.py: rel="hub" and rel="self" links, JSON Feed's `hubs`). Once a
deploy has put changed feeds live (uploads done, stale files deleted, CloudFront invalidation asked for), it
sends each hub a form-encoded POST: `hub.mode=publish` and one `hub.url` per changed feed, the feed's rel="self"
URL (its topic). WebSub leaves the publish request to the hub (section 7); this is the form PubSubHubbub 0.4 hubs
take (pubsubhubbub.appspot.com, Superfeedr, WordPress' hubs): repeated `hub.url`s, at most 100 a request (as
Google's reference publisher batches them), and any 2xx (usually 204 No Content) is success.

A ping never fails a deploy: a network error, a timeout, 429 or a 5xx is retried after a pause that doubles (a
hub's Retry-After is honoured up to `max_pause`), then logged as a warning; a 4xx (or a redirect, which would
turn the POST into a GET) is logged at once, since asking again gets the same answer. Pauses go through the
injectable `sleep`, so tests never wait.
"""

from __future__ import annotations

import http.client
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import urlencode

from . import __version__

log = logging.getLogger(__name__)

BATCH = 100  # topics a request


@dataclass(frozen=True)
class HubPing:
    """How one publish request to one hub went."""

    hub: str
    feeds: tuple[str, ...]  # the topics (feed URLs) it named
    status: int | None  # the hub's last HTTP status; None when it never answered
    attempts: int
    error: str | None = None  # why the hub did not take it; None when it did

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        feeds = f"{len(self.feeds)} feed{'s' if len(self.feeds) != 1 else ''}"
        if self.ok:
            return f"{self.hub} took {feeds} ({self.status})"
        return f"{self.hub} was not told about {feeds}: {self.error}"


def summary(pings: Sequence[HubPing]) -> str:
    """The WebSub pings of a deploy as one clause for the CLI and `publish` ("" when there were none):
    "pinged 2 WebSub hubs about 5 changed feeds", or "pinged 1 of 2 ...; not told: <hub> (<why>)"."""
    if not pings:
        return ""
    hubs = list(dict.fromkeys(p.hub for p in pings))
    failed: dict[str, HubPing] = {}
    for ping in pings:
        if not ping.ok:
            failed.setdefault(ping.hub, ping)
    feeds = len({f for p in pings for f in p.feeds})
    told = len(hubs) - len(failed)
    text = (f"pinged {f'{told} of {len(hubs)}' if failed else told} WebSub hub{'s' if len(hubs) != 1 else ''} "
            f"about {feeds} changed feed{'s' if feeds != 1 else ''}")
    if failed:
        text += "; not told: " + ", ".join(f"{hub} ({ping.error})" for hub, ping in failed.items())
    return text


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would follow a 301/302/303 to a POST with a GET without the form: report the redirect instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


_RETRY_STATUS = frozenset({408, 425, 429}) | frozenset(range(500, 600))


@dataclass
class Notifier:
    """Sends the publish pings. Defaults suit a deploy: about 5 s at most per attempt, 4 attempts, pauses of
    1, 2 and 4 s between them; hubs are told in parallel, so one slow hub does not hold up the others."""

    timeout: float = 5.0
    attempts: int = 4
    backoff: float = 1.0  # the first pause; each next one doubles
    max_pause: float = 10.0  # a longer Retry-After is cut to this: a deploy waits at most about half a minute
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    user_agent: str = f"publisher/{__version__} (WebSub publisher)"

    def notify(self, hubs: Sequence[str], feeds: Sequence[str]) -> list[HubPing]:
        """Tell every hub about every feed URL in `feeds`; one HubPing per request, in the order of `hubs`.
        Never raises for anything the network or a hub does."""
        feeds = list(dict.fromkeys(feeds))  # each topic once, in order
        if not hubs or not feeds:
            return []
        batches = [tuple(feeds[i:i + BATCH]) for i in range(0, len(feeds), BATCH)]
        jobs = [(hub, batch) for hub in hubs for batch in batches]
        with ThreadPoolExecutor(min(8, len(hubs))) as pool:
            pings = list(pool.map(lambda job: self._safe_ping(*job), jobs))
        for ping in pings:
            if ping.ok:
                log.debug("WebSub: %s", ping.describe())  # the CLI and publish say it in their summary
            else:
                log.warning("WebSub: %s; the site is deployed, subscribers of the hub see the change when it "
                            "next polls the feeds", ping.describe())
        return pings

    def _safe_ping(self, hub: str, feeds: tuple[str, ...]) -> HubPing:
        try:
            return self._ping(hub, feeds)
        except Exception as exc:  # a ping is a courtesy: even a bug here must not fail the deploy
            log.debug("WebSub ping to %s failed unexpectedly", hub, exc_info=True)
            return HubPing(hub, feeds, None, 0, f"unexpected error: {type(exc).__name__}: {exc}")

    def _ping(self, hub: str, feeds: tuple[str, ...]) -> HubPing:
        body = urlencode([("hub.mode", "publish")] + [("hub.url", url) for url in feeds]).encode("ascii")
        opener = urllib.request.build_opener(_NoRedirect)
        status: int | None = None
        error = "no attempt was made"
        attempt = 0
        for attempt in range(1, max(1, self.attempts) + 1):
            request = urllib.request.Request(hub, data=body, method="POST", headers={
                "Content-Type": "application/x-www-form-urlencoded", "User-Agent": self.user_agent})
            retry_after: float | None = None
            try:
                with opener.open(request, timeout=self.timeout) as response:
                    status = response.status
                    response.read(4096)
                if 200 <= status < 300:
                    return HubPing(hub, feeds, status, attempt)
                error, again = f"HTTP {status}", False  # a 1xx or an odd answer: asking again would not help
            except urllib.error.HTTPError as exc:
                status = exc.code
                error = _http_error(exc)
                again = exc.code in _RETRY_STATUS
                retry_after = _retry_after(exc.headers)
                exc.close()
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:  # OSError: timeouts too
                status = None
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                error, again = f"no answer ({_reason(reason)})", True
            except ValueError as exc:  # a URL urllib cannot send (the config validator should have caught it)
                return HubPing(hub, feeds, None, attempt, f"cannot be asked: {exc}")
            if not again or attempt >= self.attempts:
                break
            pause = self.backoff * 2 ** (attempt - 1)
            if retry_after is not None:
                pause = max(pause, retry_after)
            self.sleep(min(pause, self.max_pause))
        tried = f" after {attempt} attempts" if attempt > 1 else ""
        return HubPing(hub, feeds, status, attempt, error + tried)


def _http_error(exc: urllib.error.HTTPError) -> str:
    if 300 <= exc.code < 400:
        return f"HTTP {exc.code}, a redirect to {exc.headers.get('Location', '?')} (put that URL in feeds.hubs)"
    try:
        text = exc.read(200).decode("utf-8", "replace")
    except OSError:
        text = ""
    text = " ".join(text.split())
    return f"HTTP {exc.code}" + (f" {text!r}" if text else f" {exc.reason}" if exc.reason else "")


def _retry_after(headers: Message | None) -> float | None:
    value = (headers or {}).get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None  # an HTTP date would need the clock: back off instead


def _reason(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    return str(reason) or type(reason).__name__
