"""`publisher import feed`: past issues from an RSS 2.0, Atom 1.0 or JSON Feed 1.1 feed, a file or a URL.

The feed is read page by page along its archive links (RFC 5005 `next` / `prev-archive` in Atom and in RSS's
`atom:link`, JSON Feed's `next_url`), with a page limit and a stop at any URL read before. Everything the feed
holds is untrusted: responses are size-limited and time-limited, only http(s) is fetched (a URL source never
reaches a file), XML with a DTD or entity declarations is refused, and frontmatter is written by a YAML library.

Each entry becomes `content/<YYYY-MM-DD>-<slug>.md`, its HTML body converted to Markdown with markdownify. A
file that exists is never overwritten, so a second import of the same feed writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import unicodedata
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit
from xml.parsers import expat

import yaml
from bs4 import BeautifulSoup
from markdownify import ATX, MarkdownConverter

from .. import content, markdown
from ..config import Config
from ..errors import PublisherError, relpath

MAX_BYTES = 5 * 1024 * 1024  # one feed page
MAX_PAGES = 50
TIMEOUT = 15.0  # seconds without a byte
TOTAL_TIMEOUT = 120.0  # seconds for one whole page (a server that drips a byte at a time)
MAX_SLUG = 60

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
DC = "{http://purl.org/dc/elements/1.1/}"
MEDIA = "{http://search.yahoo.com/mrss/}"
FOLLOW = ("prev-archive", "next")  # the relations walked, in this order

Fetch = Callable[[str], bytes]


# ---------------------------------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Written:
    path: str  # relative to the newsletter folder
    title: str
    date: str
    source: str | None


@dataclass(frozen=True)
class Skipped:
    what: str  # the entry's link, else its title
    reason: str
    path: str | None = None


@dataclass
class FeedImportReport:
    source: str
    dry_run: bool = False
    pages: list[str] = field(default_factory=list)
    written: list[Written] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def lines(self) -> list[str]:
        """The report, one line each: pages read, notes, each file written and each entry skipped, a total."""
        verb = "would write" if self.dry_run else "wrote"
        lines = [f"read {len(self.pages)} page{'s' if len(self.pages) != 1 else ''}: " + ", ".join(self.pages)]
        lines += [f"note: {note}" for note in self.notes]
        lines += [f"{verb} {w.path}  ({w.date}, {w.title})" for w in self.written]
        lines += [f"skipped {s.what}: {s.reason}" + (f" ({s.path})" if s.path else "") for s in self.skipped]
        count = len(self.written)
        if count:
            total = f"{count} issue{'s' if count != 1 else ''} {'would be written' if self.dry_run else 'written'}"
        else:
            total = "nothing to write" if self.dry_run else "nothing written"
        lines.append(f"{total}, {len(self.skipped)} skipped" + (" (dry run: no file was changed)" if self.dry_run
                                                               else ""))
        return lines


# ---------------------------------------------------------------------------------------------------- fetching


class _OnlyHttpRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise PublisherError(f"{req.full_url} redirects to {newurl}, which is not http(s)",
                                 hint="only http(s) URLs are fetched")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _read_limited(stream: Any, where: str, limit: int, deadline: float | None = None) -> bytes:
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
                                 hint="is it really a feed? import a smaller archive page")


def fetch_url(url: str, *, limit: int = MAX_BYTES, timeout: float = TIMEOUT) -> bytes:
    """GET an http(s) URL: at most `limit` bytes, `timeout` seconds per blocking step, redirects to http(s) only."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise PublisherError(f"{url} is not an http(s) URL", hint="give an http(s) URL or a file path")
    opener = urllib.request.build_opener(_OnlyHttpRedirects)
    request = urllib.request.Request(url, headers={
        "User-Agent": "publisher-import/1",
        "Accept": "application/atom+xml, application/rss+xml, application/feed+json, application/xml;q=0.9, */*;q=0.5",
    })
    try:
        with opener.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > limit:
                raise PublisherError(f"{url} is larger than the limit of {limit // 1024} KiB "
                                     f"({int(length)} bytes); refused", hint="import a smaller archive page")
            return _read_limited(response, url, limit, time.monotonic() + TOTAL_TIMEOUT)
    except urllib.error.HTTPError as exc:
        raise PublisherError(f"{url} answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise PublisherError(f"{url} could not be read: {reason}") from None


def _is_url(text: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text)) and not re.match(r"^[A-Za-z]:[\\/]", text)


