"""The subscribe / confirm / unsubscribe / preferences web endpoint (`publisher serve`): a small ASGI app (Starlette).

A static site cannot take a sign-up or an unsubscribe click, so this is the one piece that runs as a server
(behind a reverse proxy, or on AWS Lambda with the SES contact-list store).
- POST /subscribe (form or JSON: email, name): double opt-in. The address is stored `unconfirmed` and gets a
  confirmation link; the answer is the same whether the address was known or not (no list enumeration).
  The answer comes before any work on the address: the store lookup and the confirmation email run on one
  background worker thread (`ConfirmationWorker`), so a known and an unknown address take the same time too.
- GET (and HEAD) /confirm?token=...: a page with one button; POST /confirm?token=... makes an `unconfirmed`
  subscriber `active` (idempotent). The token is bound to the record as it was when the email went out, so an
  unsubscribe (or a new sign-up) voids it: unsubscribing wins. When `content/_welcome.md` exists, the same
  transaction queues the subscriber's welcome email, and the worker then sends it (welcome.py: exactly once).
- GET (and HEAD) /unsubscribe?token=...: a page with one button. POST with `List-Unsubscribe=One-Click` (RFC
  8058, what Gmail and Yahoo send) unsubscribes at once, with no page.
  GET and HEAD never change anything: mail scanners open (and HEAD) every link in a message.
- GET (and HEAD) /preferences?token=... and /change-address?token=...: the reader's preferences page (topics,
  pause, new address, unsubscribe, download my data), each change a POST form; see preferences.py.
- Abuse: per-IP and per-address rate limits on /subscribe, a honeypot field, a body size limit and read timeout,
  redirects only into the site, CORS only for the site, security headers on every answer (404, 405 and 500 too),
  tokens kept out of the access log, and (`serve`) limits on connections and on slow request headers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import html
import json
import logging
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import parse_qs, urlsplit

import uvicorn
import uvicorn.config
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from . import clock as clock_mod
from . import messages, welcome
from .config import Config
from .emails import Sender, sender_of, subject_header
from .errors import PublisherError
from .messages import N_
from .subscribers import SUPPRESSED, Store, Subscriber, normalize_email, open_store, validate_subscriber
from .themes import load_theme
from .tokens import InvalidToken, TokenData, make_token, secret_from_env, verify_token
from .transports import Transport, TransportError, transport_for

log = logging.getLogger(__name__)

HONEYPOT = "website"  # a field people never see and bots fill in
# Limits on slow or many clients. Not settings: a proxy in front (deploy/nginx) is where to tune them.
BODY_TIMEOUT = 10.0  # seconds for a request body to arrive once its headers are in
HEADER_TIMEOUT = 10.0  # seconds for a request line and headers, from the connection's start or the last response
TIMEOUT_KEEP_ALIVE = 5  # seconds an idle kept-alive connection stays open
LIMIT_CONCURRENCY = 200  # connections and requests at once; more get 503 (leaves file descriptors to spare)
BACKLOG = 256
MAX_HEADER_BYTES = 8 * 1024  # request line and headers (tokens are well under 1 KB)
# On SIGTERM: first the requests in flight, then the queued confirmations (together under systemd's 30 s).
GRACEFUL_TIMEOUT = 10
SHUTDOWN_TIMEOUT = 15.0
# Welcome emails per send pass on the worker: a backlog (an import with --welcome) goes out in passes between the
# confirmations queued meanwhile, not ahead of them all.
WELCOME_BATCH = 50

# What the pages and answers say: msgids of the theme's message catalogues (messages.py), shown in the site's
# language. A key and its "_body" make a page's heading and text; a JSON answer gives the text (or the heading).
TEXT = {
    "check": N_("Check your inbox"),
    "check_body": N_("If this address can subscribe, we have just sent it a confirmation email: click its link to "
                     "finish subscribing."),
    "confirmed": N_("You are subscribed"), "confirmed_body": N_("Thank you! Every new issue will reach your inbox."),
    "bad": N_("This link does not work"), "bad_body": N_("The link is incomplete, was changed, or has expired."),
    "unsub_q": N_("Unsubscribe"), "unsub_q_body": N_("Press the button to stop receiving this newsletter."),
    "unsub_button": N_("Unsubscribe"),
    "unsubscribed": N_("You are unsubscribed"), "unsubscribed_body": N_("You will not receive this newsletter again."),
    "confirm_q": N_("Confirm your subscription"), "confirm_q_body": N_("Press the button to finish subscribing."),
    "confirm_button": N_("Confirm"),
    "slow": N_("Too many requests"), "slow_body": N_("Please try again later."),
    "invalid": N_("Invalid address"), "invalid_body": N_("This is not an email address we can send to."),
    "invalid_name": N_("Invalid name"),
    "invalid_name_body": N_("The name has characters that cannot be used, or is too long."),
    "too_large": N_("Too large"), "token": N_("Invalid link"), "done": N_("Unsubscribed"),
    "not_found": N_("Not found"), "error": N_("Something went wrong. Please try again later."),
    "method": N_("Method not allowed"), "timeout": N_("The request took too long"),
}
HTTP_ERRORS = {404: "not_found", 405: "method", 408: "timeout", 413: "too_large"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # tokens travel in URLs: never leak them to another site
    "Cache-Control": "no-store",
    "Strict-Transport-Security": "max-age=31536000",
}


class RateLimiter:
    """At most `limit` hits per key in a sliding `window` (seconds). In memory: per process (per Lambda
    instance), which stops floods and scripts; the proxy or a WAF is the place for a distributed attacker."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.hits: dict[str, deque[float]] = defaultdict(deque)
        self.lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self.lock:
            hits = self.hits[key]
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            if len(self.hits) > 100_000:  # forget idle keys so memory stays bounded
                for stale in [k for k, v in self.hits.items() if not v or v[-1] <= now - self.window][:50_000]:
                    del self.hits[stale]
            return True


