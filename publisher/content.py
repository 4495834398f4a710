"""The content model: each `content/**/*.md` file becomes a validated `Issue`.

Loading is pure (files in, model out) and reports every problem of every file at once. Frontmatter keys are
parsed through one table, `FIELDS`, so a key's rules live in one place.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import logging
import re
import reprlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import frontmatter
import yaml

from . import markdown
from .audience import Audience, AudienceError, parse_audience
from .config import Config
from .errors import Problem, PublisherError, relpath
from .files import walk_files

log = logging.getLogger(__name__)

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}-")
# ISO 8601 and YAML 1.1 timestamps: 2026-11-24, 2026-11-24 8:00, 2026-11-24T08:00:00.5+08:00, ... -5, ...z
_DATE_SHAPE = re.compile(
    r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:(?:[Tt]|[ \t]+)(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?"
    r"[ \t]*(?P<tz>[Zz]|[+-]\d{1,2}(?::?\d{2})?)?)?$"
)


@dataclass(frozen=True)
class Issue:
    file: Path  # absolute path of the Markdown file
    path: PurePosixPath  # the file relative to content/, e.g. 2026/2026-11-19-x.md
    slug: str
    title: str
    date: datetime  # timezone-aware
    body: str  # Markdown, frontmatter removed
    summary: str  # plain text
    tags: tuple[str, ...] = ()
    draft: bool = False
    send: bool = True
    # `send_only: true`: emailed, never on the web (no page, tag page, sitemap entry, feed item or search hit).
    send_only: bool = False
    # Who gets it by tags (audience.py), as the canonical text of an `Audience` (a plain string keeps issues
    # cacheable, see cache._CODECS); None: every active subscriber. `Issue.segment` gives the model.
    audience: str | None = None
    subject: str | None = None
    preheader: str | None = None
    image: str | None = None
    source: str | None = None
    authors: tuple[str, ...] = ()
    # Old addresses (`aliases:`), as site paths such as p/old-post/index.html: each gets a redirect page.
    aliases: tuple[str, ...] = ()
    body_sha: str = ""  # SHA-256 of `body`: render caches key on it without hashing the text again
    digest: str = ""  # SHA-256 of everything a rendering can show of the issue (see `issue_digest`)
    # The relative URLs of the body's images and other embedded media, found once when parsing (and cached with
    # the issue), so that every build can check they exist (`missing_files`) without looking at the body again.
    embeds: tuple[str, ...] = ()
    # The relative `.md` paths the body may link to (`markdown.md_link_targets`), found once when parsing: the
    # render keys of the issue depend on where they lead. None: not looked for (an Issue made by hand).
    md_links: tuple[str, ...] | None = None

    @property
    def url_path(self) -> str:
        """The issue's page, relative to the site root."""
        return f"issues/{self.slug}/"

    def is_future(self, now: datetime) -> bool:
        return self.date > now

    def is_public(self, now: datetime) -> bool:
        return not self.draft and not self.send_only and not self.is_future(now)

    @property
    def segment(self) -> Audience | None:
        return Audience.from_key(self.audience) if self.audience is not None else None


# ---- YAML: dates stay strings so that one parser (ours) reads every date form and names bad ones ----


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# A value shown in a message is cut short: a frontmatter value can be a structure of any size.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 2, 70, 70
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4
SHOWN_LENGTH = 80


def show_value(value: Any) -> str:
    """repr() of a value the user wrote, at most SHOWN_LENGTH characters, cheap whatever its size."""
    text = _REPR.repr(value)
    return text if len(text) <= SHOWN_LENGTH else text[: SHOWN_LENGTH - 1] + "…"


class _FieldError(ValueError):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass
class _Context:
    timezone: ZoneInfo


def _text(value: Any, _: _Context) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _FieldError(f"must be text, got {type(value).__name__}")
    return str(value).strip()


def _title(value: Any, ctx: _Context) -> str:
    if value is None:
        raise _FieldError("is empty", 'write a title, e.g. title: "AI 日报：本周要闻"')
    title = _text(value, ctx)
    if not title:
        raise _FieldError("is empty", 'write a title, e.g. title: "AI 日报：本周要闻"')
    return title