# ---------------------------------------------------------------------------------------------------- parsing


@dataclass
class Entry:
    key: str  # id, else link, else title + date: what makes an entry the same entry across pages
    title: str
    date_text: str | None
    link: str | None
    html: str
    summary_html: str
    tags: list[str]
    authors: list[str]
    image: str | None


@dataclass
class Page:
    entries: list[Entry]
    follow: list[str]  # links to further pages, as written in the page


def _refuse_dtd(raw: bytes, where: str) -> None:
    """Parse once with expat to refuse DTD internal subsets and entity declarations (billion laughs, external
    entities) before ElementTree sees the bytes."""

    def doctype(name: str, system: str | None, public: str | None, internal: int) -> None:
        if internal or system:
            raise PublisherError(f"{where} declares a DTD; refused", hint="feeds need no DTD or entities")

    def entity(*_: Any) -> None:
        raise PublisherError(f"{where} declares XML entities; refused", hint="feeds need no DTD or entities")

    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    parser.UnparsedEntityDeclHandler = entity
    parser.ExternalEntityRefHandler = lambda *_: 0
    try:
        parser.Parse(raw, True)
    except expat.ExpatError as exc:
        raise PublisherError(f"{where} is not well-formed XML: {exc}") from None


def _text(el: ET.Element | None) -> str:
    return "".join(el.itertext()).strip() if el is not None else ""


def _plain(html: str) -> str:
    """Text of an HTML fragment, whitespace collapsed."""
    if "<" not in html and "&" not in html:
        return " ".join(html.split())
    return " ".join(BeautifulSoup(html, "html.parser").get_text(" ").split())


def _xhtml(el: ET.Element) -> str:
    """The inner markup of an Atom type="xhtml" element (its wrapping div), namespaces dropped."""
    copy = ET.fromstring(ET.tostring(el))
    for node in copy.iter():
        if isinstance(node.tag, str) and "}" in node.tag:
            node.tag = node.tag.split("}", 1)[1]
    div = next(iter(copy), None)
    if div is None:
        return copy.text or ""
    return (div.text or "") + "".join(ET.tostring(child, encoding="unicode", method="html") for child in div)


def _atom_text(el: ET.Element | None, *, html: bool) -> str:
    """An Atom text construct as HTML (html=True) or as plain text."""
    if el is None:
        return ""
    kind = el.get("type", "text")
    if kind == "xhtml":
        markup = _xhtml(el)
    elif kind == "html" or kind.endswith("html"):
        markup = el.text or ""
    else:
        text = _text(el)
        if not html:
            return " ".join(text.split())
        from html import escape

        return "<p>" + escape(text).replace("\n\n", "</p><p>") + "</p>" if text else ""
    return markup if html else _plain(markup)


def _is_image(type_: str | None, url: str | None) -> bool:
    if type_:
        return type_.lower().startswith("image/")
    return bool(url and re.search(r"\.(png|jpe?g|gif|webp|avif|svg)(\?|$)", url, re.I))


