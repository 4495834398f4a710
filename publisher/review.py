"""`publisher review`: everything to look at before an issue goes out, in one report.

For each issue: screenshots in the real Chromium (the issue page at 375 and 1280 px, the email at 375 and 600 px
and in dark mode), the email as inboxes see it (subject, From, preheader, size against Gmail's clip, the text
part, the headers that matter, SpamAssassin's score when it is installed), every link and image checked over the
network (HEAD, then GET on 405; redirect chains recorded hop by hop; `#anchors` checked against the pages), the
content checks of `publisher check` and a few more, and a diff against the copy last sent from the outbox.

It reads, never writes state: the site is rendered in memory (never into `dist/`), the browser gets it through
request interception (no file is written, no port opened), and only the report folder (`--out`, default
`review/`) is written: `report.html`, `report.md`, `report.json` and `screens/*.png`.

The verdict: "errors" (exit 1) for a broken link (4xx but 401/403/429, 5xx, a redirect loop), a missing anchor,
an issue that does not load (a missing local image...), or a SpamAssassin score at or above its threshold;
"warnings" for what `check` warns about, a link that timed out or could not connect, a link answering 401, 403
or 429 (sites that refuse robots), an email over Gmail's clip, a large image, an empty section, an edit since
sending; else "ok".
"""

from __future__ import annotations

import dataclasses
import difflib
import html as html_mod
import http.client
import json
import logging
import mimetypes
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urljoin, urlsplit

from . import __version__
from .errors import PublisherError, relpath

if TYPE_CHECKING:
    from .config import Config
    from .content import Issue

log = logging.getLogger(__name__)

USER_AGENT = "publisher-review/1"
MAX_REDIRECTS = 10
LINK_CONCURRENCY = 8
LINK_TIMEOUT = 10.0  # seconds for one request (connect, and each read)
LINKS_TOTAL = 120.0  # seconds for all the links of a review; what is left is reported "not checked"
MAX_IMAGE_KB = 200
MARKDOWN_LIMIT = 65_000  # a GitHub comment holds 65,536 characters
SHOT_MAX_HEIGHT = 3000  # px: a full-page screenshot is cut there
MARK = ".publisher-review"  # the report folder's mark: only a marked screens/ folder is ever cleaned
INSTALL_HINT = "screenshots need Playwright: pip install 'publisher[review]' (and Chromium: apt-get install chromium)"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REDIRECTS = (301, 302, 303, 307, 308)
SOFT_4XX = (401, 403, 429)  # sites refusing robots, not broken links

OK, WARNINGS, ERRORS = "ok", "warnings", "errors"
_RANK = {OK: 0, WARNINGS: 1, ERRORS: 2}


# ---------------------------------------------------------------- the model


@dataclass
class Finding:
    level: str  # "error" | "warning" | "info"
    message: str

    def as_json(self) -> dict[str, str]:
        return {"level": self.level, "message": self.message}


@dataclass
class LinkResult:
    url: str
    kind: str = "link"  # "link" | "image"
    count: int = 1  # times the issue uses it
    status: int | None = None  # of the last hop
    chain: list[tuple[int, str]] = field(default_factory=list)  # (status, URL) of each redirect hop
    final_url: str = ""
    error: str = ""  # "timeout after 10 s", "connection refused", "not checked: offline", ...
    method: str = "HEAD"
    seconds: float = 0.0
    local: bool = False  # a page or file of the site itself, checked against the rendered site

    @property
    def level(self) -> str:
        if self.error.startswith("not checked"):
            return "info"
        if self.error.startswith(("redirect loop", "more than", "redirect to", "invalid URL", "not an http")):
            return "error"
        if self.error:
            return "warning"
        if self.status is None:
            return "info"
        if self.status in SOFT_4XX:
            return "warning"
        return "error" if self.status >= 400 else "ok"

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "kind": self.kind, "count": self.count, "status": self.status,
                "chain": [{"status": s, "url": u} for s, u in self.chain], "final_url": self.final_url or self.url,
                "error": self.error or None, "method": self.method, "seconds": round(self.seconds, 3),
                "local": self.local, "level": self.level}


@dataclass
class Shot:
    name: str  # file name under screens/
    label: str
    width: int
    height: int

    def as_json(self) -> dict[str, Any]:
        return {"file": f"screens/{self.name}", "label": self.label, "width": self.width, "height": self.height}


@dataclass
class Spam:
    checked: bool
    score: float | None = None
    required: float | None = None
    rules: list[tuple[float, str, str]] = field(default_factory=list)
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"checked": self.checked, "score": self.score, "required": self.required,
                "rules": [{"points": p, "rule": r, "description": d} for p, r, d in self.rules], "note": self.note}


@dataclass
class IssueReview:
    slug: str
    title: str
    file: str
    status: str = ""  # draft | scheduled | published | email only
    subject: str = ""
    from_: str = ""
    preheader: str = ""
    html_size: int = 0
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    spam: Spam = field(default_factory=lambda: Spam(False, note="not checked"))
    links: list[LinkResult] = field(default_factory=list)
    anchors: list[Finding] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    diff: str = ""
    diff_note: str = ""
    shots: list[Shot] = field(default_factory=list)
    shots_note: str = ""
    link_note: str = ""
    eml: bytes = field(default=b"", repr=False)  # the message as a reader gets it: written beside the report

    @property
    def verdict(self) -> str:
        levels = [f.level for f in self.findings + self.anchors] + [link.level for link in self.links]
        if self.spam.checked and self.spam.score is not None and self.spam.required is not None \
                and self.spam.score >= self.spam.required:
            levels.append("error")
        return ERRORS if "error" in levels else WARNINGS if "warning" in levels else OK

    def as_json(self) -> dict[str, Any]:
        return {"slug": self.slug, "title": self.title, "file": self.file, "status": self.status,
                "verdict": self.verdict,
                "email": {"subject": self.subject, "from": self.from_, "preheader": self.preheader,
                          "html_bytes": self.html_size, "gmail_clip_bytes": _clip(), "text": self.text,
                          "headers": self.headers},
                "spam": self.spam.as_json(), "links": [link.as_json() for link in self.links],
                "links_note": self.link_note or None, "anchors": [a.as_json() for a in self.anchors],
                "checks": [f.as_json() for f in self.findings],
                "diff": self.diff or None, "diff_note": self.diff_note,
                "screenshots": [s.as_json() for s in self.shots], "screenshots_note": self.shots_note or None,
                "eml": f"{self.slug}.eml" if self.eml else None}