def parse_date(value: Any, tz: ZoneInfo) -> datetime:
    """A YAML date/datetime or an ISO 8601 string; a naive time is in `tz`."""
    hint = "use YYYY-MM-DD, YYYY-MM-DD HH:MM or ISO 8601 like 2026-11-24T08:00:00+08:00"
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    elif isinstance(value, str) and (match := _DATE_SHAPE.match(value.strip())):
        try:
            parsed = _from_match(match)
        except ValueError as exc:
            raise _FieldError(f"{show_value(value.strip())} is not a real date or time ({exc})", hint) from None
    else:
        raise _FieldError(f"{show_value(value)} is not a date", hint)
    parsed = parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        utc = None
    # Pages and emails show the date in the site's time zone, and feeds in UTC: a time within a day of
    # datetime's limits cannot be moved to every zone.
    if utc is None or not _EARLIEST <= utc <= _LATEST:
        raise _FieldError(f"{show_value(value if isinstance(value, str) else str(value))} is out of range",
                          f"use a date from {_EARLIEST:%Y-%m-%d} to {_LATEST:%Y-%m-%d}")
    return parsed


_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)


def _from_match(match: re.Match[str]) -> datetime:
    g = match.groupdict()
    micro = int((g["f"] or "0")[:6].ljust(6, "0"))
    zone = None
    if g["tz"]:
        if g["tz"] in "Zz":
            zone = UTC
        else:
            sign = -1 if g["tz"][0] == "-" else 1
            digits = g["tz"][1:].replace(":", "")
            hours, minutes = (digits[:-2], digits[-2:]) if len(digits) > 2 else (digits, "0")
            zone = timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
    return datetime(int(g["y"]), int(g["m"]), int(g["d"]), int(g["H"] or 0), int(g["M"] or 0), int(g["S"] or 0),
                    micro, tzinfo=zone)


def _date(value: Any, ctx: _Context) -> datetime:
    return parse_date(value, ctx.timezone)


def _slug(value: Any, ctx: _Context) -> str:
    slug = _text(value, ctx)
    if not SLUG.match(slug):
        raise _FieldError(f"{show_value(slug)} is not a valid slug",
                          "use only lowercase a-z, 0-9 and single hyphens, e.g. slug: ai-daily-1124")
    return slug


def _bool(value: Any, _: _Context) -> bool:
    if not isinstance(value, bool):
        raise _FieldError(f"must be true or false, got {show_value(value)}")
    return value


def _string_list(example: str) -> Callable[[Any, _Context], tuple[str, ...]]:
    def parse(value: Any, ctx: _Context) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise _FieldError(f"must be a list, got {type(value).__name__} {show_value(value)}", f"e.g. {example}")
        items = []
        for item in value:
            try:
                text = _text(item, ctx)
            except _FieldError:
                raise _FieldError(f"every item must be text, got {show_value(item)}", f"e.g. {example}") from None
            if text and text not in items:
                items.append(text)
        return tuple(items)

    return parse


def _aliases(value: Any, ctx: _Context) -> tuple[str, ...]:
    """Old addresses of the issue, as the site paths their redirect pages take (redirects.py)."""
    from . import redirects

    example = 'aliases: ["/p/old-post/"] (a path on the old site)'
    paths = []
    for item in _string_list(example)(value, ctx):
        try:
            paths.append(redirects.site_path(item))
        except ValueError as exc:
            raise _FieldError(str(exc), f"e.g. {example}") from None
    if len(paths) > redirects.MAX_ALIASES:
        raise _FieldError(f"has {len(paths)} paths; at most {redirects.MAX_ALIASES}", f"e.g. {example}")
    return tuple(dict.fromkeys(paths))


def _audience(value: Any, _: _Context) -> str:
    """`audience:` (see audience.py for the grammar), kept as the audience's canonical text."""
    try:
        return parse_audience(value).key()
    except AudienceError as exc:
        raise _FieldError(str(exc), exc.hint) from None


# C0 controls, DEL and backslashes: a browser drops or rewrites them (`\x01javascript:` runs as javascript:,
# `\\host` goes to another host), so a check of the scheme alone can be walked around.
_URL_TRICKS = re.compile(r"[\x00-\x1f\x7f\\]")


