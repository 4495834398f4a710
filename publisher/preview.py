"""The local preview: the site (drafts and scheduled issues included), every email, the feeds, rebuilt on
every change and reloaded in the open pages.

- The site is built into `.publisher-cache/preview/site` (with a cache of its own), never into `dist/`.
- `watchfiles` watches content/, themes/ and publisher.toml; a change rebuilds (incrementally, through the
  render cache) and every open page reloads through server-sent events. A failed build keeps the last good
  site on screen with an overlay naming the file, the field and the problem; fixing it reloads.
- `/__preview/` lists every issue with its page, its email at phone and desktop width side by side, the email
  in dark mode, the plain-text part, the MIME headers, its size against Gmail's 102 KB clip, and the warnings
  of `publisher check`.
- `/__preview/report/<slug>`: the report of a sent issue (publisher/report.py), read from the ledger read-only.
Only 127.0.0.1 is served: the preview shows drafts and must not be reachable from the network.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from . import build as build_mod
from . import emails, markdown, welcome
from .clock import now as clock_now
from .config import CONFIG_FILE, Config, load_config
from .content import Issue
from .errors import PublisherError

log = logging.getLogger(__name__)

PREFIX = "/__preview"
PREVIEW_SECRET = b"publisher-preview-only-never-used-for-sending"


@dataclass
class Snapshot:
    """One build as the server shows it."""

    version: int
    config: Config | None = None
    issues: list[Issue] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the last build's errors; empty when it succeeded
    emails: dict[str, emails.RenderedEmail] = field(default_factory=dict)  # rendered on first request


class Preview:
    def __init__(self, root: Path, port: int = 8000, host: str = "127.0.0.1",
                 clock: Callable[[], datetime] = clock_now) -> None:
        self.root = root.resolve()
        self.folder = self.root / build_mod.CACHE_DIR / "preview"
        self.site = self.folder / "site"
        self.clock = clock
        self.changed = threading.Condition()
        self.snapshot = Snapshot(version=0)
        self.stopping = threading.Event()
        self.listeners = 0  # open live-reload connections (tests wait for one before editing)
        self.build_lock = threading.Lock()
        self.rebuild(search="fresh")  # the search index once at start; edits reuse it (see `rebuild`)
        self.server = ThreadingHTTPServer((host, port), _handler(self))
        self.server.daemon_threads = True
        self.threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self, watch: bool = True) -> Preview:
        serve = threading.Thread(target=self.server.serve_forever, name="preview-http", daemon=True)
        serve.start()
        self.threads.append(serve)
        if watch:
            watcher = threading.Thread(target=self._watch, name="preview-watch", daemon=True)
            watcher.start()
            self.threads.append(watcher)
        return self

    def stop(self) -> None:
        self.stopping.set()
        with self.changed:
            self.changed.notify_all()
        self.server.shutdown()
        self.server.server_close()

    # ---- building ----

    def rebuild(self, search: str = "reuse") -> None:
        """Build the preview site. With [search] enabled, the index is made at start and on demand
        (`/__preview/search`, search="refresh"); a rebuild on an edit keeps the last one (Pagefind takes
        seconds on a large site), so the search page may miss the latest words until refreshed."""
        with self.build_lock:
            version = self.snapshot.version + 1
            try:
                config = load_config(self.root)
                result = build_mod.build(config, now=self.clock(), drafts=True, future=True, output=self.site,
                                         cache_dir=self.folder / "cache", search=search)
                snapshot = Snapshot(version, config, result.issues)
                log.info("preview: rebuilt (%d files written) in %.2f s", result.written, result.seconds)
            except PublisherError as exc:
                snapshot = Snapshot(version, self.snapshot.config, self.snapshot.issues,
                                    [str(p) for p in exc.problems])
                log.warning("preview: the build failed:\n%s", exc)
            except Exception as exc:  # a bug: show it in the page rather than kill the server
                log.exception("preview: the build crashed")
                snapshot = Snapshot(version, self.snapshot.config, self.snapshot.issues,
                                    [f"internal error: {exc!r}"])
        with self.changed:
            self.snapshot = snapshot
            self.changed.notify_all()

    def _watch(self) -> None:
        import watchfiles

        paths = [p for p in (self.root / "content", self.root / "themes", self.root / CONFIG_FILE) if p.exists()]
        for _changes in watchfiles.watch(*paths, stop_event=self.stopping, debounce=150, step=50,
                                         raise_interrupt=False):
            if self.stopping.is_set():
                return
            self.rebuild()

    def wait_for_change(self, seen: int, timeout: float) -> Snapshot:
        with self.changed:
            if self.snapshot.version == seen and not self.stopping.is_set():
                self.changed.wait(timeout)
            return self.snapshot

    # ---- the preview pages ----

    def rendered(self, snapshot: Snapshot, slug: str) -> emails.RenderedEmail:
        if slug not in snapshot.emails and slug == welcome.SLUG and snapshot.config is not None \
                and welcome.enabled(snapshot.config):  # content/_welcome.md: not an issue, not on the site
            snapshot.emails[slug] = welcome.render(snapshot.config, now=self.clock())
        if slug not in snapshot.emails:
            issue = next((i for i in snapshot.issues if i.slug == slug), None)
            if issue is None or snapshot.config is None:
                raise KeyError(slug)
            pages = {str(i.path): i.url_path for i in snapshot.issues}
            snapshot.emails[slug] = emails.render_email(snapshot.config, issue, markdown.to_html(issue.body),
                                                        pages=pages)
        return snapshot.emails[slug]

    def factory(self, snapshot: Snapshot, slug: str) -> emails.MessageFactory:
        assert snapshot.config is not None
        rendered = self.rendered(snapshot, slug)
        return emails.MessageFactory(rendered, emails.sender_of(snapshot.config, require_address=False),
                                     PREVIEW_SECRET, date=self.clock())


def dark(html_text: str) -> str:
    """The email as a client in dark mode shows it: the theme's dark-mode rules applied unconditionally, on a
    dark page (what Apple Mail and iOS do with `prefers-color-scheme: dark`)."""
    forced = html_text.replace("@media (prefers-color-scheme: dark)", "@media all")
    return forced.replace("<head>", '<head><meta name="color-scheme" content="dark">', 1)


# The live-reload client: reloads on a new build, shows an overlay on a failed one.
RELOAD_SCRIPT = """<script>(function () {
  var version = %(version)d, problems = %(problems)s;
  function overlay(list) {
    var box = document.getElementById("publisher-error-overlay");
    if (!list.length) { if (box) box.remove(); return; }
    if (!box) {
      box = document.createElement("div"); box.id = "publisher-error-overlay";
      box.setAttribute("role", "alert");
      box.style.cssText = "position:fixed;inset:0 0 auto 0;z-index:2147483647;max-height:70vh;overflow:auto;" +
        "background:#b42318;color:#fff;font:14px/1.5 ui-monospace,Menlo,Consolas,monospace;padding:16px 20px;" +
        "white-space:pre-wrap;box-shadow:0 4px 24px rgba(0,0,0,.4)";
      (document.body || document.documentElement).appendChild(box);
    }
    box.textContent = "The build failed; this page shows the last good build.\\n\\n" + list.join("\\n");
  }
  overlay(problems);
  function connect() {
    var source = new EventSource("%(prefix)s/events?v=" + version);
    source.onmessage = function (event) {
      var data = JSON.parse(event.data);
      if (data.problems.length) { version = data.version; overlay(data.problems); }
      else if (data.version !== version) { location.reload(); }
    };
    source.onerror = function () { source.close(); setTimeout(connect, 1000); };
  }
  connect();
})();</script>"""


def inject(page: str, snapshot: Snapshot) -> str:
    script = RELOAD_SCRIPT % {"version": snapshot.version, "problems": json.dumps(snapshot.problems),
                              "prefix": PREFIX}
    if "</body>" in page:
        return page.replace("</body>", script + "</body>", 1)
    return page + script


def _page(title: str, body: str) -> str:
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark">
<title>{html.escape(title)} · preview</title><style>
body {{ font: 15px/1.5 -apple-system, "Segoe UI", "PingFang SC", "Noto Sans CJK SC", sans-serif; margin: 0;
       padding: 16px 24px; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-bottom: 1px solid #8884; padding: 6px 8px;
text-align: left; vertical-align: top; }} .badge {{ font-size: 12px; border: 1px solid; border-radius: 4px;
padding: 0 4px; }} .warn {{ color: #b54708; }} .frames {{ display: flex; gap: 24px; align-items: flex-start;
flex-wrap: wrap; }} .frames figure {{ margin: 0; }} iframe {{ border: 1px solid #8886; background: #fff;
height: 900px; }} pre {{ white-space: pre-wrap; background: #8881; padding: 12px; overflow-x: auto; }}
.bar {{ height: 8px; background: #8883; width: 200px; display: inline-block; vertical-align: middle; }}
.bar span {{ display: block; height: 100%; background: #2da44e; }} .bar span.over {{ background: #cf222e; }}
</style></head><body>{body}</body></html>"""


