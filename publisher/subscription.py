"""The subscribe / confirm / unsubscribe web endpoint (`publisher serve`): a small ASGI app (Starlette).

A static site cannot take a sign-up or an unsubscribe click, so this is the one piece that runs as a server
(behind a reverse proxy, or on AWS Lambda with the SES contact-list store).
- POST /subscribe (form or JSON: email, name): double opt-in. The address is stored `unconfirmed` and gets a
  confirmation link; the answer is the same whether the address was known or not (no list enumeration).
- GET /confirm?token=...: a signed, expiring token makes the subscriber `active`; idempotent.
- GET /unsubscribe?token=...: a page with one button. POST with `List-Unsubscribe=One-Click` (RFC 8058, what
  Gmail and Yahoo send) unsubscribes at once, with no page.
- Abuse: per-IP and per-address rate limits on /subscribe, a honeypot field, a body size limit, redirects only
  into the site, CORS only for the site, security headers on every answer.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from . import clock as clock_mod
from .config import Config
from .emails import Sender, sender_of, strings_for
from .errors import PublisherError
from .subscribers import SUPPRESSED, Store, Subscriber, normalize_email, open_store
from .themes import load_theme
from .tokens import InvalidToken, make_token, secret_from_env, verify_token
from .transports import Transport, TransportError, transport_for

log = logging.getLogger(__name__)

HONEYPOT = "website"  # a field people never see and bots fill in
TEXT = {
    "zh": {"check": "请查收确认邮件",
           "check_body": "如果这个地址可以订阅，我们刚刚发了一封确认邮件，点击其中的链接即可完成订阅。",
           "confirmed": "订阅成功", "confirmed_body": "谢谢！以后每一期都会发到你的邮箱。",
           "bad": "链接无效或已过期", "bad_body": "这个链接无法使用：它可能不完整、被改动过，或已经过期。",
           "unsub_q": "退订", "unsub_q_body": "点击下面的按钮，就不会再收到这份通讯。", "unsub_button": "退订",
           "unsubscribed": "已退订", "unsubscribed_body": "你不会再收到这份通讯。",
           "slow": "请求太频繁", "slow_body": "请稍后再试。", "invalid": "地址无效", "back": "返回"},
    "en": {"check": "Check your inbox", "check_body": "If this address can subscribe, we have just sent it a "
           "confirmation email: click its link to finish subscribing.",
           "confirmed": "You are subscribed", "confirmed_body": "Thank you! Every new issue will reach your inbox.",
           "bad": "This link does not work", "bad_body": "The link is incomplete, was changed, or has expired.",
           "unsub_q": "Unsubscribe", "unsub_q_body": "Press the button to stop receiving this newsletter.",
           "unsub_button": "Unsubscribe", "unsubscribed": "You are unsubscribed",
           "unsubscribed_body": "You will not receive this newsletter again.", "slow": "Too many requests",
           "slow_body": "Please try again later.", "invalid": "Invalid address", "back": "Back"},
}
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


class Endpoint:
    def __init__(self, config: Config, *, store_factory: Callable[[], Store] | None = None,
                 transport: Transport | None = None, secret: bytes | None = None,
                 clock: Callable[[], float] = clock_mod.timestamp) -> None:
        self.config = config
        self.sender: Sender = sender_of(config)
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
        self.text = TEXT["zh" if config.site.language.lower().startswith("zh") else "en"]
        self.theme = load_theme(config)

    # ---- pages ----

    def page(self, title: str, body: str, status: int = 200, form: str = "") -> HTMLResponse:
        lang = html.escape(self.config.site.language)
        site = html.escape(self.config.site.title)
        document = (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" '
                    f'content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark">'
                    f"<title>{html.escape(title)} · {site}</title><style>body{{font:17px/1.7 -apple-system,"
                    f'"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;max-width:34rem;margin:3rem auto;'
                    f"padding:0 1.25rem}}button{{font:inherit;padding:.4rem 1.2rem;cursor:pointer}}</style></head>"
                    f"<body><p><a href=\"{html.escape(self.config.site.url)}\">{site}</a></p>"
                    f"<h1>{html.escape(title)}</h1><p>{html.escape(body)}</p>{form}</body></html>")
        return HTMLResponse(document, status_code=status, headers=SECURITY_HEADERS)

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
        """The form or JSON body, or None when it is over the size limit."""
        limit = self.config.serve.max_body
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return None
        data = b""
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                return None
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
        if not self.per_address.allow(address):
            return self.answer(request, "slow", 429, json_mode=json_mode)
        name = fields.get("name", "").strip()[:100]
        await run_in_threadpool(self._subscribe, address, name)
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

    def _subscribe(self, address: str, name: str) -> None:
        with self.store() as store:
            current = store.get(address)
            if current is not None and current.status in ("active", "bounced", "complained"):
                return  # nothing to confirm; the answer does not tell
            if current is None:
                store.upsert(Subscriber(address, name, "unconfirmed"))
            self._send_confirmation(address, name or (current.name if current else ""))

    def _send_confirmation(self, address: str, name: str) -> None:
        expires = int(self.clock() + self.config.serve.confirm_within.total_seconds())
        token = make_token(self.secret, "confirm", address, self.sender.list_id, expires=expires)
        link = f"{self.base}confirm?token={token}"
        strings = strings_for(self.config.site.language)
        context = {"site": {"title": self.config.site.title, "url": self.config.site.url,
                            "language": self.config.site.language},
                   "link": link, "name": name or self.sender.default_name, "strings": strings,
                   "days": self.config.serve.confirm_within.days or 1, "email": {"postal_address":
                                                                                  self.sender.postal_address}}
        message = EmailMessage()
        message["Subject"] = self.theme.render("email/confirm_subject.txt", **context).strip()
        message["From"] = Address(self.sender.name, addr_spec=self.sender.address)  # encodes a Chinese name
        message["To"] = address
        message["Date"] = format_datetime(datetime.fromtimestamp(self.clock(), UTC))
        message["Message-ID"] = make_msgid(domain=self.sender.domain)
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(self.theme.render("email/confirm.txt", **context))
        message.add_alternative(self.theme.render("email/confirm.html", **context), subtype="html")
        with self.transport_lock:
            transport = self.transport or transport_for(self.config, "confirmations")
        try:
            transport.send(message.as_bytes(policy=message.policy.clone(linesep="\r\n")), sender=self.sender.address,
                           recipient=address, message_id=message["Message-ID"], number=int(self.clock() * 1000))
        except TransportError as exc:
            log.error("subscribe: the confirmation to %s failed: %s", address, exc)

    async def confirm(self, request: Request) -> Response:
        try:
            data = verify_token(self.secret, request.query_params.get("token", ""), "confirm",
                                list_id=self.sender.list_id, now=self.clock())
        except InvalidToken:
            return self.page(self.text["bad"], self.text["bad_body"], 400)
        ok = await run_in_threadpool(self._set, data.email, "active", ("unconfirmed", "unsubscribed", "active"))
        if not ok:
            return self.page(self.text["bad"], self.text["bad_body"], 400)
        return self.page(self.text["confirmed"], self.text["confirmed_body"])

    async def unsubscribe(self, request: Request) -> Response:
        token = request.query_params.get("token", "")
        try:
            data = verify_token(self.secret, token, "unsubscribe", list_id=self.sender.list_id)
        except InvalidToken:
            if request.method == "POST":
                return PlainTextResponse("invalid token", status_code=400, headers=SECURITY_HEADERS)
            return self.page(self.text["bad"], self.text["bad_body"], 400)
        if request.method == "GET":
            form = (f'<form method="post" action="?token={html.escape(token)}"><input type="hidden" name="confirm" '
                    f'value="1"><button type="submit">{html.escape(self.text["unsub_button"])}</button></form>')
            return self.page(self.text["unsub_q"], self.text["unsub_q_body"], form=form)
        fields = await self.body(request)
        if fields is None:
            return PlainTextResponse("too large", status_code=413, headers=SECURITY_HEADERS)
        await run_in_threadpool(self._set, data.email, "unsubscribed", None)
        if fields.get("List-Unsubscribe") == "One-Click":
            return PlainTextResponse("unsubscribed", headers=SECURITY_HEADERS)  # RFC 8058: no page needed
        return self.page(self.text["unsubscribed"], self.text["unsubscribed_body"])

    def _set(self, email: str, status: str, only_from: tuple[str, ...] | None) -> bool:
        with self.store() as store:
            current = store.get(email)
            if current is None:
                return status == "unsubscribed"  # nothing to unsubscribe: fine; nothing to confirm: not fine
            if only_from is not None and current.status not in only_from:
                return False
            if current.status != status and not (status == "unsubscribed" and current.status in SUPPRESSED):
                store.set_status(email, status)
            return True


def create_app(config: Config, **kwargs: object) -> Starlette:
    endpoint = Endpoint(config, **kwargs)  # type: ignore[arg-type]

    async def not_found(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("not found", status_code=404, headers=SECURITY_HEADERS)

    app = Starlette(routes=[
        Route("/subscribe", endpoint.subscribe, methods=["POST", "OPTIONS"]),
        Route("/confirm", endpoint.confirm, methods=["GET"]),
        Route("/unsubscribe", endpoint.unsubscribe, methods=["GET", "POST"]),
    ], exception_handlers={404: not_found})
    app.state.endpoint = endpoint
    return app


def serve(config: Config, host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    try:
        app = create_app(config)
    except PublisherError:
        raise
    uvicorn.run(app, host=host or config.serve.host, port=port or config.serve.port, log_level="info",
                proxy_headers=config.serve.trust_proxy, server_header=False)