def _split_url(url: str) -> tuple[str, str]:
    """(scheme, host) of a URL; ("?", "") when it cannot be parsed (e.g. a broken [IPv6] host)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "?", ""
    return parts.scheme, parts.netloc


def _http_url(value: Any, ctx: _Context) -> str:
    url = _text(value, ctx)
    scheme, host = _split_url(url)
    if _URL_TRICKS.search(url) or scheme not in ("http", "https") or not host:
        raise _FieldError(f"{show_value(url)} is not an absolute http(s) URL", "e.g. source: https://example.com/post")
    return url


def _image(value: Any, ctx: _Context) -> str:
    """An http(s) URL, or a path relative to the issue or the site (never javascript:, data: and the like)."""
    url = _text(value, ctx)
    hint = "use an https:// URL or a path like images/cover.png"
    if _URL_TRICKS.search(url):
        raise _FieldError(f"{show_value(url)} has control characters or backslashes", hint)
    scheme, host = _split_url(url)
    if scheme:
        if scheme not in ("http", "https") or not host:
            raise _FieldError(f"{show_value(url)} is not an http(s) URL or a relative path", hint)
    elif url.startswith("//"):
        raise _FieldError(f"{show_value(url)} leaves out the scheme", "write https:// in front")
    return url


# frontmatter key -> (attribute on Issue, parser). Required keys are in REQUIRED.
FIELDS: dict[str, tuple[str, Callable[[Any, _Context], Any]]] = {
    "title": ("title", _title),
    "date": ("date", _date),
    "slug": ("slug", _slug),
    "summary": ("summary", _text),
    "tags": ("tags", _string_list("tags: [大模型, Agents]")),
    "draft": ("draft", _bool),
    "send": ("send", _bool),
    "send_only": ("send_only", _bool),
    "audience": ("audience", _audience),
    "subject": ("subject", _text),
    "preheader": ("preheader", _text),
    "image": ("image", _image),
    "source": ("source", _http_url),
    "authors": ("authors", _string_list('authors: ["张三", "Jane Doe"]')),
    "aliases": ("aliases", _aliases),
}
REQUIRED = ("title", "date")


def _first_alias(frontmatter_text: str) -> int | None:
    """The line (see `_key_line`) of the first YAML alias, or None. An alias is not copied when loaded but
    shared, so a few hundred bytes can stand for a structure of billions of items (the "billion laughs"):
    whatever walks or prints it then runs for minutes. Frontmatter has no need for them."""
    if "*" not in frontmatter_text:
        return None  # no alias without its `*`: the usual frontmatter is not parsed twice
    try:
        for event in yaml.parse(frontmatter_text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                return event.start_mark.line + 1  # type: ignore[no-any-return]
    except yaml.YAMLError:
        return None  # the load reports it, with its line
    return None


def slug_from_filename(path: Path) -> str:
    return _DATE_PREFIX.sub("", path.stem, count=1)


def _key_line(frontmatter_text: str, key: str) -> int | None:
    """Line number (1-based, in the file) of a top-level frontmatter key.

    The frontmatter text starts with the line break that ends the opening `---` (line 1).
    """
    pattern = re.compile(rf"^{re.escape(key)}\s*:", re.M)
    match = pattern.search(frontmatter_text)
    return frontmatter_text.count("\n", 0, match.start()) + 1 if match else None


def decode(raw: bytes, shown: Path) -> str:
    """UTF-8 (a BOM is allowed) to text with LF line endings."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise PublisherError(f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
                             file=shown, line=line,
                             hint="save the file as UTF-8 in your editor") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_issue(raw: bytes, *, file: Path, content_dir: Path, shown: Path, timezone: ZoneInfo,
                warnings: list[str] | None = None) -> Issue:
    """One Markdown file to an `Issue`; raises `PublisherError` listing every problem found in it.

    Warnings (unknown keys, an empty body) are appended to `warnings`, so a cached parse can repeat them.
    """
    warnings = [] if warnings is None else warnings
    text = decode(raw, shown)
    handler = frontmatter.YAMLHandler()
    if not handler.detect(text):
        raise PublisherError("has no frontmatter", file=shown, line=1,
                             hint="start the file with a '---' line, then title: and date:, then '---'")
    try:
        fm_text, body = handler.split(text)
    except ValueError:
        raise PublisherError("frontmatter is not closed", file=shown, line=1,
                             hint="end the frontmatter with a line of '---'") from None
    alias = _first_alias(fm_text)
    if alias is not None:
        raise PublisherError("frontmatter uses a YAML alias (*name), which publisher does not expand", file=shown,
                             line=alias, hint="write the value out in full where the alias is")
    try:
        meta = yaml.load(fm_text, Loader=_Loader) if fm_text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None  # see _key_line
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None:  # e.g. where an unclosed quote started
            problem += f" ({context} on line {context_mark.line + 1})"
        raise PublisherError(f"frontmatter is not valid YAML: {problem}", file=shown, line=line,
                             hint="check quotes and indentation; quote titles that contain ': '") from None
    if not isinstance(meta, dict):
        raise PublisherError("frontmatter must be key: value pairs", file=shown, line=2)

    ctx = _Context(timezone)
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    for key, value in meta.items():
        key = str(key) if isinstance(key, str | int | float | bool) or key is None else show_value(key)
        if key not in FIELDS:
            short = len(key) <= SHOWN_LENGTH  # a key can be any YAML value: only a short one is looked up
            close = difflib.get_close_matches(key, FIELDS, n=1) if short else []
            warnings.append(f"{shown}:{(_key_line(fm_text, key) if short else None) or 1}: unknown frontmatter "
                            f"key {show_value(key)}{f' (did you mean {close[0]!r}?)' if close else ''}; it is ignored")
            continue
        attr, parse = FIELDS[key]
        try:
            values[attr] = parse(value, ctx)
        except _FieldError as exc:
            problems.append(Problem(str(exc), file=shown, field=key, line=_key_line(fm_text, key), hint=exc.hint))
    if values.get("send_only") and values.get("send") is False:
        problems.append(Problem("`send_only: true` with `send: false` would neither publish nor email the issue",
                                file=shown, field="send_only", line=_key_line(fm_text, "send_only"),
                                hint="keep one of them (a draft is `draft: true`)"))
    for key in REQUIRED:
        if key not in meta:
            problems.append(Problem("is missing", file=shown, field=key, line=1,
                                    hint=f"add a {key}: line to the frontmatter"))
    if "slug" not in values and "slug" not in meta:
        slug = slug_from_filename(file)
        if not SLUG.match(slug):
            problems.append(Problem(f"the file name gives the slug {show_value(slug)}, which is not valid", file=shown,
                                    field="slug", hint="rename the file to lowercase a-z, 0-9 and hyphens, "
                                    "or set slug: in the frontmatter"))
        values["slug"] = slug
    try:
        markdown.check_nesting(body)
    except markdown.NestingError as exc:
        first = text.count("\n", 0, len(text) - len(body)) + 1  # `body` is the end of `text`
        problems.append(Problem(str(exc), file=shown, line=first + exc.line - 1, hint=exc.hint))
    if problems:
        raise PublisherError(problems=problems)

    body = body.strip("\n") + "\n" if body.strip() else ""
    if not body:
        warnings.append(f"{shown}: the issue has no body (only frontmatter)")
    summary = values.pop("summary", None) or markdown.summarize(body)
    embeds = tuple(dict.fromkeys(url for _, url, _ in markdown.relative_references(body, embeds_only=True)))
    issue = Issue(file=file, path=PurePosixPath(file.relative_to(content_dir).as_posix()), body=body,
                  summary=summary, body_sha=hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest(),
                  embeds=embeds, md_links=markdown.md_link_targets(body), **values)
    return dataclasses.replace(issue, digest=issue_digest(issue))