def _parse_atom(root: ET.Element) -> Page:
    feed_authors = [_text(a.find(f"{ATOM}name")) for a in root.findall(f"{ATOM}author")]
    entries = []
    for el in root.findall(f"{ATOM}entry"):
        link = None
        image = None
        for ln in el.findall(f"{ATOM}link"):
            rel = ln.get("rel", "alternate")
            if rel == "alternate" and link is None:
                link = ln.get("href")
            elif rel == "enclosure" and image is None and _is_image(ln.get("type"), ln.get("href")):
                image = ln.get("href")
        thumb = el.find(f"{MEDIA}thumbnail")
        image = image or (thumb.get("url") if thumb is not None else None)
        body = el.find(f"{ATOM}content")
        html = _atom_text(body, html=True) if body is not None and not body.get("src") else ""
        date = _text(el.find(f"{ATOM}published")) or _text(el.find(f"{ATOM}updated")) or None
        authors = [_text(a.find(f"{ATOM}name")) for a in el.findall(f"{ATOM}author")] or feed_authors
        title = _atom_text(el.find(f"{ATOM}title"), html=False)
        entries.append(Entry(
            key=_text(el.find(f"{ATOM}id")) or link or f"{title}|{date}", title=title, date_text=date, link=link,
            html=html, summary_html=_atom_text(el.find(f"{ATOM}summary"), html=True),
            tags=[c.get("label") or c.get("term") or "" for c in el.findall(f"{ATOM}category")],
            authors=authors, image=image))
    return Page(entries, _atom_links(root))


def _atom_links(parent: ET.Element) -> list[str]:
    links = {ln.get("rel"): ln.get("href") for ln in reversed(parent.findall(f"{ATOM}link"))}
    return [href for rel in FOLLOW if (href := links.get(rel))]


def _rss_date(text: str) -> str | None:
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return text  # perhaps ISO 8601 already: checked later like any date
    return parsed.isoformat()


def _rss_author(text: str) -> str:
    match = re.match(r"^\s*\S+@\S+\s*\((.+)\)\s*$", text)  # "editor@example.com (Name)"
    return match.group(1).strip() if match else text.strip()


def _parse_rss(root: ET.Element) -> Page:
    channel = root.find("channel")
    if channel is None:
        raise ValueError("an RSS document without <channel>")
    entries = []
    for el in channel.findall("item"):
        link = _text(el.find("link")) or None
        guid = el.find("guid")
        if link is None and guid is not None and guid.get("isPermaLink", "true") == "true":
            link = _text(guid) or None
        image = None
        for enc in el.findall("enclosure"):
            if _is_image(enc.get("type"), enc.get("url")):
                image = enc.get("url")
                break
        for tag in (f"{MEDIA}thumbnail", f"{MEDIA}content"):
            media = el.find(tag)
            if image is None and media is not None and (tag.endswith("thumbnail") or media.get("medium") == "image"
                                                         or _is_image(media.get("type"), media.get("url"))):
                image = media.get("url")
        description = el.findtext("description") or ""
        html = el.findtext(f"{CONTENT}encoded") or ""
        authors = [_rss_author(_text(a)) for a in el.findall("author")] + [_text(a) for a in el.findall(f"{DC}creator")]
        title = _text(el.find("title"))
        date = _rss_date(_text(el.find("pubDate"))) or _text(el.find(f"{DC}date")) or None
        entries.append(Entry(
            key=_text(guid) or link or f"{title}|{date}", title=_plain(title), date_text=date, link=link,
            html=html, summary_html=description if html else "",
            tags=[_text(c) for c in el.findall("category")], authors=authors, image=image))
        if not html:  # a description is the whole item: it is the body, not a summary
            entries[-1].html = description
    return Page(entries, _atom_links(channel))