@dataclass
class Review:
    site_title: str
    issues: list[IssueReview]
    selection: str  # how the issues were chosen
    offline: bool = False
    strict: bool = False
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        worst = max((_RANK[i.verdict] for i in self.issues), default=0)
        return {0: OK, 1: WARNINGS, 2: ERRORS}[worst]

    @property
    def exit_code(self) -> int:
        """0 ok or warnings, 1 errors (and warnings with `strict`): what CI gates on."""
        return 1 if self.verdict == ERRORS or (self.strict and self.verdict == WARNINGS) else 0

    def as_json(self) -> dict[str, Any]:
        return {"publisher": __version__, "site": self.site_title, "verdict": self.verdict,
                "exit_code": self.exit_code, "strict": self.strict, "offline": self.offline,
                "selection": self.selection, "seconds": round(self.seconds, 2),
                "issues": [i.as_json() for i in self.issues]}


def _clip() -> int:
    from .emails import GMAIL_CLIP_BYTES

    return GMAIL_CLIP_BYTES


# ---------------------------------------------------------------- choosing the issues


def changed_files(root: Path, ref: str) -> list[Path]:
    """The Markdown files under content/ changed since `ref` (committed since the merge base of `ref` and HEAD,
    or not committed yet, or new and untracked), as absolute paths; deleted files are left out."""
    if not ref or ref.startswith("-"):
        raise PublisherError(f"--changed-since {ref!r} is not a git revision", field="--changed-since")
    if shutil.which("git") is None:
        raise PublisherError("--changed-since needs git, which is not installed", field="--changed-since")

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60, check=False)

    resolved = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if resolved.returncode != 0:
        raise PublisherError(f"--changed-since: {ref!r} is not a commit of the repository at {root}",
                             field="--changed-since",
                             hint="in CI, check out with the whole history (actions/checkout: fetch-depth: 0)")
    base = git("merge-base", ref, "HEAD")
    since = base.stdout.strip() if base.returncode == 0 and base.stdout.strip() else resolved.stdout.strip()
    diff = git("diff", "--relative", "--name-only", "--diff-filter=d", "-z", since, "--", "content")
    if diff.returncode != 0:
        raise PublisherError(f"git diff failed: {diff.stderr.strip()}", field="--changed-since")
    new = git("ls-files", "--others", "--exclude-standard", "-z", "--", "content")
    names = {n for n in (diff.stdout + new.stdout).split("\0") if n}
    return sorted(root / n for n in names if n.lower().endswith((".md", ".markdown")) and (root / n).is_file())


def next_due(issues: Sequence[Issue], now: datetime) -> Issue | None:
    """The issue a scheduler sends next: the earliest scheduled one that is not a draft and is emailed; else the
    newest one that is not a draft."""
    scheduled = [i for i in issues if not i.draft and i.send and i.is_future(now)]
    if scheduled:
        return min(scheduled, key=lambda i: (i.date, i.slug))
    ready = [i for i in issues if not i.draft]
    return ready[0] if ready else None


# ---------------------------------------------------------------- link checking


_NOT_ASCII = re.compile(r"[^\x21-\x7e]+")