def issue_digest(issue: Issue) -> str:
    """A short stand-in, in render cache keys, for all a page, email or feed can show of an issue: its fields
    and its body. Kept on the Issue: the keys of one build ask for it about ten times per issue."""
    fields = (issue.slug, issue.title, issue.date, issue.summary, issue.tags, issue.draft, issue.send,
              issue.subject, issue.preheader, issue.image, issue.source, issue.authors, str(issue.path),
              issue.body_sha)
    return hashlib.sha256(repr(fields).encode("utf-8", "surrogatepass")).hexdigest()


def content_files(content_dir: Path) -> tuple[list[Path], list[Path]]:
    """(Markdown files, asset files) under content/, sorted; hidden files and folders are skipped, and so
    (with a warning) is a symbolic link out of content/: everything in content/ may be published."""
    issues: list[Path] = []
    assets: list[Path] = []
    if not content_dir.is_dir():
        return issues, assets
    for path in sorted(walk_files(content_dir, skip_files=(".", "_"), skip_folders=(".", "_")), key=str):
        (issues if path.suffix.lower() in (".md", ".markdown") else assets).append(path)
    return issues, assets


Memo = Callable[[bytes, Path, Callable[[], tuple[Issue, tuple[str, ...]]]], tuple[Issue, tuple[str, ...]]]