def _parse_json(data: Any) -> Page:
    if not isinstance(data, dict) or not str(data.get("version", "")).startswith("https://jsonfeed.org/version/"):
        raise ValueError("not a JSON Feed (no https://jsonfeed.org/version/ in version)")
    items = data.get("items")
    if not isinstance(items, list):
        raise ValueError("a JSON Feed without an items list")

    def names(value: Any) -> list[str]:
        people = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
        return [str(p["name"]) for p in people if isinstance(p, dict) and isinstance(p.get("name"), str)]

    def string(value: Any) -> str:
        return value if isinstance(value, str) else ""

    feed_authors = names(data.get("authors")) or names(data.get("author"))
    entries = []
    for item in items:
        if not isinstance(item, dict):
            continue
        link = string(item.get("url")) or string(item.get("external_url")) or None
        html = string(item.get("content_html"))
        if not html and (text := string(item.get("content_text"))):
            from html import escape

            html = "".join(f"<p>{escape(p)}</p>" for p in text.split("\n\n"))
        title = string(item.get("title"))
        date = string(item.get("date_published")) or string(item.get("date_modified")) or None
        tags = item.get("tags") if isinstance(item.get("tags"), list) else []
        entries.append(Entry(
            key=str(item.get("id") or link or f"{title}|{date}"), title=" ".join(title.split()), date_text=date,
            link=link, html=html, summary_html=string(item.get("summary")),
            tags=[t for t in tags if isinstance(t, str)],
            authors=names(item.get("authors")) or names(item.get("author")) or feed_authors,
            image=string(item.get("image")) or string(item.get("banner_image")) or None))
    next_url = data.get("next_url")
    return Page(entries, [next_url] if isinstance(next_url, str) and next_url else [])


def parse_page(raw: bytes, where: str) -> Page:
    """One feed document (RSS 2.0, Atom 1.0 or JSON Feed 1.x) to its entries and the links to walk on."""
    head = raw.lstrip(b"\xef\xbb\xbf \t\r\n")
    try:
        if head.startswith(b"{"):
            try:
                return _parse_json(json.loads(raw.decode("utf-8-sig")))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"not valid JSON: {exc}") from None
        _refuse_dtd(raw, where)
        root = ET.fromstring(raw)
        if root.tag == f"{ATOM}feed":
            return _parse_atom(root)
        if root.tag == "rss":
            return _parse_rss(root)
        raise ValueError(f"the root element {root.tag} is neither <rss> nor an Atom <feed>")
    except (ValueError, ET.ParseError) as exc:
        raise PublisherError(f"{where} is not a feed: {exc}",
                             hint="give an RSS 2.0, Atom 1.0 or JSON Feed 1.1 document") from None


# ---------------------------------------------------------------------------------------------------- HTML -> Markdown

_YOUTUBE_EMBED = re.compile(r"^https?://(?:www\.)?youtube(?:-nocookie)?\.com/embed/([\w-]+)")
_SAFE_LINK = ("http", "https", "mailto")


class _Converter(MarkdownConverter):
    """markdownify with links made absolute, unsafe schemes dropped, `|` escaped in tables and embedded media
    (iframe, video, audio) turned into links."""

    def __init__(self, base: str | None, **options: Any) -> None:
        super().__init__(heading_style=ATX, bullets="-", escape_misc=True, table_infer_header=True,
                         code_language_callback=_code_language, **options)
        self.base = base

    def _url(self, url: str | None, schemes: tuple[str, ...] = _SAFE_LINK) -> str | None:
        url = (url or "").strip()
        if not url:
            return None
        if url.startswith("#"):
            return url
        if url.startswith("//"):
            url = "https:" + url
        if self.base and urlsplit(url).scheme == "":
            url = urljoin(self.base, url)
        if urlsplit(url).scheme.lower() not in schemes or re.search(r"[\x00-\x20\x7f\\]", url):
            return None
        return url.replace("(", "%28").replace(")", "%29")

    def convert_a(self, el, text, parent_tags):  # type: ignore[no-untyped-def]
        href = self._url(el.get("href"))
        if href is None:
            return text
        el["href"] = href
        return super().convert_a(el, text, parent_tags)

    def convert_img(self, el, text, parent_tags):  # type: ignore[no-untyped-def]
        src = self._url(el.get("src"), ("http", "https"))
        if src is None:
            return self.escape(el.get("alt") or "", parent_tags)
        el["src"] = src
        return super().convert_img(el, text, parent_tags)

    def _media_link(self, el, text, label: str, parent_tags) -> str:  # type: ignore[no-untyped-def]
        src = el.get("src")
        if not src and (source := el.find("source")) is not None:
            src = source.get("src")
        url = self._url(src, ("http", "https"))
        if url is None:
            return text
        if match := _YOUTUBE_EMBED.match(url):
            url, label = f"https://www.youtube.com/watch?v={match.group(1)}", "YouTube"
        title = (el.get("title") or "").strip() or f"{label}: {urlsplit(url).netloc}"
        link = f"[{self.escape(title, parent_tags)}]({url})"
        return link if "_inline" in parent_tags else f"\n\n{link}\n\n"

    def convert_iframe(self, el, text, parent_tags):  # type: ignore[no-untyped-def]
        return self._media_link(el, "", "Embedded content", parent_tags)

    def convert_video(self, el, text, parent_tags):  # type: ignore[no-untyped-def]
        return self._media_link(el, "", "Video", parent_tags)

    def convert_audio(self, el, text, parent_tags):  # type: ignore[no-untyped-def]
        return self._media_link(el, "", "Audio", parent_tags)

    def convert_td(self, el, text, parent_tags):  # type: ignore[no-untyped-def]
        return super().convert_td(el, _pipes_in_code(text), parent_tags)

    def convert_th(self, el, text, parent_tags):  # type: ignore[no-untyped-def]
        return super().convert_th(el, _pipes_in_code(text), parent_tags)