def size_bar(size: int) -> str:
    share = size / emails.GMAIL_CLIP_BYTES
    over = " over" if share > 1 else ""
    return (f'<span class="bar" title="{size:,} bytes of {emails.GMAIL_CLIP_BYTES:,}"><span class="{over.strip()}" '
            f'style="width:{min(share, 1) * 100:.0f}%"></span></span> {size / 1024:.1f} KB of 102 KB')


def _sent(snapshot: Snapshot) -> set[str]:
    """The issues the ledger has (a report exists for them), in SQLite or DynamoDB; none when it cannot be read."""
    from .report import sends_of

    if snapshot.config is None:
        return set()
    try:
        return set(sends_of(snapshot.config))
    except PublisherError:
        return set()


def index_page(preview: Preview, snapshot: Snapshot) -> str:
    rows = []
    sent = _sent(snapshot)
    for issue in snapshot.issues:
        state = " <span class=badge>draft</span>" if issue.draft else (
            " <span class=badge>scheduled</span>" if issue.is_future(preview.clock()) else "")
        try:
            rendered = preview.rendered(snapshot, issue.slug)
            size, warnings = size_bar(rendered.html_size), rendered.warnings
        except PublisherError as exc:
            size, warnings = "", tuple(str(p) for p in exc.problems)
        slug = html.escape(issue.slug)
        email = f"{PREFIX}/email/{slug}"
        links = (f'<a href="/{issue.url_path}">page</a> · <a href="{PREFIX}/issue/{slug}">email</a> · '
                 f'<a href="{email}.html?dark=1">dark</a> · <a href="{email}.txt">text</a> · '
                 f'<a href="{email}.eml">headers</a>'
                 + (f' · <a href="{PREFIX}/report/{slug}">report</a>' if issue.slug in sent else ''))
        warned = "".join(f'<div class="warn">⚠ {html.escape(w)}</div>' for w in warnings)
        when = issue.date.astimezone(snapshot.config.site.timezone) if snapshot.config else issue.date
        rows.append(f'<tr class="issue-row"><td><a href="/{issue.url_path}">{html.escape(issue.title)}</a>{state}'
                    f'<div>{when:%Y-%m-%d %H:%M}</div></td><td>{links}</td><td>{size}</td><td>{warned}</td></tr>')
    if snapshot.config is not None and welcome.enabled(snapshot.config):
        email = f"{PREFIX}/email/{welcome.SLUG}"
        rows.append(f'<tr class="issue-row"><td>content/{welcome.FILE}<div>the welcome email (not on the site)</div>'
                    f'</td><td><a href="{PREFIX}/issue/{welcome.SLUG}">email</a> · <a href="{email}.html?dark=1">dark'
                    f'</a> · <a href="{email}.txt">text</a> · <a href="{email}.eml">headers</a></td><td></td><td></td>'
                    '</tr>')
    title = snapshot.config.site.title if snapshot.config else "publisher"
    body = (f"<h1>{html.escape(title)}: preview</h1><p><a href='/'>The site</a> · <a href='/rss.xml'>RSS</a> · "
            f"<a href='/atom.xml'>Atom</a> · <a href='/feed.json'>JSON Feed</a>"
            + (f" · <form method='post' action='{PREFIX}/search' style='display:inline'>"
               "<button type='submit'>Search (index now)</button></form>"
               if snapshot.config and snapshot.config.search.enabled else "")
            + " — drafts and scheduled issues "
            "included. This page reloads when a file changes.</p><table><tr><th>Issue</th><th>Look at</th>"
            f"<th>Email size</th><th>Warnings</th></tr>{''.join(rows)}</table>")
    return _page(title, body)