def load_issues(config: Config, files: Iterable[Path] | None = None, *, memo: Memo | None = None) -> list[Issue]:
    """Every issue under content/, newest first. Raises one `PublisherError` with all problems of all files.

    `memo(raw, file, parse)` may return a remembered (issue, warnings) for unchanged bytes instead of parsing.
    """
    if files is None:
        files = content_files(config.content_dir)[0]
    issues: list[Issue] = []
    problems: list[Problem] = []
    for file in files:
        shown = relpath(file, config.root)
        try:
            raw = file.read_bytes()
        except OSError as exc:
            problems.append(Problem(f"cannot be read: {exc.strerror}", file=shown))
            continue

        def parse(raw: bytes = raw, file: Path = file, shown: Path = shown) -> tuple[Issue, tuple[str, ...]]:
            warnings: list[str] = []
            issue = parse_issue(raw, file=file, content_dir=config.content_dir, shown=shown,
                                timezone=config.site.timezone, warnings=warnings)
            return issue, tuple(warnings)

        try:
            issue, warnings = memo(raw, file, parse) if memo else parse()
        except PublisherError as exc:
            problems.extend(exc.problems)
            continue
        for warning in warnings:
            log.warning("%s", warning)
        issues.append(issue)
    return check_issues(config, issues, problems)


def check_issues(config: Config, issues: list[Issue], problems: list[Problem]) -> list[Issue]:
    """The checks across files (duplicate slugs, missing images); raises with `problems` and these, or returns
    sorted issues."""
    problems = problems + _duplicate_slugs(issues, config.root) + missing_files(config, issues)
    if problems:
        raise PublisherError(problems=problems)
    return sort_issues(issues)


# ---- local files and links: what an issue's relative URLs point at ----


def _lines(issue: Issue) -> tuple[int | None, str]:
    """(line in the file where `issue.body` starts, the frontmatter's text): the body is kept without its
    leading blank lines, so the file is read again (only when a line is to be shown)."""
    try:
        text = decode(issue.file.read_bytes(), issue.file)
    except (OSError, PublisherError):
        return None, ""
    body = issue.body.rstrip("\n")
    start = len(text.rstrip("\n")) - len(body)
    if not body or start < 0 or not text.startswith(body, start):
        return None, ""
    return text.count("\n", 0, start) + 1, text[:start]


def references(issue: Issue, pages: Mapping[str, str], *, embeds_only: bool = False
               ) -> list[tuple[str, str, str | None, int | None, str | None]]:
    """(attribute, URL as written, site path it points at or None above the site root, line in the file,
    frontmatter key) of each relative URL of `issue`: its `image:` and the links, images and raw-HTML URLs of
    its body (`markdown.relative_references`)."""
    found: list[tuple[str, str, int | None, str | None]] = []
    if issue.image and markdown.is_relative(issue.image):
        found.append(("src", issue.image, None, "image"))
    found += [(attr, url, line, None) for attr, url, line in
              markdown.relative_references(issue.body, embeds_only=embeds_only)]
    if not found:
        return []
    first, head = _lines(issue)
    out = []
    for attr, url, line, key in found:
        if key is not None:
            line = _key_line(head, key) if head else None
        elif line is not None:
            line = None if first is None else first + line - 1
        out.append((attr, url, markdown.target_path(url, issue.path.parent, pages, issue.url_path), line, key))
    return out


def _file_path(target: str) -> str:
    """A site path without its query and fragment, percent-decoded: the file name it stands for."""
    return unquote(target.split("#", 1)[0].split("?", 1)[0])