def _pipes_in_code(text: str) -> str:
    """A `|` in a code span still ends a table cell (GFM): escape the ones escape() left alone."""
    return re.sub(r"(?<!\\)\|", r"\\|", text)


def _code_language(el: Any) -> str | None:
    for node in (el, el.find("code")):
        for cls in (node.get("class") or []) if node is not None else []:
            if cls.startswith(("language-", "lang-")):
                lang = cls.split("-", 1)[1]
                return lang if re.fullmatch(r"[\w+#.-]{1,30}", lang) else None
    return None


def html_to_markdown(html: str, base: str | None = None) -> str:
    """An HTML fragment from a feed as publisher Markdown (ATX headings, `-` bullets, GFM tables, fenced code)."""
    markdown = _Converter(base).convert(html)
    markdown = re.sub(r"[ \t]+\n", "\n", markdown)
    markdown = re.sub(r"\n{3,}", "\n\n", markdown)
    return markdown.strip("\n") + "\n" if markdown.strip() else ""


# ---------------------------------------------------------------------------------------------------- slugs


def _hash_slug(entry: Entry) -> str:
    return "post-" + hashlib.sha256((entry.link or entry.key).encode("utf-8", "surrogatepass")).hexdigest()[:8]


def _ascii_slug(text: str) -> str | None:
    """`text` as a slug, or None when it is not ASCII (a non-Latin title is not transliterated: a hash is used)."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        return None
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if len(slug) > MAX_SLUG:
        slug = slug[:MAX_SLUG].rsplit("-", 1)[0] if "-" in slug[:MAX_SLUG] else slug[:MAX_SLUG]
    return slug or None


def entry_slug(entry: Entry) -> str:
    """The old URL's last path segment (extension dropped), else an ASCII title, else `post-<8 hex>` of the link."""
    if entry.link:
        segments = [unquote(s) for s in urlsplit(entry.link).path.split("/") if s]
        while segments and re.fullmatch(r"index(\.\w+)?", segments[-1], re.I):
            segments.pop()
        if segments:
            last = re.sub(r"\.(html?|php|aspx?|jsp|md)$", "", segments[-1], flags=re.I)
            if not last.isascii():
                return _hash_slug(entry)
            if (slug := _ascii_slug(last)) and not slug.isdigit():
                return slug
    if entry.title and (slug := _ascii_slug(entry.title)):
        return slug
    return _hash_slug(entry)


# ---------------------------------------------------------------------------------------------------- writing


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # publisher refuses YAML aliases
        return True


def render_issue(meta: dict[str, Any], body: str) -> str:
    front = yaml.dump(meta, Dumper=_Dumper, allow_unicode=True, sort_keys=False, default_flow_style=False,
                      width=10_000)
    return f"---\n{front}---\n\n{body}"


