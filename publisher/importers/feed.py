"""`publisher import feed`: past issues from an RSS 2.0, Atom 1.0 or JSON Feed 1.1 feed, a file or a URL.

The feed is read page by page along its archive links (RFC 5005 `next` / `prev-archive` in Atom and in RSS's
`atom:link`, JSON Feed's `next_url`), with a page limit and a stop at any URL read before. Everything the feed
holds is untrusted: responses are size-limited and time-limited, only http(s) is fetched (a URL source never
reaches a file), XML with a DTD or entity declarations is refused, and frontmatter is written by a YAML library.

Each entry becomes `content/<YYYY-MM-DD>-<slug>.md`, its HTML body converted to Markdown with markdownify. A
file that exists is never overwritten, so a second import of the same feed writes nothing.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit
from xml.parsers import expat

from ..config import Config
from ..errors import PublisherError
from .convert import plain
from .network import fetch_url, is_url, read_limited
from .writer import IssueReport, Post, Progress, write_issues

MAX_PAGES = 50
MAX_FILE_BYTES = 64 * 1024 * 1024  # a feed file on disk (a whole archive in one file); a URL: network.MAX_BYTES
ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
DC = "{http://purl.org/dc/elements/1.1/}"
MEDIA = "{http://search.yahoo.com/mrss/}"
FOLLOW = ("prev-archive", "next")  # the relations walked, in this order

Fetch = Callable[[str], bytes]

Entry = Post  # a feed's entry is a post like any other source's


# ---------------------------------------------------------------------------------------------------- parsing


@dataclass
class Page:
    entries: list[Post]
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
    return markup if html else plain(markup)


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
        entries.append(Post(
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
        entries.append(Post(
            key=_text(guid) or link or f"{title}|{date}", title=plain(title), date_text=date, link=link,
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
        entries.append(Post(
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

# ---------------------------------------------------------------------------------------------------- the walk


def _normalized(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def _read_pages(source: str, fetch: Fetch, max_pages: int, report: IssueReport) -> list[Page]:
    """Every page from `source` along its archive links, first page first."""
    if is_url(source):
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
        where, remote = queue.pop(0)
        key = _normalized(where) if remote else where
        if key in seen:
            report.notes.append(f"stopped at {where}: read before (a loop in the feed's links)")
            continue
        if len(pages) >= max_pages:
            report.notes.append(f"stopped after {max_pages} pages (the page limit); {where} was not read")
            break
        seen.add(key)
        if remote:
            raw = fetch(where)
        else:
            with open(where, "rb") as handle:
                raw = read_limited(handle, where, MAX_FILE_BYTES)
        page = parse_page(raw, where)
        if remote:  # relative entry links and images are relative to the page they are on
            for entry in page.entries:
                entry.link = urljoin(where, entry.link) if entry.link else None
                entry.image = urljoin(where, entry.image) if entry.image else None
        pages.append(page)
        report.pages.append(where)
        for link in page.follow:
            link = link.strip()
            if remote or is_url(link):
                target = urljoin(where, link) if remote else link
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


def read_posts(source: str, report: IssueReport, *, fetch: Fetch | None = None,
               max_pages: int = MAX_PAGES) -> list[Post]:
    """Every entry of the feed at `source` (a file path or an http(s) URL), along its archive pages.

    Raises `PublisherError` for a source that cannot be read (not http(s), too large, not a feed)."""
    pages = _read_pages(source, fetch or fetch_url, max_pages, report)
    return [entry for page in pages for entry in page.entries]


def import_feed(config: Config, source: str, *, dry_run: bool = False, fetch: Fetch | None = None,
                max_pages: int = MAX_PAGES, progress: Progress | None = None) -> IssueReport:
    """Import every entry of the feed at `source` into content/ (see `writer.write_issues`)."""
    report = IssueReport(source=source, dry_run=dry_run)
    posts = read_posts(source, report, fetch=fetch, max_pages=max_pages)
    return write_issues(config, posts, report, progress=progress)