def _request(url: str, method: str, timeout: float) -> tuple[int, str]:
    """One request, no redirect followed: (status, Location header or "")."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    target = _NOT_ASCII.sub(lambda m: quote(m.group(), safe=""), target)  # a Chinese path, a space: encoded
    try:
        connection.request(method, target, headers={"User-Agent": USER_AGENT, "Accept": "*/*",
                                                    "Accept-Encoding": "identity", "Connection": "close"})
        response = connection.getresponse()
        return response.status, response.getheader("Location") or ""
    finally:
        connection.close()  # never read the body: a GET stops at the headers


def check_link(url: str, *, timeout: float = LINK_TIMEOUT, deadline: float | None = None) -> LinkResult:
    """HEAD `url` (GET when HEAD is refused), following redirects by hand up to MAX_REDIRECTS, each hop
    recorded. Never fetches anything but http(s)."""
    result = LinkResult(url)
    started = time.monotonic()
    current = url.split("#", 1)[0]
    seen = {current}
    try:
        for _ in range(MAX_REDIRECTS + 1):
            if urlsplit(current).scheme not in ("http", "https") or not urlsplit(current).hostname:
                result.error = f"redirect to {current!r}, not an http(s) URL" if result.chain else "not an http(s) URL"
                return result
            left = timeout if deadline is None else min(timeout, deadline - time.monotonic())
            if left <= 0:
                result.error = "not checked: the time limit for links was reached"
                return result
            status, location = _request(current, "HEAD", left)
            result.method = "HEAD"
            if status in (405, 501):  # HEAD not allowed: ask again with GET
                status, location = _request(current, "GET", left)
                result.method = "GET"
            result.status = status
            if status in REDIRECTS and location:
                result.chain.append((status, current))
                current = urljoin(current, location)
                if current.split("#", 1)[0] in seen:
                    result.error = f"redirect loop back to {current}"
                    result.final_url = current
                    return result
                seen.add(current)
                continue
            result.final_url = current
            return result
        result.error = f"more than {MAX_REDIRECTS} redirects"
        result.final_url = current
        return result
    except TimeoutError:
        result.error = f"timeout after {timeout:g} s"
    except ValueError as exc:  # a port out of range, a URL http.client cannot send
        result.error = f"invalid URL: {exc}"
    except (OSError, http.client.HTTPException) as exc:  # refused, DNS, TLS, a bad answer
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        result.error = f"{type(exc).__name__}: {reason}"
    finally:
        result.seconds = time.monotonic() - started
    result.final_url = current
    return result


def check_links(urls: Iterable[str], *, concurrency: int = LINK_CONCURRENCY, timeout: float = LINK_TIMEOUT,
                total: float = LINKS_TOTAL) -> dict[str, LinkResult]:
    """Check each URL once, `concurrency` at a time; when `total` seconds have passed, the rest is "not checked"."""
    unique = list(dict.fromkeys(urls))
    deadline = time.monotonic() + total
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="review-link") as pool:
        results = list(pool.map(lambda u: check_link(u, timeout=timeout, deadline=deadline), unique))
    return dict(zip(unique, results, strict=True))


# ---------------------------------------------------------------- what the issue links to


_ID = re.compile(r"""\b(?:id|name)\s*=\s*["']([^"']+)["']""")
_HEADING = re.compile(r"<h([1-6])\b[^>]*>(.*?)</h\1>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")


def ids_in(page: str) -> set[str]:
    return {html_mod.unescape(m) for m in _ID.findall(page)}


def empty_sections(body_html: str) -> list[str]:
    """The headings of `body_html` followed by nothing before the next heading of the same or a higher level."""
    headings = [(m.start(), m.end(), int(m.group(1)), _TAG.sub("", m.group(2)).strip())
                for m in _HEADING.finditer(body_html)]
    empty = []
    for n, (_, end, level, text) in enumerate(headings):
        stop = next((start for start, _, other, _ in headings[n + 1:] if other <= level), len(body_html))
        between = body_html[end:stop]
        if not _TAG.sub("", between).strip() and not re.search(r"<(img|video|iframe|hr|table|h[1-6])\b", between):
            empty.append(html_mod.unescape(text))
    return empty


# ---------------------------------------------------------------- SpamAssassin


_RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*)$")


def parse_spamassassin(output: str) -> Spam:
    """Score, threshold and rules from the output of `spamassassin -t`."""
    status = re.search(r"^X-Spam-Status:.*?score=(-?[\d.]+)\s+required=(-?[\d.]+)", output, re.M)
    details = re.search(r"Content analysis details:\s+\((-?[\d.]+) points?, (-?[\d.]+) required\)", output)
    found = details or status
    if found is None:
        return Spam(False, note="SpamAssassin gave no score")
    rules: list[tuple[float, str, str]] = []
    lines = output[details.end():].splitlines() if details else []
    started = False
    for line in lines:
        if line.startswith("----"):
            started = True
            continue
        if not started:
            continue
        rule = _RULE.match(line)
        if rule:
            rules.append((float(rule.group(1)), rule.group(2), rule.group(3).strip()))
        elif line.strip() and line.startswith(" ") and rules:
            points, name, text = rules[-1]
            rules[-1] = (points, name, f"{text} {line.strip()}")
        else:
            break
    return Spam(True, float(found.group(1)), float(found.group(2)), rules)


def spam_check(message: bytes) -> Spam:
    path = shutil.which("spamassassin")
    if path is None:
        return Spam(False, note="not checked: spamassassin is not installed (apt-get install spamassassin)")
    try:
        done = subprocess.run([path, "-L", "-t"], input=message, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Spam(False, note=f"not checked: spamassassin failed ({exc})")
    spam = parse_spamassassin(done.stdout.decode("utf-8", "replace"))
    if not spam.checked:
        spam.note = f"not checked: {spam.note} (exit {done.returncode}: {done.stderr.decode()[-200:].strip()})"
    return spam


# ---------------------------------------------------------------- screenshots


def chromium_path() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def png_size(data: bytes) -> tuple[int, int]:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@dataclass
class _ShotJob:
    slug: str
    name: str
    label: str
    width: int
    url: str = ""  # a page of the site (through the in-memory site)
    html: str = ""  # or a document (the email)
    dark: bool = False


def take_screenshots(jobs: Sequence[_ShotJob], folder: Path, site_url: str,
                     site_file: Callable[[str], bytes | None]) -> tuple[list[Shot], str]:
    """Each job's screenshot into `folder` through Playwright and the system Chromium. Requests to `site_url`
    are answered from `site_file(path)`; every other request is refused, so a screenshot is the same offline
    as online. Returns (shots, note): the note says why there are none."""
    if not jobs:
        return [], ""
    try:
        import playwright.sync_api as playwright_api
    except ImportError:
        return [], f"not taken: {INSTALL_HINT}"
    executable = chromium_path()
    if executable is None:
        return [], "not taken: Chromium is not installed (apt-get install chromium)"

    def route(route: Any) -> None:
        url = route.request.url
        if not url.startswith(site_url):
            route.abort()
            return
        path = unquote(urlsplit(url[len(site_url):]).path)
        if path == "" or path.endswith("/"):
            path += "index.html"
        data = site_file(path)
        if data is None:
            route.fulfill(status=404, body=b"not found", content_type="text/plain")
            return
        kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
        charset = "; charset=utf-8" if kind.startswith("text/") else ""
        route.fulfill(status=200, body=data, content_type=kind + charset)

    folder.mkdir(parents=True, exist_ok=True)
    shots = []
    try:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
            try:
                # One page per document (the issue page, the email), loaded once and shot at each width.
                groups: dict[tuple[str, str], list[_ShotJob]] = {}
                for job in jobs:
                    groups.setdefault((job.url, job.html), []).append(job)
                for (url, document), group in groups.items():
                    context = browser.new_context(viewport={"width": group[0].width, "height": 800},
                                                  device_scale_factor=1, service_workers="block")
                    try:
                        context.route("**/*", route)
                        page = context.new_page()
                        if url:
                            page.goto(url, wait_until="load", timeout=30_000)
                        else:
                            page.set_content(document, wait_until="load", timeout=30_000)
                        for job in group:
                            page.set_viewport_size({"width": job.width, "height": 800})
                            page.emulate_media(color_scheme="dark" if job.dark else "light")
                            height = int(page.evaluate("Math.max(document.documentElement.scrollHeight, "
                                                       "document.body ? document.body.scrollHeight : 0)"))
                            height = max(1, min(height, SHOT_MAX_HEIGHT))
                            data = page.screenshot(full_page=True, clip={"x": 0, "y": 0, "width": job.width,
                                                                         "height": height})
                            (folder / job.name).write_bytes(data)
                            width, height = png_size(data)
                            shots.append(Shot(job.name, job.label, width, height))
                    finally:
                        context.close()
            finally:
                browser.close()
    except Exception as exc:  # noqa: BLE001 (a browser that cannot start is a note in the report, not a crash)
        return shots, f"not all taken: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return shots, ""


# ---------------------------------------------------------------- the review


@dataclass
class Options:
    slugs: Sequence[str] = ()
    changed_since: str | None = None
    out: Path | None = None
    offline: bool = False
    screenshots: bool = True
    spam: bool = True
    strict: bool = False
    max_image_kb: int = MAX_IMAGE_KB
    link_timeout: float = LINK_TIMEOUT
    links_total: float = LINKS_TOTAL
    concurrency: int = LINK_CONCURRENCY


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _load(config: Config) -> tuple[list[Issue], dict[str, list[str]], list[str]]:
    """(issues that load, problems by file for those that do not, warnings logged while loading)."""
    from . import content

    files = content.content_files(config.content_dir)[0]
    catcher = _Warnings()
    top = logging.getLogger("publisher")
    top.addHandler(catcher)
    try:
        try:
            return content.load_issues(config, files), {}, catcher.messages
        except PublisherError:
            pass
        issues, problems = [], {}
        for file in files:  # one at a time, to tell which files fail
            try:
                issues.extend(content.load_issues(config, [file]))
            except PublisherError as exc:
                problems[str(relpath(file, config.root))] = [str(p) for p in exc.problems]
        return content.sort_issues(issues), problems, catcher.messages
    finally:
        top.removeHandler(catcher)


def review(config: Config, options: Options, *, now: datetime) -> Review:
    """Review the chosen issues; writes only the report folder (`options.out`)."""
    from . import build as build_mod
    from . import content, emails, markdown, tokens
    from .themes import load_theme

    started = time.monotonic()
    out = (options.out or config.root / "review").resolve()
    if out == config.content_dir.resolve() or config.content_dir.resolve() in out.parents \
            or out == config.output_dir.resolve() or config.output_dir.resolve() in out.parents:
        raise PublisherError(f"--out {out} is inside content/ or the build output: the report would be published",
                             field="--out", hint="use a folder of its own, e.g. review/")
    _prepare_out(out)
    issues, load_problems, load_warnings = _load(config)
    selection, chosen, failed = _choose(config, options, issues, load_problems, now)
    theme = load_theme(config)
    quiet_config = dataclasses.replace(config, search=dataclasses.replace(config.search, enabled=False))
    web = [i for i in issues if not i.send_only]
    site = build_mod.render(quiet_config, web, theme=theme, now=now,
                            assets=content.content_files(config.content_dir)[1]) if chosen else None
    produced = set(site.files) if site else set()
    pages = {str(i.path): i.url_path for i in issues}
    broken = content.broken_links(config, issues, produced) if chosen else []
    general = _general_warnings(config, emails, theme) if chosen else []
    try:
        secret, secret_note = tokens.secret_from_env(), ""
    except PublisherError:
        import secrets

        secret, secret_note = secrets.token_bytes(32), "PUBLISHER_SECRET is not set: links signed with a throwaway key"

    reviews = [_failed(config, file, problems) for file, problems in failed]
    jobs: list[_ShotJob] = []
    link_jobs: list[tuple[IssueReview, list[LinkResult]]] = []
    for issue in chosen:
        shown = str(relpath(issue.file, config.root))
        item = IssueReview(issue.slug, issue.title, shown, status=_status(issue, now))
        rendered = emails.render_email(config, issue, markdown.to_html(issue.body), theme=theme, pages=pages)
        sender = emails.sender_of(config, require_address=False, theme=theme)
        factory = emails.MessageFactory(rendered, sender, secret, date=now)
        reader = emails.Recipient(emails.EXAMPLE_ADDRESS, "")
        message = item.eml = factory.message(reader)
        parsed = message_from_bytes(message, policy=policy.default)
        item.subject, item.preheader, item.html_size = rendered.subject, rendered.preheader, rendered.html_size
        item.from_ = str(parsed["From"])
        item.text = factory.text_for(reader)
        item.headers = {k: str(parsed[k]) for k in ("From", "Reply-To", "Subject", "List-Id", "List-Unsubscribe",
                                                     "List-Unsubscribe-Post", "Precedence", "Message-ID")
                        if parsed[k] is not None}
        if secret_note:
            item.findings.append(Finding("info", secret_note))
        # What `check` says about this issue, and more.
        for text in [*load_warnings, *broken, *rendered.warnings]:
            if text.startswith(shown):
                item.findings.append(Finding("warning", text))
        item.findings += [Finding("warning", text) for text in general]
        item.findings += _content_checks(config, issue, options, markdown.to_html(issue.body))
        if not item.headers.get("List-Unsubscribe-Post", "").endswith("One-Click"):
            item.findings.append(Finding("warning", "no List-Unsubscribe-Post: One-Click header"))
        if not options.spam:
            item.spam = Spam(False, note="not checked (--no-spam)")
        item.diff, item.diff_note = _diff_with_sent(config, issue, factory)
        if item.diff:
            item.findings.append(Finding("warning", "the issue was edited after it was sent (see the diff)"))
        # Links: the body's, absolute as in the email; the site's own pages against the rendered site.
        page_html = site.data(issue.url_path + "index.html") if site and not issue.send_only else b""
        page_text = page_html.decode("utf-8", "replace") if isinstance(page_html, bytes) else ""
        results = _links(config, issue, markdown, pages, produced, item, page_text, site)
        link_jobs.append((item, results))
        if options.screenshots:
            html_doc = factory.html_for(reader)
            if not issue.send_only:
                url = markdown.absolute_url(config.site.url, issue.url_path)
                jobs += [_ShotJob(issue.slug, f"{issue.slug}-page-375.png", "Issue page, 375 px", 375, url=url),
                         _ShotJob(issue.slug, f"{issue.slug}-page-1280.png", "Issue page, 1280 px", 1280, url=url)]
            slug = issue.slug
            jobs += [_ShotJob(slug, f"{slug}-email-375.png", "Email, 375 px", 375, html=html_doc),
                     _ShotJob(slug, f"{slug}-email-600.png", "Email, 600 px", 600, html=html_doc),
                     _ShotJob(slug, f"{slug}-email-dark-375.png", "Email, dark mode, 375 px", 375, html=html_doc,
                              dark=True)]
        reviews.append(item)

    # SpamAssassin and the links (each URL once, for all issues) run while Chromium takes the screenshots.
    external = [r.url for _, results in link_jobs for r in results if not r.local and not r.error]
    scored = [item for item in reviews if item.eml] if options.spam else []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="review") as pool:
        spam_future = pool.submit(lambda: [spam_check(item.eml) for item in scored])
        links_future = pool.submit(check_links, external if not options.offline else [],
                                   concurrency=options.concurrency, timeout=options.link_timeout,
                                   total=options.links_total)
        for item in reviews:
            if item.eml:
                (out / f"{item.slug}.eml").write_bytes(item.eml)
        if jobs and site is not None:
            def site_file(path: str) -> bytes | None:
                if path not in site.files:
                    return None
                data = site.data(path)
                return data if isinstance(data, bytes) else data.read_bytes()

            shots, note = take_screenshots(jobs, out / "screens", config.site.url, site_file)
            slug_of = {job.name: job.slug for job in jobs}
            for item in reviews:
                item.shots = [shot for shot in shots if slug_of[shot.name] == item.slug]
                item.shots_note = note
        elif not options.screenshots:
            for item in reviews:
                item.shots_note = "not taken (--no-screenshots)"
        for item, spam in zip(scored, spam_future.result(), strict=True):
            item.spam = spam
        checked = links_future.result()
    for item, results in link_jobs:
        for result in results:
            if result.local or result.error:
                continue
            if options.offline:
                result.error = "not checked: offline"
                continue
            done = checked[result.url]
            result.status, result.chain, result.final_url = done.status, done.chain, done.final_url
            result.error, result.method, result.seconds = done.error, done.method, done.seconds
        item.links = sorted(results, key=lambda r: (-_RANK.get({"error": ERRORS, "warning": WARNINGS}.get(
            r.level, OK), 0), r.url))
        if options.offline:
            item.link_note = "links not checked over the network (--offline); the site's own pages were"
    result = Review(config.site.title, reviews, selection, offline=options.offline, strict=options.strict)
    result.seconds = time.monotonic() - started
    write_reports(result, out)
    return result


def _status(issue: Issue, now: datetime) -> str:
    if issue.draft:
        return "draft"
    if issue.send_only:
        return "email only"
    return "scheduled" if issue.is_future(now) else "published"


def _choose(config: Config, options: Options, issues: list[Issue], problems: dict[str, list[str]],
            now: datetime) -> tuple[str, list[Issue], list[tuple[str, list[str]]]]:
    from . import content

    failed: list[tuple[str, list[str]]] = []
    if options.slugs:
        chosen = []
        for slug in options.slugs:
            try:
                chosen.append(content.find_issue(issues, slug))
            except PublisherError:
                broken = [(f, p) for f, p in problems.items() if content.slug_from_filename(Path(f)) == slug]
                if not broken:
                    raise
                failed += [item for item in broken if item not in failed]
        return "the issues named: " + ", ".join(options.slugs), chosen, failed
    if options.changed_since:
        files = changed_files(config.root, options.changed_since)
        by_file = {i.file.resolve(): i for i in issues}
        chosen = [by_file[f.resolve()] for f in files if f.resolve() in by_file]
        shown = {str(relpath(f, config.root)) for f in files}
        failed = [(f, p) for f, p in problems.items() if f in shown]
        return f"the issues changed since {options.changed_since}", chosen, failed
    if problems:
        failed = list(problems.items())
    issue = next_due(issues, now)
    return "the next issue due", ([issue] if issue else []), failed


def _failed(config: Config, file: str, problems: list[str]) -> IssueReview:
    from .content import slug_from_filename

    slug = slug_from_filename(Path(file))
    item = IssueReview(slug, slug, file, status="does not load")
    item.findings = [Finding("error", p) for p in problems]
    item.shots_note = "not taken: the issue does not load"
    return item


def _general_warnings(config: Config, emails: Any, theme: Any) -> list[str]:
    """The warnings of `check` about the settings (not one issue)."""
    warnings = []
    if not config.email.postal_address:
        warnings.append(f"{config.file.name}: email.postal_address is empty; CAN-SPAM requires a physical postal "
                        "address in every commercial email")
    if not (config.email.from_address or config.site.author_email):
        warnings.append(f"{config.file.name}: email.from_address is not set; sending needs it")
    if not config.site.author:
        warnings.append(f"{config.file.name}: site.author is empty; the Atom feeds name the site title instead")
    return warnings + emails.email_warnings(config)


def _content_checks(config: Config, issue: Issue, options: Options, body_html: str) -> list[Finding]:
    from . import markdown

    found = []
    shown = relpath(issue.file, config.root)
    if not issue.summary.strip():
        found.append(Finding("warning", f"{shown}: the summary is empty (the archive, feeds and inbox line show "
                                        "nothing): write a first paragraph or a summary:"))
    elif len(issue.summary) > markdown.SUMMARY_LENGTH + 1:
        found.append(Finding("warning", f"{shown}: summary: {len(issue.summary)} characters; inboxes and feed "
                                        f"readers show about {markdown.SUMMARY_LENGTH}"))
    for heading in empty_sections(body_html):
        found.append(Finding("warning", f"{shown}: the section {heading!r} is empty"))
    urls = [*issue.embeds, *([issue.image] if issue.image and markdown.is_relative(issue.image) else [])]
    for url in dict.fromkeys(urls):
        target = markdown.target_path(url, issue.path.parent, {}, issue.url_path)
        if target is None:
            continue
        path = config.content_dir / unquote(target.split("#", 1)[0].split("?", 1)[0])
        try:
            size = path.stat().st_size
        except OSError:
            found.append(Finding("error", f"{shown}: the image {url!r} is not a file in content/"))
            continue
        if size > options.max_image_kb * 1024:
            found.append(Finding("warning", f"{shown}: the image {url} is {size // 1024} KB (over "
                                            f"{options.max_image_kb} KB): slow on phones, heavy in every email"))
    return found


def _links(config: Config, issue: Issue, markdown: Any, pages: dict[str, str], produced: set[str],
           item: IssueReview, page_html: str, site: Any) -> list[LinkResult]:
    """Every link and image of the issue's body (and `image:`), absolute; the site's own checked here."""
    permalink = markdown.absolute_url(config.site.url, issue.url_path)
    fragment = markdown.absolutize(markdown.to_html(issue.body), issue.path.parent, pages, config.site.url,
                                   permalink)
    found: dict[str, LinkResult] = {}
    own_ids = ids_in(page_html) if page_html else ids_in(fragment)
    if issue.image:
        cover = markdown.absolute(issue.image, issue.path.parent, pages, config.site.url, permalink)
        found[cover] = LinkResult(cover, "image")
    for attr, url in markdown.urls_in(fragment):
        kind = "image" if attr in ("src", "poster", "srcset") else "link"
        if url.startswith("#"):
            anchor = unquote(url[1:])
            if anchor and anchor not in own_ids:
                item.anchors.append(Finding("error", f"#{anchor}: no element of the issue's page has this id"))
            continue
        if url in found:
            found[url].count += 1
            continue
        result = LinkResult(url, kind)
        found[url] = result
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            result.error = f"not checked: a {scheme or 'relative'} URL"
            continue
        if url.startswith(config.site.url):
            result.local = True
            path = unquote(urlsplit(url[len(config.site.url):]).path)
            candidates = [path, path.rstrip("/") + "/index.html" if path else "index.html"]
            hit = next((c.lstrip("/") for c in candidates if c.lstrip("/") in produced), None)
            result.status = 200 if hit else 404
            result.method = "site"
            anchor = unquote(urlsplit(url).fragment)
            if hit and anchor and hit.endswith(".html") and site is not None:
                data = site.data(hit)
                text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data.read_text("utf-8")
                if anchor not in ids_in(text):
                    item.anchors.append(Finding("error", f"{url}: the page has no element with the id {anchor!r}"))
    return list(found.values())


def _diff_with_sent(config: Config, issue: Issue, factory: Any) -> tuple[str, str]:
    """A diff of the text part last sent (the outbox keeps each message) and the text now."""
    from . import emails

    folder = config.root / config.email.outbox / issue.slug
    copies = sorted(folder.glob("*.eml"), key=lambda p: (p.stat().st_mtime_ns, p.name)) if folder.is_dir() else []
    if not copies:
        how = "" if config.email.transport == "outbox" else f" (email.transport is {config.email.transport})"
        return "", f"no sent copy to compare{how}"
    sent = message_from_bytes(copies[-1].read_bytes(), policy=policy.default)
    part = sent.get_body(preferencelist=("plain",))
    if part is None:
        return "", f"no text part in {relpath(copies[-1], config.root)}"
    name, address = parseaddr(str(sent["To"] or ""))
    now_text = factory.text_for(emails.Recipient(address or emails.EXAMPLE_ADDRESS, name))
    token = re.compile(r"token=[A-Za-z0-9_.%~-]+")
    before = token.sub("token=…", part.get_content()).splitlines()
    after = token.sub("token=…", now_text).splitlines()
    diff = "\n".join(difflib.unified_diff(before, after, "sent", "now", lineterm="", n=2))
    source = relpath(copies[-1], config.root)
    return diff, (f"edited since it was sent: compared with {source}" if diff else
                  f"unchanged since it was sent (compared with {source})")


def _prepare_out(out: Path) -> None:
    """The report folder: made and marked; its screens/ emptied of the last review's images (marked only)."""
    marked = (out / MARK).exists()
    if out.exists() and not marked and any(out.iterdir()):
        names = {p.name for p in out.iterdir()}
        if not all(n in ("report.html", "report.md", "report.json", "screens") or n.endswith(".eml") for n in names):
            raise PublisherError(f"{out} holds other files: the review writes only into an empty folder or one it "
                                 "made", field="--out", hint="choose another folder, e.g. review/")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARK).touch()
    screens = out / "screens"
    if marked:
        for old in [*screens.glob("*.png"), *out.glob("*.eml")]:
            old.unlink()