class ConfirmationWorker:
    """One background thread that runs the queued sign-ups in order (store lookup, confirmation email).

    The request only queues: its answer cannot depend on whether the address was known, or on how slow the mail
    server is. A job that raises is logged with its traceback and the worker goes on; if the thread itself dies,
    that is logged and the next `submit` starts a new one. `close` drains the queue and stops the thread (on
    shutdown); `drain` waits for the queue to empty (on Lambda, before an invocation returns and is frozen)."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self.jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize)
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.closed = False

    def _ensure_thread(self) -> None:
        with self.lock:
            if self.closed or (self.thread is not None and self.thread.is_alive()):
                return
            if self.thread is not None:
                log.error("subscribe: the confirmation worker had stopped; starting a new one")
            self.thread = threading.Thread(target=self._run, name="publisher-confirmations", daemon=True)
            self.thread.start()

    def submit(self, job: Callable[[], None]) -> bool:
        """Queue a job; False when the queue is full or the worker is closed (the caller answers "try later")."""
        if self.closed:
            return False
        self._ensure_thread()
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            log.error("subscribe: %d confirmations are waiting; refusing more", self.jobs.qsize())
            return False
        return True

    def _run(self) -> None:
        try:
            while True:
                job = self.jobs.get()
                try:
                    if job is None:
                        return
                    try:
                        job()
                    except Exception:
                        log.exception("subscribe: a queued confirmation failed")
                finally:
                    self.jobs.task_done()
        except BaseException:
            log.critical("subscribe: the confirmation worker crashed", exc_info=True)
            raise

    def drain(self, timeout: float) -> bool:
        """Wait until every queued job has run; False if that took longer than `timeout` seconds."""
        if self.jobs.unfinished_tasks:
            self._ensure_thread()
        deadline = time.monotonic() + timeout
        with self.jobs.all_tasks_done:
            while self.jobs.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0 or not self.jobs.all_tasks_done.wait(left):
                    log.error("subscribe: %d confirmations still queued after %.0f s", self.jobs.unfinished_tasks,
                              timeout)
                    return False
        return True

    def close(self, timeout: float) -> bool:
        """Run what is queued, then stop the thread; False (logged) if it did not finish within `timeout`."""
        with self.lock:
            self.closed = True
            thread = self.thread
        if thread is None or not thread.is_alive():
            return self.jobs.unfinished_tasks == 0
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):  # full: the join below times out and says so
            self.jobs.put(None, timeout=timeout)
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            log.error("subscribe: the confirmation worker did not finish within %.0f s; %d confirmations may be "
                      "lost", timeout, self.jobs.unfinished_tasks)
            return False
        return True


def record_version(subscriber: Subscriber) -> str:
    """A short fingerprint of a record's state: it changes whenever the record does (`changed` is stamped on
    every status change) or is deleted and added again (`created`)."""
    digest = hashlib.sha256(f"{subscriber.created}|{subscriber.changed}|{subscriber.status}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:9]).decode("ascii")


class Endpoint:
    def __init__(self, config: Config, *, store_factory: Callable[[], Store] | None = None,
                 transport: Transport | None = None, secret: bytes | None = None,
                 clock: Callable[[], float] = clock_mod.timestamp, send_welcome: bool = True) -> None:
        self.config = config
        self.theme = load_theme(config)
        # The words of every page, answer and confirmation email, in the site's language (the theme's catalogue).
        self.messages = messages.install(self.theme, config.site.language)
        self.text = {key: self.messages.gettext(msgid) for key, msgid in TEXT.items()}
        self.sender: Sender = sender_of(config, theme=self.theme)
        self.secret = secret or secret_from_env()
        self.store_factory = store_factory or (lambda: open_store(config))
        self.transport = transport
        self.transport_lock = threading.Lock()
        self.clock = clock
        self.base = config.serve.public_url or config.site.url
        self.site = urlsplit(config.site.url)
        self.origin = f"{self.site.scheme}://{self.site.netloc}"
        window = config.serve.rate_window.total_seconds()
        self.per_ip = RateLimiter(config.serve.rate_per_ip, window)
        self.per_address = RateLimiter(config.serve.rate_per_address, window)
        self.worker = ConfirmationWorker()
        # The welcome emails are sent by the worker after a confirmation; `send_welcome=False` only queues them
        # (for tests: as if the process died before the send; the next pass sends them).
        self.send_welcome = send_welcome
        self._welcome_queued = threading.Event()  # a send pass is queued: one is enough for any number of clicks
        self._welcome_lock = threading.Lock()
        self._welcome_for: set[str] = set()  # confirmed since the last pass: with DynamoDB, a pass sends just these
        self._sweep = False  # the next pass reads every pending welcome (at start, or after a pass left some)
        self._stopping = threading.Event()  # shutting down: a welcome send pass stops after its current messages

    def start(self) -> None:
        """On startup: send the welcomes a previous process queued and did not send (it was stopped or died)."""
        self.send_welcomes()

    def send_welcomes(self, address: str | None = None) -> None:
        """Queue a welcome send pass on the worker (after the confirmations queued before it), unless one is
        queued already or there is no welcome. With `address` (just confirmed) the pass may send its welcome
        alone; without, it sweeps every pending one."""
        with self._welcome_lock:
            if address is None:
                self._sweep = True
            else:
                self._welcome_for.add(address)
        if not self.send_welcome or not welcome.enabled(self.config) or self._welcome_queued.is_set():
            return
        self._welcome_queued.set()
        if not self.worker.submit(self._send_welcomes):
            self._welcome_queued.clear()  # the queue is full: the next confirmation (or start) sends them

    def _send_welcomes(self) -> None:
        self._welcome_queued.clear()  # before the pass: a confirmation during it queues the next one
        with self._welcome_lock:
            addresses, sweep = sorted(self._welcome_for), self._sweep
            self._welcome_for.clear()
            self._sweep = False
        # SQLite reads its pending rows through an index; DynamoDB would read every welcome ever sent.
        only = addresses if self.config.subscribers.dynamodb_table and not sweep else None
        try:
            report = welcome.send_pending(self.config, self.transport, secret=self.secret, limit=WELCOME_BATCH,
                                          stop=self._stopping, only=only)
        except PublisherError as exc:
            log.error("subscribe: the welcome emails were not sent (they wait for the next pass): %s", exc)
            return
        if report.stopped:  # the rest stays pending in the ledger
            (log.info if self._stopping.is_set() else log.error)("subscribe: welcome emails: %s", report.stopped)
        elif report.remaining:
            self.send_welcomes()  # the next batch, after the confirmations queued meanwhile

    def close(self, timeout: float = SHUTDOWN_TIMEOUT) -> bool:
        """Send the confirmations still queued and stop the worker (the server is shutting down). Welcome
        emails not sent yet stay pending in the ledger: the next start (or `publish --due`) sends them."""
        self._stopping.set()
        return self.worker.close(timeout)

    # ---- pages ----

    def page(self, title: str, body: str, status: int = 200, form: str = "") -> HTMLResponse:
        lang = html.escape(self.config.site.language)
        site = html.escape(self.config.site.title)
        document = (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" '
                    f'content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark">'
                    f"<title>{html.escape(title)} · {site}</title><style>body{{font:17px/1.7 -apple-system,"
                    f'"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;max-width:34rem;margin:3rem auto;'
                    f"padding:0 1.25rem;background:#fdfdfc;color:#1f2328}}a{{color:#0b62d6}}"
                    f"button{{font:inherit;padding:.4rem 1.2rem;cursor:pointer}}"
                    f"@media (prefers-color-scheme:dark){{body{{background:#111418;color:#e6e8eb}}a{{color:#6cb6ff}}}}"
                    f"</style></head>"
                    f"<body><p><a href=\"{html.escape(self.config.site.url)}\">{site}</a></p>"
                    f"<main><h1>{html.escape(title)}</h1><p>{html.escape(body)}</p>{form}</main></body></html>")
        return HTMLResponse(document, status_code=status, headers=SECURITY_HEADERS)

    def button(self, token: str, label: str, hidden: str = "") -> str:
        """A form that POSTs to the same path with the same token: the only way to change anything."""
        return (f'<form method="post" action="?token={html.escape(token)}">{hidden}'
                f'<button type="submit">{html.escape(label)}</button></form>')

    def answer(self, request: Request, key: str, status: int = 200, *, json_mode: bool, next_url: str | None = None
               ) -> Response:
        if json_mode:
            return JSONResponse({"ok": status < 400, "message": self.text[key + "_body"] if key + "_body" in self.text
                                 else self.text[key]}, status_code=status, headers=self.cors(request))
        if next_url and status < 400:
            return RedirectResponse(next_url, status_code=303, headers=SECURITY_HEADERS)
        return self.page(self.text[key], self.text.get(key + "_body", ""), status)

    def cors(self, request: Request) -> dict[str, str]:
        headers = dict(SECURITY_HEADERS)
        if request.headers.get("origin") == self.origin:  # only the site's own pages may call us from script
            headers.update({"Access-Control-Allow-Origin": self.origin, "Vary": "Origin",
                            "Access-Control-Allow-Methods": "POST, OPTIONS",
                            "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "600"})
        return headers

    def safe_next(self, value: str | None) -> str | None:
        """A redirect target only inside the site (no open redirect)."""
        if not value:
            return None
        target = urlsplit(value)
        if (target.scheme, target.netloc) == (self.site.scheme, self.site.netloc) and \
                target.path.startswith(self.site.path or "/"):
            return value
        return None

    def client(self, request: Request) -> str:
        if self.config.serve.trust_proxy:
            forwarded = request.headers.get("x-forwarded-for", "")
            if forwarded:
                return forwarded.split(",")[-1].strip()  # the address the proxy itself saw
        return request.client.host if request.client else "unknown"

    async def body(self, request: Request) -> dict[str, str] | None:
        """The form or JSON body, or None when it is over the size limit. A body that trickles in slower than
        BODY_TIMEOUT is a 408: a slow client must not hold a connection and a task for ever."""
        limit = self.config.serve.max_body
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return None
        data = b""
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                async for chunk in request.stream():
                    data += chunk
                    if len(data) > limit:
                        return None
        except TimeoutError:
            raise HTTPException(408) from None
        kind = request.headers.get("content-type", "")
        if kind.startswith("application/json"):
            try:
                parsed = json.loads(data or b"{}")
            except ValueError:
                return {}
            return {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}
        return {k: v[0] for k, v in parse_qs(data.decode("utf-8", "replace")).items()}

    # ---- routes ----

    async def subscribe(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=self.cors(request))
        json_mode = request.headers.get("content-type", "").startswith("application/json") or \
            "application/json" in request.headers.get("accept", "")
        fields = await self.body(request)
        if fields is None:
            return self.answer(request, "invalid", 413, json_mode=json_mode)
        next_url = self.safe_next(fields.get("next"))
        if not self.per_ip.allow(self.client(request)):
            return self.answer(request, "slow", 429, json_mode=json_mode)
        if fields.get(HONEYPOT):
            log.info("subscribe: honeypot filled, ignored")
            return self.answer(request, "check", json_mode=json_mode, next_url=next_url)  # look like success
        try:
            address = normalize_email(fields.get("email", ""))
        except ValueError:
            return self.answer(request, "invalid", 400, json_mode=json_mode)
        try:  # the stores' own check of what a subscriber supplies, before anything is queued (same for everyone)
            subscriber = validate_subscriber(Subscriber(address, fields.get("name", ""), "unconfirmed"))
        except (ValueError, PublisherError) as exc:
            log.info("subscribe: refused: %s", exc)
            field = exc.problems[0].field if isinstance(exc, PublisherError) else None
            return self.answer(request, "invalid" if field == "email" else "invalid_name", 400, json_mode=json_mode)
        if not self.per_address.allow(address):
            return self.answer(request, "slow", 429, json_mode=json_mode)
        if not self.worker.submit(lambda: self._subscribe(subscriber)):
            return self.answer(request, "slow", 503, json_mode=json_mode)
        return self.answer(request, "check", json_mode=json_mode, next_url=next_url)

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        """A store for one request (SQLite connections are not shared between the server's threads)."""
        store = self.store_factory()
        try:
            yield store
        finally:
            close = getattr(store, "close", None)
            if close:
                close()

    def _subscribe(self, subscriber: Subscriber) -> None:
        """On the worker thread: store the sign-up and send the confirmation (nothing for an active address)."""
        address = subscriber.email
        with self.store() as store:
            current = store.get(address)
            if current is not None and current.status in ("active", "bounced", "complained"):
                return  # nothing to confirm; the answer did not tell
            if current is None:
                store.upsert(subscriber)
            elif current.status == "unsubscribed":
                store.set_status(address, "unconfirmed")  # signing up again starts over: a new confirmation
            record = store.get(address)
        if record is None or record.status != "unconfirmed":
            return  # removed or changed meanwhile
        self._send_confirmation(address, subscriber.name or record.name, record_version(record))

    def _send_confirmation(self, address: str, name: str, version: str) -> None:
        expires = int(self.clock() + self.config.serve.confirm_within.total_seconds())
        token = make_token(self.secret, "confirm", address, self.sender.list_id, expires=expires, version=version)
        self.send_templated("confirm", address, name, f"{self.base}confirm?token={token}")

    def send_templated(self, kind: str, address: str, name: str, link: str) -> None:
        """A message with one link from the theme's email/<kind>.txt, .html and _subject.txt (confirm: the
        double opt-in; change_address: the confirmation of a new address), through the confirmations' transport."""
        context = {"site": {"title": self.config.site.title, "url": self.config.site.url,
                            "language": self.config.site.language},
                   "link": link, "name": name or self.sender.default_name,
                   "days": self.config.serve.confirm_within.days or 1, "email": {"postal_address":
                                                                                  self.sender.postal_address}}
        message = EmailMessage()
        subject = self.theme.render(f"email/{kind}_subject.txt", **context).strip()
        message.set_raw("Subject", subject_header(subject))  # checked by headerregistry; GB18030 when caseless
        message["From"] = Address(self.sender.name, addr_spec=self.sender.address)  # encodes a Chinese name
        message["To"] = address
        message["Date"] = format_datetime(datetime.fromtimestamp(self.clock(), UTC))
        message["Message-ID"] = make_msgid(domain=self.sender.domain)
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(self.theme.render(f"email/{kind}.txt", **context))
        message.add_alternative(self.theme.render(f"email/{kind}.html", **context), subtype="html")
        with self.transport_lock:
            transport = self.transport or transport_for(self.config, "confirmations")
        try:
            transport.send(message.as_bytes(policy=message.policy.clone(linesep="\r\n")), sender=self.sender.address,
                           recipient=address, message_id=message["Message-ID"], number=int(self.clock() * 1000))
        except TransportError as exc:
            log.error("subscribe: the %s message to %s failed: %s", kind, address, exc)

    def _verify(self, request: Request, purpose: str, **kwargs: float) -> tuple[str, TokenData | None]:
        token = request.query_params.get("token", "")
        try:
            return token, verify_token(self.secret, token, purpose, list_id=self.sender.list_id, **kwargs)
        except InvalidToken:
            return token, None

    async def confirm(self, request: Request) -> Response:
        """GET and HEAD show a button (and change nothing); POST confirms."""
        token, data = self._verify(request, "confirm", now=self.clock())
        if data is None:
            return self.page(self.text["bad"], self.text["bad_body"], 400)
        if request.method != "POST":
            state = await run_in_threadpool(self._confirmable, data)
            if state == "active":
                return self.page(self.text["confirmed"], self.text["confirmed_body"])
            if state is None:
                return self.page(self.text["bad"], self.text["bad_body"], 400)
            return self.page(self.text["confirm_q"], self.text["confirm_q_body"],
                             form=self.button(token, self.text["confirm_button"]))
        if not await run_in_threadpool(self._confirm, data):
            return self.page(self.text["bad"], self.text["bad_body"], 400)
        return self.page(self.text["confirmed"], self.text["confirmed_body"])

    @staticmethod
    def _state(current: Subscriber | None, data: TokenData) -> str | None:
        """"active" (confirmed already: a second click is fine), "unconfirmed" (this token may confirm it), or
        None: no such subscriber, unsubscribed (unsubscribing wins), or the record changed since the token was
        issued (a token from before an unsubscribe never confirms the sign-up after it)."""
        if current is None:
            return None
        if current.status == "active":
            return "active"
        if current.status == "unconfirmed" and data.version == record_version(current):
            return "unconfirmed"
        return None

    def _confirmable(self, data: TokenData) -> str | None:
        with self.store() as store:
            return self._state(store.get(data.email), data)

    def _confirm(self, data: TokenData) -> bool:
        with self.store() as store:
            state = self._state(store.get(data.email), data)
            if state == "unconfirmed":
                welcome.activate(self.config, store, data.email)  # active, and the welcome queued, at once
            elif state == "active":
                welcome.requeue(self.config, store, data.email)  # SES store only: see welcome.requeue
        if state is not None:
            self.send_welcomes(data.email)
        return state is not None

    async def unsubscribe(self, request: Request) -> Response:
        """GET and HEAD show a button (and change nothing); POST unsubscribes (RFC 8058 one-click included)."""
        token, data = self._verify(request, "unsubscribe")
        if data is None:
            if request.method == "POST":
                return PlainTextResponse(self.text["token"], status_code=400, headers=SECURITY_HEADERS)
            return self.page(self.text["bad"], self.text["bad_body"], 400)
        if request.method != "POST":
            hidden = '<input type="hidden" name="confirm" value="1">'
            return self.page(self.text["unsub_q"], self.text["unsub_q_body"],
                             form=self.button(token, self.text["unsub_button"], hidden))
        fields = await self.body(request)
        if fields is None:
            return PlainTextResponse(self.text["too_large"], status_code=413, headers=SECURITY_HEADERS)
        await run_in_threadpool(self._unsubscribe, data.email)
        if fields.get("List-Unsubscribe") == "One-Click":
            return PlainTextResponse(self.text["done"], headers=SECURITY_HEADERS)  # RFC 8058: no page needed
        return self.page(self.text["unsubscribed"], self.text["unsubscribed_body"])

    def _unsubscribe(self, email: str) -> None:
        with self.store() as store:
            current = store.get(email)
            if current is None and (moved := getattr(store, "moved_to", lambda _: None)(email)):
                email, current = moved, store.get(moved)  # a link from before a change of address
            if current is not None and current.status not in SUPPRESSED:
                store.set_status(email, "unsubscribed")


class SecurityHeaders:
    """Adds the security headers to every response the app sends (404 and 405 from the router included) that
    does not set them itself. The 500 page comes from Starlette's outermost middleware, so it sets them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(config: Config, **kwargs: object) -> Starlette:
    endpoint = Endpoint(config, **kwargs)  # type: ignore[arg-type]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        key = HTTP_ERRORS.get(exc.status_code)
        text = endpoint.text[key] if key else exc.detail
        return PlainTextResponse(text, status_code=exc.status_code, headers={**SECURITY_HEADERS, **(exc.headers or {})})

    async def server_error(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(endpoint.text["error"], status_code=500, headers=SECURITY_HEADERS)  # uvicorn logs exc

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        endpoint.start()
        yield
        await run_in_threadpool(endpoint.close, SHUTDOWN_TIMEOUT)

    from .preferences import PreferencesPages

    preferences = PreferencesPages(endpoint)
    app = Starlette(routes=[
        Route("/subscribe", endpoint.subscribe, methods=["POST", "OPTIONS"]),
        Route("/confirm", endpoint.confirm, methods=["GET", "POST"]),
        Route("/unsubscribe", endpoint.unsubscribe, methods=["GET", "POST"]),
        Route("/preferences", preferences.preferences, methods=["GET", "POST"]),
        Route("/change-address", preferences.change_address, methods=["GET", "POST"]),
    ], middleware=[Middleware(SecurityHeaders)], exception_handlers={HTTPException: http_error,
                                                                      Exception: server_error},
        lifespan=lifespan)
    app.state.endpoint = endpoint
    return app


# ---- the server (`publisher serve`) ----


class QuerylessAccessLog(logging.Filter):
    """uvicorn's access log writes each request's path with its query string, and /confirm?token=... and
    /unsubscribe?token=... (and /preferences, /change-address) carry a working token naming the address: log the
    path only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(arg.split("?", 1)[0] if isinstance(arg, str) and arg.startswith("/") else arg
                                for arg in record.args)
        return True


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for a request's line and headers, which uvicorn does not have: a
    connection that sends nothing (or a byte a minute) would otherwise stay open for ever, and about a thousand of
    them use up the process's file descriptors. The deadline runs from the connection's start and from the end of
    each response; once a request's headers are in, the body has BODY_TIMEOUT (in `Endpoint.body`)."""

    header_timeout = HEADER_TIMEOUT
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._start_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_request():
            self._stop_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._in_request() and not self.transport.is_closing():
            self._start_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        super().connection_lost(exc)

    def _in_request(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _start_deadline(self) -> None:
        self._stop_deadline()
        self._deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self._in_request() and not self.transport.is_closing():
            self.transport.close()


def server_config(config: Config, app: ASGIApp, host: str | None = None, port: int | None = None, *,
                  header_timeout: float = HEADER_TIMEOUT) -> uvicorn.Config:
    """How `serve` runs the app: bounded connections and waits, and no tokens in the access log. Still meant
    to sit behind a reverse proxy (deploy/nginx/publisher-serve.conf), which buffers slow clients and does TLS."""
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config.setdefault("filters", {})["publisher_queryless"] = {"()": QuerylessAccessLog}
    log_config["loggers"]["uvicorn.access"]["filters"] = ["publisher_queryless"]
    protocol = type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout})
    return uvicorn.Config(app, host=host or config.serve.host, port=port or config.serve.port, log_level="info",
                          log_config=log_config, proxy_headers=config.serve.trust_proxy, server_header=False,
                          http=protocol, limit_concurrency=LIMIT_CONCURRENCY, backlog=BACKLOG,
                          timeout_keep_alive=TIMEOUT_KEEP_ALIVE, timeout_graceful_shutdown=GRACEFUL_TIMEOUT,
                          h11_max_incomplete_event_size=MAX_HEADER_BYTES)


def serve(config: Config, host: str | None = None, port: int | None = None) -> None:
    app = create_app(config)
    settings = server_config(config, app, host, port)
    server = uvicorn.Server(settings)
    server.run()
    if not server.started:  # uvicorn has logged why (the port is taken, the address is not ours, ...)
        raise PublisherError(f"could not listen on {settings.host}:{settings.port}",
                             hint="see the message above; --host and --port (or [serve] host, port) choose another")