def issue_page(preview: Preview, snapshot: Snapshot, slug: str) -> str:
    rendered = preview.rendered(snapshot, slug)
    factory = preview.factory(snapshot, slug)
    raw = factory.message(emails.Recipient(emails.EXAMPLE_ADDRESS, "读者"))
    headers = message_from_bytes(raw, policy=policy.default)
    head = "\n".join(f"{k}: {v}" for k, v in headers.items())
    esc = html.escape(slug)
    frames = "".join(
        f'<figure><figcaption>{label}</figcaption><iframe title="{label}" src="{PREFIX}/email/{esc}.html{query}" '
        f'style="width:{width}px"></iframe></figure>'
        for label, width, query in (("Phone, 375 px", 375, ""), ("Desktop, 640 px", 640, ""),
                                    ("Dark mode, 375 px", 375, "?dark=1")))
    warned = "".join(f'<p class="warn">⚠ {html.escape(w)}</p>' for w in rendered.warnings) or "<p>No warnings.</p>"
    body = (f"<p><a href='{PREFIX}/'>← all issues</a></p><h1>{html.escape(rendered.subject)}</h1>"
            f"<p>{size_bar(rendered.html_size)}</p>{warned}<div class='frames'>{frames}</div>"
            f"<h2>Plain-text part</h2><pre>{html.escape(factory.text_for(emails.Recipient(emails.EXAMPLE_ADDRESS)))}"
            f"</pre><h2>MIME headers</h2><pre>{html.escape(head)}</pre>")
    return _page(rendered.subject, body)