# ---------------------------------------------------------------- the reports


def write_reports(result: Review, out: Path) -> None:
    (out / "report.json").write_text(json.dumps(result.as_json(), ensure_ascii=False, indent=2) + "\n",
                                     encoding="utf-8")
    (out / "report.md").write_text(markdown_report(result), encoding="utf-8")
    (out / "report.html").write_text(html_report(result), encoding="utf-8")


_BADGE = {OK: "✅ OK", WARNINGS: "⚠️ warnings", ERRORS: "❌ errors"}
_MARK = {"error": "❌", "warning": "⚠️", "info": "ℹ️", "ok": "✅"}


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", text)


def _fence(text: str) -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}\n{text}\n{ticks}"


def _link_line(link: LinkResult) -> str:
    hops = " → ".join(f"{s} {u}" for s, u in link.chain)
    what = link.error or (f"{link.status}" if link.status is not None else "")
    via = f" ({link.method})" if link.method != "HEAD" else ""
    chain = f" — redirects: {hops} → {link.status} {link.final_url}" if link.chain else ""
    times = f" ×{link.count}" if link.count > 1 else ""
    return f"- {_MARK[link.level]} `{link.url}`{times} {link.kind}: {_md_escape(what)}{via}{chain}"


def _issue_markdown(item: IssueReview, links_shown: int, text_chars: int, diff_chars: int) -> str:
    lines = [f"## {_BADGE[item.verdict]} — {_md_escape(item.title)} (`{item.slug}`, {item.status})", "",
             f"`{item.file}`", ""]
    if item.subject:
        clip = _clip()
        over = " ❌ over Gmail's clip: the end is hidden behind “View entire message”" if item.html_size > clip else ""
        lines += ["### The email in an inbox", "",
                  "| | |", "| --- | --- |",
                  f"| From | {_md_escape(item.from_)} |",
                  f"| Subject | **{_md_escape(item.subject)}** |",
                  f"| Preheader | {_md_escape(item.preheader[:140])}{'…' if len(item.preheader) > 140 else ''} |",
                  f"| Size | {item.html_size / 1024:.1f} KB of Gmail's 102 KB clip "
                  f"({item.html_size / clip:.0%}){over} |",
                  f"| List-Unsubscribe | {_md_escape(item.headers.get('List-Unsubscribe', '—')[:120])} |",
                  f"| One-Click | {_md_escape(item.headers.get('List-Unsubscribe-Post', 'missing'))} |", ""]
        spam = item.spam
        if spam.checked:
            verdict = "❌ spam" if spam.score is not None and spam.required is not None \
                and spam.score >= spam.required else "✅ not spam"
            lines += [f"**SpamAssassin**: {spam.score} points ({spam.required} required): {verdict}", ""]
            if spam.rules:
                lines += ["| points | rule | description |", "| ---: | --- | --- |"]
                lines += [f"| {p} | `{r}` | {_md_escape(d)} |" for p, r, d in spam.rules]
                lines.append("")
        else:
            lines += [f"**SpamAssassin**: {spam.note}", ""]
    findings = item.findings + item.anchors
    lines += ["### Checks", ""]
    shown = [f for f in findings if f.level != "info"] + [f for f in findings if f.level == "info"]
    lines += [f"- {_MARK[f.level]} {_md_escape(f.message)}" for f in shown] or ["- ✅ nothing to report"]
    lines.append("")
    if item.links or item.link_note:
        counts = {level: sum(1 for link in item.links if link.level == level)
                  for level in ("error", "warning", "ok", "info")}
        redirects = sum(1 for link in item.links if link.chain)
        lines += [f"### Links: {len(item.links)} ({counts['error']} broken, {counts['warning']} to look at, "
                  f"{counts['ok']} OK, {redirects} redirected, {counts['info']} not checked)", ""]
        if item.link_note:
            lines += [f"_{item.link_note}_", ""]
        worth = [link for link in item.links if link.level in ("error", "warning") or link.chain]
        for link in worth[:links_shown]:
            lines.append(_link_line(link))
        if len(worth) > links_shown:
            lines.append(f"- … and {len(worth) - links_shown} more (see report.json)")
        lines.append("")
    if item.text:
        text = item.text if len(item.text) <= text_chars else item.text[:text_chars] + "\n[… cut, see report.json]"
        lines += ["<details><summary>The plain-text part</summary>", "", _fence(text), "", "</details>", ""]
    if item.diff or item.diff_note:
        lines += [f"**Since sending**: {_md_escape(item.diff_note)}", ""]
        if item.diff:
            diff = item.diff if len(item.diff) <= diff_chars else item.diff[:diff_chars] + "\n[… cut]"
            lines += ["<details><summary>Diff of the text part</summary>", "", "```diff", diff, "```", "",
                      "</details>", ""]
    if item.shots:
        lines += ["**Screenshots** (beside the report, and in the workflow's artifact): "
                  + ", ".join(f"`screens/{s.name}` ({s.width}×{s.height})" for s in item.shots)
                  + (f"; the message: `{item.slug}.eml`" if item.eml else ""), ""]
    elif item.shots_note:
        lines += [f"**Screenshots**: {item.shots_note}", ""]
    return "\n".join(lines)