def missing_files(config: Config, issues: Iterable[Issue]) -> list[Problem]:
    """An image (the `image:` key, or an image or other embedded media in the body) with a relative URL must be
    a file in content/ (copied to the site): a missing one would show as broken on the page, in every feed and
    in every email. A path under static/ is the theme's (not looked at here; `check` sees the whole site)."""
    problems: list[Problem] = []
    assets: set[str] | None = None

    def present(target: str | None) -> bool:
        nonlocal assets
        path = None if target is None else _file_path(target)
        if path is not None and path.startswith("static/"):
            return True
        if assets is None:
            assets = {a.relative_to(config.content_dir).as_posix() for a in content_files(config.content_dir)[1]}
        return path in assets

    for issue in issues:
        urls = [*issue.embeds, *([issue.image] if issue.image and markdown.is_relative(issue.image) else [])]
        if all(present(markdown.target_path(url, issue.path.parent, {}, issue.url_path)) for url in urls):
            continue  # the usual case, without looking at the body or the file again
        for attr, url, target, line, key in references(issue, {}, embeds_only=True):
            if attr not in markdown.EMBEDS or present(target):
                continue
            path = None if target is None else _file_path(target)
            where = f"content/{path}" if path is not None else "a place above the site's root"
            kind = "" if key else "the image "
            problems.append(Problem(f"{kind}{show_value(unquote(url))} is not a file in content/ (it points at "
                                    f"{where})", file=relpath(issue.file, config.root), field=key, line=line,
                                    hint="add the file, or fix the path, which is relative to this issue's file "
                                    "(to content/ when it starts with /), or use an https:// URL"))
    return problems


def broken_links(config: Config, issues: Sequence[Issue], produced: Collection[str]) -> list[str]:
    """Warnings for relative links of `issues` that point at nothing the build produces (`produced`: the site
    paths of every file of the build), naming file and line."""
    pages = {str(i.path): i.url_path for i in issues}
    warnings = []
    for issue in issues:
        for attr, url, target, line, key in references(issue, pages):
            if attr in markdown.EMBEDS and (target is None or not _file_path(target).startswith("static/")):
                continue  # images are `missing_files`' (an error), except the theme's, which only the build knows
            path = None if target is None else _file_path(target)
            if path is not None and (path in produced or (path.rstrip("/") + "/index.html").lstrip("/") in produced):
                continue
            where = f"{relpath(issue.file, config.root)}:{line}" if line else str(relpath(issue.file, config.root))
            points = f"{path or '/'}, which" if path is not None else "a place above the site's root, which"
            hint = ("link to an issue by its Markdown file, e.g. 2026-11-20-x.md, and the build makes the right "
                    "URL; a file to link to goes in content/")
            warnings.append(f"{where}: {key + ': ' if key else ''}the link {show_value(unquote(url))} points at "
                            f"{points} nothing in the build makes ({hint})")
    return warnings


def sort_issues(issues: Iterable[Issue]) -> list[Issue]:
    return sorted(issues, key=lambda i: (i.date, i.slug), reverse=True)


def _duplicate_slugs(issues: list[Issue], root: Path) -> list[Problem]:
    by_slug: dict[str, list[Issue]] = {}
    for issue in issues:
        by_slug.setdefault(issue.slug, []).append(issue)
    problems = []
    for slug, same in by_slug.items():
        if len(same) > 1:
            files = " and ".join(str(relpath(i.file, root)) for i in same)
            problems.append(Problem(f"the slug {slug!r} is used by {files}", file=relpath(same[0].file, root),
                                    field="slug", hint="give one of them another slug: in its frontmatter"))
    return problems


def find_issue(issues: Sequence[Issue], slug: str) -> Issue:
    """The issue with `slug`, or an error that suggests the closest slugs."""
    for issue in issues:
        if issue.slug == slug:
            return issue
    close = difflib.get_close_matches(slug, [i.slug for i in issues], n=3)
    raise PublisherError(f"no issue has the slug {show_value(slug)}",
                         hint=f"did you mean {', '.join(close)}?" if close else "see `publisher list`")


def select(issues: Iterable[Issue], now: datetime, *, drafts: bool = False, future: bool = False) -> list[Issue]:
    """The issues a build includes: public ones, plus drafts and scheduled ones when asked; never email-only
    ones."""
    # An email-only issue (`send_only: true`) is never part of a build, not even a preview: nothing of it may
    # reach dist/ (pages, tag pages, sitemap, feeds, search).
    return [i for i in issues if (drafts or not i.draft) and (future or not i.is_future(now)) and not i.send_only]


_TAG_SEPARATORS = re.compile(r"[^\w]+")


@functools.lru_cache(maxsize=4096)  # asked for by every list entry of every page: a few hundred distinct tags
def tag_slug(tag: str) -> str:
    """A URL name for a tag in any script: lowercase, word characters kept, the rest hyphens ("大模型", "gpt-5")."""
    slug = _TAG_SEPARATORS.sub("-", tag.lower()).strip("-").replace("_", "-")
    return slug or "tag"