def _write_new(path: Path, text: str) -> bool:
    """Write `text` to `path` atomically (a temp file beside it, then a hard link); never replaces a file:
    False when `path` exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".import-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def _existing(config: Config) -> tuple[dict[str, Path], set[str]]:
    """(source URL -> file, slugs taken) of the issues already in content/, read leniently."""
    sources: dict[str, Path] = {}
    slugs: set[str] = set()
    for file in content.content_files(config.content_dir)[0]:
        slug = content.slug_from_filename(file)
        try:
            text = content.decode(file.read_bytes(), file)
            meta = yaml.safe_load(text.split("\n---", 1)[0].removeprefix("---")) if text.startswith("---") else {}
        except (OSError, PublisherError, yaml.YAMLError):
            meta = {}
        if isinstance(meta, dict):
            if isinstance(meta.get("slug"), str):
                slug = meta["slug"]
            if isinstance(meta.get("source"), str):
                sources.setdefault(meta["source"], file)
        slugs.add(slug)
    return sources, slugs


# ---------------------------------------------------------------------------------------------------- the walk


def _normalized(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def _read_pages(source: str, fetch: Fetch, max_pages: int, report: FeedImportReport) -> list[Page]:
    """Every page from `source` along its archive links, first page first."""
    if _is_url(source):
        if urlsplit(source).scheme.lower() not in ("http", "https"):
            raise PublisherError(f"{source} is not an http(s) URL; refused",
                                 hint="give an http(s) URL, or the path of a feed file without a scheme")
        first: tuple[str, bool] = (source, True)
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise PublisherError(f"{source}: no such file", hint="give a feed file or an http(s) URL")
        first = (str(path.resolve()), False)

    pages: list[Page] = []
    seen: set[str] = set()
    queue = [first]
    while queue:
        where, is_url = queue.pop(0)
        key = _normalized(where) if is_url else where
        if key in seen:
            report.notes.append(f"stopped at {where}: read before (a loop in the feed's links)")
            continue
        if len(pages) >= max_pages:
            report.notes.append(f"stopped after {max_pages} pages (the page limit); {where} was not read")
            break
        seen.add(key)
        if is_url:
            raw = fetch(where)
        else:
            with open(where, "rb") as handle:
                raw = _read_limited(handle, where, MAX_BYTES)
        page = parse_page(raw, where)
        if is_url:  # relative entry links and images are relative to the page they are on
            for entry in page.entries:
                entry.link = urljoin(where, entry.link) if entry.link else None
                entry.image = urljoin(where, entry.image) if entry.image else None
        pages.append(page)
        report.pages.append(where)
        for link in page.follow:
            link = link.strip()
            if is_url or _is_url(link):
                target = urljoin(where, link) if is_url else link
                if urlsplit(target).scheme.lower() not in ("http", "https"):
                    report.notes.append(f"not followed: {link} (only http(s) links are followed)")
                    continue
                queue.append((target, True))
            else:  # a relative link in a feed file: a file beside it, never outside its folder
                target_path = (Path(where).parent / link).resolve()
                if target_path.parent != Path(where).parent:
                    report.notes.append(f"not followed: {link} (outside the feed file's folder)")
                    continue
                queue.append((str(target_path), False))
    return pages


def _date_of(entry: Entry, config: Config) -> tuple[datetime | None, str | None, str]:
    """(parsed date, the frontmatter text of it, why not)"""
    if not entry.date_text:
        return None, None, "no date (published / pubDate / date_published)"
    text = entry.date_text.strip()
    try:
        parsed = content.parse_date(text, config.site.timezone)
    except ValueError as exc:
        return None, None, f"the date {text!r} cannot be read ({exc})"
    return parsed, text.replace(" ", "T", 1) if re.match(r"^\d{4}-\d\d-\d\d \d", text) else text, ""


def _checked(value: str | None, check: Callable[[Any, Any], Any], config: Config) -> str | None:
    if not value:
        return None
    try:
        check(value.strip(), content._Context(config.site.timezone))  # the rules a load applies
    except ValueError:
        return None
    return value.strip()


def import_feed(config: Config, source: str, *, dry_run: bool = False, fetch: Fetch | None = None,
                max_pages: int = MAX_PAGES) -> FeedImportReport:
    """Import every entry of the feed at `source` (a file path or an http(s) URL) into content/.

    Raises `PublisherError` for a source that cannot be read (not http(s), too large, not a feed). Entries that
    cannot become issues, or whose file exists, are listed in the report's `skipped` with the reason.
    """
    report = FeedImportReport(source=source, dry_run=dry_run)
    pages = _read_pages(source, fetch or fetch_url, max_pages, report)
    sources, taken = _existing(config)
    seen_keys: set[str] = set()
    planned: list[tuple[Entry, datetime, str]] = []
    for page in pages:
        for entry in page.entries:
            what = entry.link or entry.title or entry.key
            if entry.key in seen_keys:
                report.skipped.append(Skipped(what, "the same entry is on an earlier page (that copy is kept)"))
                continue
            seen_keys.add(entry.key)
            parsed, date_text, why = _date_of(entry, config)
            if parsed is None or date_text is None:
                report.skipped.append(Skipped(what, why))
                continue
            planned.append((entry, parsed, date_text))
    planned.sort(key=lambda p: (p[1], p[0].key))  # oldest first: the same feed gives the same -2, -3
    used: set[str] = set()
    for entry, parsed, date_text in planned:
        what = entry.link or entry.title or entry.key
        link = _checked(entry.link, content._http_url, config)
        if link and link in sources:
            report.skipped.append(Skipped(what, "already imported", str(relpath(sources[link], config.root))))
            continue
        try:
            body = html_to_markdown(entry.html or entry.summary_html, link)
        except RecursionError:
            report.skipped.append(Skipped(what, "its HTML is nested too deeply to convert"))
            continue
        title = entry.title or markdown.truncate(_plain(entry.html or entry.summary_html), 60)
        if not title:
            report.skipped.append(Skipped(what, "no title and no text"))
            continue
        base = entry_slug(entry)
        slug, n = base, 2
        day = f"{parsed:%Y-%m-%d}"
        while slug in used or (slug in taken and not (config.content_dir / f"{day}-{slug}.md").exists()):
            slug, n = f"{base}-{n}", n + 1
        used.add(slug)
        meta: dict[str, Any] = {"title": title, "date": date_text}
        if slug != content.slug_from_filename(Path(f"{day}-{slug}.md")):
            meta["slug"] = slug
        tags = list(dict.fromkeys(t.strip() for t in entry.tags if t and t.strip()))
        if tags:
            meta["tags"] = tags
        summary = _plain(entry.summary_html) if entry.html else ""
        full = _plain(entry.html)
        if summary and summary.rstrip(".…[] ") and not full.startswith(summary.rstrip(".…[] ")):
            meta["summary"] = summary
        if link:
            meta["source"] = link
        image = _checked(urljoin(link or "", entry.image) if entry.image else None, content._image, config)
        if image and urlsplit(image).scheme in ("http", "https"):
            meta["image"] = image
        authors = list(dict.fromkeys(a.strip() for a in entry.authors if a and a.strip()))
        if authors:
            meta["authors"] = authors
        meta["send"] = False  # a past issue: readers had it once; `publish` must never email it again
        text = render_issue(meta, body)
        path = config.content_dir / f"{day}-{slug}.md"
        shown = str(relpath(path, config.root))
        try:
            content.parse_issue(text.encode("utf-8"), file=path, content_dir=config.content_dir,
                                shown=Path(shown), timezone=config.site.timezone)
        except PublisherError as exc:
            report.skipped.append(Skipped(what, f"would not load: {exc}", shown))
            continue
        if path.exists():
            same = path.read_bytes() == text.encode("utf-8")
            report.skipped.append(Skipped(what, "unchanged" if same else "the file exists (not overwritten)", shown))
            continue
        if not dry_run and not _write_new(path, text):
            report.skipped.append(Skipped(what, "the file exists (not overwritten)", shown))
            continue
        report.written.append(Written(shown, title, date_text, link))
    return report