def markdown_report(result: Review, limit: int = MARKDOWN_LIMIT) -> str:
    """The report for a pull-request comment: under `limit` characters, long lists cut with a count."""
    strict = " (--strict: warnings fail)" if result.strict else ""
    head = [f"# publisher review: {_BADGE[result.verdict]}{strict}", "",
            f"{_plural(len(result.issues), 'issue')} of {_md_escape(result.site_title)}, {result.selection}. "
            f"Exit status {result.exit_code}.", ""]
    if not result.issues:
        head += ["Nothing to review.", ""]
    budgets = [(50, 6000, 6000), (20, 2000, 2000), (10, 500, 500), (3, 0, 0)]
    for links, text, diff in budgets:
        body = "\n".join(head + [_issue_markdown(i, links, text, diff) for i in result.issues])
        footer = f"\n<sub>publisher {__version__} · {result.seconds:.1f} s</sub>\n"
        if len(body) + len(footer) < limit:
            return body + footer
    note = "\n\n[… the report was cut to fit a comment: see report.html and report.json]\n"
    return body[: limit - len(note) - 1] + note


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><title>publisher review: {{ verdict }}</title>
<style>
:root { --fg: #1f2328; --bg: #fff; --muted: #59636e; --line: #d1d9e0; --ok: #1a7f37; --warn: #9a6700;
        --err: #d1242f; --box: #f6f8fa; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9198a1; --line: #3d444d; --ok: #3fb950; --warn: #d29922;
          --err: #f85149; --box: #151b23; }
}
body { font: 15px/1.5 -apple-system, "Segoe UI", "PingFang SC", "Noto Sans CJK SC", sans-serif; color: var(--fg);
       background: var(--bg); margin: 0 auto; padding: 16px 24px; max-width: 1200px; }