def _handler(preview: Preview) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "publisher-preview"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the stdlib's name)
            log.debug("preview: " + format, *args)

        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            """Index the pages as they are now, then show the search page: a POST (a GET changes nothing), and
            only from the preview's own pages (another site open in the browser cannot make it work)."""
            parts = urlsplit(self.path)
            origin = self.headers.get("Origin")
            if unquote(parts.path) != f"{PREFIX}/search":
                return self._send("not found", "text/plain", HTTPStatus.NOT_FOUND)
            if origin is not None and origin != f"http://{self.headers.get('Host', '')}":
                return self._send("forbidden", "text/plain", HTTPStatus.FORBIDDEN)
            preview.rebuild(search="refresh")
            self.send_response(HTTPStatus.SEE_OTHER)
            self.send_header("Location", "/search/" + (f"?{parts.query}" if parts.query else ""))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            snapshot = preview.snapshot
            try:
                if path == f"{PREFIX}/events":
                    return self._events(parse_qs(parts.query))
                if path in (PREFIX, f"{PREFIX}/"):
                    return self._send(inject(index_page(preview, snapshot), snapshot), "text/html")
                if path.startswith(f"{PREFIX}/issue/"):
                    return self._send(inject(issue_page(preview, snapshot, path.rsplit("/", 1)[1]), snapshot),
                                      "text/html")
                report = re.fullmatch(rf"{PREFIX}/report/([a-z0-9-]+)/?", path)
                if report:
                    return self._report(snapshot, report.group(1))
                match = re.fullmatch(rf"{PREFIX}/email/([a-z0-9-]+|{welcome.SLUG})\.(html|txt|eml)", path)
                if match:
                    return self._email(snapshot, match.group(1), match.group(2), "dark" in parse_qs(parts.query))
                return self._file(path, snapshot)
            except KeyError:
                self._send(inject(_page("Not found", "<h1>No such issue</h1>"), snapshot), "text/html",
                           HTTPStatus.NOT_FOUND)
            except PublisherError as exc:
                self._send(inject(_page("Error", f"<pre>{html.escape(str(exc))}</pre>"), snapshot), "text/html",
                           HTTPStatus.INTERNAL_SERVER_ERROR)

        def do_HEAD(self) -> None:  # noqa: N802 (the stdlib's name)
            """What GET would answer, without the body (a HEAD changes nothing either)."""
            if unquote(urlsplit(self.path).path) == f"{PREFIX}/events":
                return self._send("", "text/event-stream")  # never a stream that a HEAD would wait on
            return self.do_GET()

        def _report(self, snapshot: Snapshot, slug: str) -> None:
            """The issue's report, a page of its own (no live reload: the ledger is not watched). Read-only."""
            from .report import NotSent, html_page, issue_report

            config = snapshot.config
            if config is None:
                raise KeyError(slug)
            try:
                report = issue_report(config, slug)
            except NotSent:
                return self._send(_page("Not sent", f"<h1>{html.escape(slug)} has not been sent</h1><p>A report "
                                        "exists once `publisher send` has started the issue.</p>"), "text/html",
                                  HTTPStatus.NOT_FOUND)
            return self._send(html_page(config, report), "text/html")

        def _email(self, snapshot: Snapshot, slug: str, kind: str, in_dark: bool) -> None:
            factory = preview.factory(snapshot, slug)
            recipient = emails.Recipient(emails.EXAMPLE_ADDRESS, "读者")
            if kind == "txt":
                return self._send(factory.text_for(recipient), "text/plain")
            if kind == "eml":
                return self._send(factory.message(recipient).decode("ascii"), "text/plain")
            page = factory.html_for(recipient)
            return self._send(inject(dark(page) if in_dark else page, snapshot), "text/html")

        def _file(self, path: str, snapshot: Snapshot) -> None:
            target = (preview.site / path.lstrip("/")).resolve()
            if target.is_dir():
                if not path.endswith("/"):
                    self.send_response(HTTPStatus.MOVED_PERMANENTLY)
                    self.send_header("Location", path + "/")
                    self.end_headers()
                    return
                target = target / "index.html"
            if preview.site.resolve() not in target.parents or not target.is_file():
                missing = preview.site / "404.html"
                page = (missing.read_text(encoding="utf-8") if missing.is_file()
                        else _page("Not found", "<h1>404</h1>"))
                return self._send(inject(page, snapshot), "text/html", HTTPStatus.NOT_FOUND)
            data = target.read_bytes()
            kind = _content_type(target)
            if kind.startswith("text/html"):
                return self._send(inject(data.decode("utf-8"), snapshot), "text/html")
            self._send_bytes(data, kind)

        def _events(self, query: dict[str, list[str]]) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            seen = int((query.get("v") or ["0"])[0] or 0)
            with preview.changed:
                preview.listeners += 1
            try:
                while not preview.stopping.is_set():
                    snapshot = preview.wait_for_change(seen, timeout=15)
                    if snapshot.version != seen:
                        seen = snapshot.version
                        payload = json.dumps({"version": seen, "problems": snapshot.problems})
                        self.wfile.write(f"data: {payload}\n\n".encode())
                    else:
                        self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return
            finally:
                with preview.changed:
                    preview.listeners -= 1

        def _send(self, text: str, kind: str, status: HTTPStatus = HTTPStatus.OK) -> None:
            self._send_bytes(text.encode("utf-8"), f"{kind}; charset=utf-8", status)

        def _send_bytes(self, data: bytes, kind: str, status: HTTPStatus = HTTPStatus.OK) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

    return Handler


def _content_type(path: Path) -> str:
    from .deploy import content_type

    kind = content_type(path.name)
    # Chromium shows application/rss+xml and atom+xml as plain text and never runs their XSLT; as
    # application/xml the feed is styled. The deployed site keeps the feed types readers and validators prefer.
    if kind.startswith(("application/rss+xml", "application/atom+xml")):
        return "application/xml; charset=utf-8"
    return kind