a { color: inherit; } h1, h2, h3 { line-height: 1.25; } .muted { color: var(--muted); }
.ok { color: var(--ok); } .warning, .warnings { color: var(--warn); } .error, .errors { color: var(--err); }
.verdict { font-weight: 700; } section.issue { border-top: 2px solid var(--line); margin-top: 24px; }
table { border-collapse: collapse; width: 100%; } td, th { border-bottom: 1px solid var(--line); padding: 4px 8px;
text-align: left; vertical-align: top; } td.url { word-break: break-all; }
pre { white-space: pre-wrap; background: var(--box); padding: 12px; border-radius: 6px; overflow-x: auto; }
.shots { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
.shots figure { margin: 0; } .shots img { width: 180px; height: auto; max-height: 420px; object-fit: cover;
object-position: top; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
.inbox { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; background: var(--box); }
.inbox .from { font-weight: 700; } .inbox .pre { color: var(--muted); }
.bar { height: 8px; background: var(--line); width: 220px; display: inline-block; vertical-align: middle; }
.bar span { display: block; height: 100%; background: var(--ok); } .bar span.over { background: var(--err); }
</style></head><body>
<h1>publisher review: <span class="verdict {{ verdict }}">{{ badge }}</span></h1>
<p>{{ count }} of {{ site }}, {{ selection }}. Exit status {{ exit_code }}{% if strict %}
(--strict: warnings fail){% endif %}. <span class="muted">{{ seconds }} s · publisher {{ version }}</span></p>
{% if not issues %}<p>Nothing to review.</p>{% endif %}
{% for item in issues %}<section class="issue" id="{{ item.slug }}">
<h2><span class="verdict {{ item.verdict }}">{{ badges[item.verdict] }}</span> {{ item.title }}
<span class="muted">({{ item.slug }}, {{ item.status }})</span></h2>
<p class="muted">{{ item.file }}</p>
{% if item.shots %}<h3>Screenshots</h3><div class="shots">{% for s in item.shots %}<figure>
<a href="screens/{{ s.name }}"><img src="screens/{{ s.name }}" alt="{{ s.label }}" loading="lazy"></a>
<figcaption>{{ s.label }}<br><span class="muted">{{ s.width }}×{{ s.height }}</span></figcaption></figure>
{% endfor %}</div>{% elif item.shots_note %}<p class="muted">Screenshots: {{ item.shots_note }}</p>{% endif %}
{% if item.subject %}<h3>The email in an inbox</h3>
<div class="inbox"><div class="from">{{ item.from_ }}</div><div><b>{{ item.subject }}</b>
<span class="pre">— {{ item.preheader }}</span></div></div>
<p>Size: <span class="bar"><span class="{{ 'over' if item.html_size > clip else '' }}"
style="width:{{ [100, (item.html_size * 100 / clip)|round|int]|min }}%"></span></span>
{{ '%.1f'|format(item.html_size / 1024) }} KB of Gmail's 102 KB clip</p>
<table>{% for k, v in item.headers.items() %}<tr><th>{{ k }}</th><td class="url">{{ v }}</td></tr>{% endfor %}</table>
<h3>SpamAssassin</h3>{% if item.spam.checked %}
<p class="{{ 'error' if item.spam.score >= item.spam.required else 'ok' }}">{{ item.spam.score }} points
({{ item.spam.required }} required)</p>
<table><tr><th>points</th><th>rule</th><th>description</th></tr>{% for p, r, d in item.spam.rules %}
<tr><td>{{ p }}</td><td><code>{{ r }}</code></td><td>{{ d }}</td></tr>{% endfor %}</table>
{% else %}<p class="muted">{{ item.spam.note }}</p>{% endif %}{% endif %}
<h3>Checks</h3><ul>{% for f in item.findings + item.anchors %}<li class="{{ f.level }}">{{ f.message }}</li>
{% else %}<li class="ok">nothing to report</li>{% endfor %}</ul>
{% if item.links %}<h3>Links ({{ item.links|length }})</h3>{% if item.link_note %}<p class="muted">
{{ item.link_note }}</p>{% endif %}<table><tr><th></th><th>URL</th><th>kind</th><th>answer</th><th>redirects</th>
</tr>{% for link in item.links %}<tr class="{{ link.level }}"><td>{{ marks[link.level] }}</td>
<td class="url">{% if link.url.startswith(("http://", "https://")) %}<a href="{{ link.url }}">{{ link.url }}</a>
{%- else %}{{ link.url }}{% endif %}{% if link.count > 1 %} ×{{ link.count }}{% endif %}</td>
<td>{{ link.kind }}</td><td>{{ link.error or link.status or '' }}{% if link.method == 'GET' %} (GET){% endif %}</td>
<td class="url">{% for s, u in link.chain %}{{ s }} {{ u }} →<br>{% endfor %}{% if link.chain %}
{{ link.status }} {{ link.final_url }}{% endif %}</td></tr>{% endfor %}</table>{% endif %}
{% if item.text %}<details><summary>The plain-text part</summary><pre>{{ item.text }}</pre></details>{% endif %}
{% if item.diff_note %}<h3>Since sending</h3><p>{{ item.diff_note }}</p>{% endif %}
{% if item.diff %}<pre>{{ item.diff }}</pre>{% endif %}
</section>{% endfor %}
</body></html>
"""


def html_report(result: Review) -> str:
    """One page, no script, no remote resource: it works offline, the screenshots beside it in screens/."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_HTML).render(
        verdict=result.verdict, badge=_BADGE[result.verdict], count=_plural(len(result.issues), "issue"),
        badges=_BADGE, marks=_MARK, issues=result.issues,
        site=result.site_title, selection=result.selection, exit_code=result.exit_code, strict=result.strict,
        seconds=f"{result.seconds:.1f}", version=__version__, clip=_clip())


def render_report(result: Review, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result.as_json(), ensure_ascii=False, indent=2)
    if fmt == "html":
        return html_report(result)
    return markdown_report(result)
