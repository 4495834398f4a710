"""RSS 2.0 and Atom 1.0 (feedgen) and JSON Feed 1.1, for the whole newsletter and for each tag.

One loop over (scope, kind) pairs writes every feed. Feeds are deterministic: `updated`/`lastBuildDate` come
from the newest issue in the feed, never from the clock, so unchanged input gives byte-identical feeds.

WebSub discovery (`feeds.hubs`): every feed names each hub (Atom and RSS: `<atom:link rel="hub">`; JSON Feed:
`hubs`) beside its rel="self" URL, `feed_url()`, which is the topic a subscriber subscribes to and the URL that
`deploy` pings the hubs with (websub.py) when the feed changed.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from feedgen.ext.base import BaseExtension
from feedgen.feed import FeedGenerator

from . import __version__, markdown
from .config import Config
from .content import Issue
from .errors import PublisherError, relpath
from .files import short
from .markdown import xml_safe
from .site import Memo, collect_tags, issue_inputs

GENERATOR = "publisher"
GENERATOR_URI = "https://github.com/publisher-newsletter/publisher"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ATOM_NS = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True)
class FeedEntry:
    """What a feed says about one issue, every URL absolute and every string XML-safe."""

    issue: Issue
    title: str
    permalink: str
    summary: str
    content: str | None  # full HTML, or None when feeds carry summaries only
    tags: tuple[str, ...]
    authors: tuple[str, ...]
    creator: str  # the authors as one name, for RSS's dc:creator
    image: str | None


@dataclass(frozen=True)
class Scope:
    """A set of feeds: the whole newsletter, or one tag."""

    prefix: str  # "" or "tags/<slug>/"
    title: str
    home: str  # absolute URL of the HTML page the feeds belong to
    entries: tuple[FeedEntry, ...]


def make_entry(config: Config, issue: Issue, body: str, pages: Mapping[str, str]) -> FeedEntry:
    permalink = markdown.absolute_url(config.site.url, issue.url_path)
    content = None
    if config.feeds.full_content:
        content = xml_safe(markdown.absolutize(body, issue.path.parent, pages, config.site.url, permalink))
    image = None
    if issue.image:
        image = markdown.absolute(issue.image, issue.path.parent, pages, config.site.url, permalink)
    authors = tuple(xml_safe(a) for a in issue.authors or ((config.site.author,) if config.site.author else ()))
    return FeedEntry(
        issue=issue, title=xml_safe(issue.title), permalink=permalink, summary=xml_safe(issue.summary),
        content=content, tags=tuple(xml_safe(t) for t in issue.tags), authors=authors,
        creator=join_names(authors, config.site.language), image=image,
    )


def join_names(names: Sequence[str], language: str) -> str:
    """Several authors as one name: "张三、李四" in Chinese and Japanese, "A, B" otherwise. RSS readers show one
    dc:creator per item (newsboat keeps the last of several), so an item has one that names them all."""
    separator = "、" if language.lower().startswith(("zh", "ja")) else ", "
    return separator.join(names)


def feed_url(config: Config, key: str) -> str:
    """The public URL of the feed at site path `key` ("rss.xml", "tags/<slug>/atom.xml"): its rel="self", and
    its WebSub topic."""
    return markdown.absolute_url(config.site.url, key)


def is_feed(key: str) -> bool:
    """Whether site path `key` is one of the feeds `render_feeds` writes (not an asset that shares a name)."""
    folder, _, name = key.rpartition("/")
    if not folder:
        return name in KINDS
    return name in TAG_KINDS and folder.startswith("tags/") and folder.count("/") == 1


class _RssHubs(BaseExtension):  # type: ignore[misc]
    """feedgen writes only the rel="self" atom:link into an RSS channel; WebSub wants the rel="hub" links
    beside it (the Atom links of the feed, in the Atom namespace RSS feeds already declare)."""

    def __init__(self) -> None:
        self.hubs: tuple[str, ...] = ()

    def extend_rss(self, feed):  # type: ignore[no-untyped-def]
        channel = feed[0]
        place = len(channel)
        for n, child in enumerate(channel):
            if child.tag == f"{{{ATOM_NS}}}link" and child.get("rel") == "self":
                place = n + 1
        for n, hub in enumerate(self.hubs):
            channel.insert(place + n, channel.makeelement(f"{{{ATOM_NS}}}link", {"href": hub, "rel": "hub"}))
        return feed


def _generator(config: Config, scope: Scope, self_url: str, self_type: str,
               now: datetime | None) -> FeedGenerator:
    site = config.site
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.id(scope.home)
    fg.title(scope.title)
    fg.subtitle(xml_safe(site.description) or scope.title)
    # feedgen takes the RSS <link> from the last link given: the HTML page must come last.
    fg.link(href=self_url, rel="self", type=self_type)
    for hub in config.feeds.hubs:
        fg.link(href=hub, rel="hub")  # Atom: written as given; RSS: by the extension below
    if config.feeds.hubs:
        fg.register_extension("websub", _RssHubs, None, atom=False, rss=True)
        fg.websub.hubs = config.feeds.hubs
    fg.link(href=scope.home, rel="alternate", type="text/html")
    fg.language(site.language)
    fg.generator(GENERATOR, version=__version__, uri=GENERATOR_URI)
    # RFC 4287 requires an author of the feed (or of every entry): without site.author (the `init` default),
    # the site's title stands for it (`check` warns).
    author = xml_safe(site.author) or xml_safe(site.title)
    fg.author({"name": author, **({"email": site.author_email} if site.author_email else {})})
    # feedgen stamps both with the clock by default; the newest issue keeps rebuilds byte-identical. Only a feed
    # with no issue at all (a new newsletter) takes the build's time, as Atom requires some `updated`.
    newest = scope.entries[0].issue.date if scope.entries else (now or EPOCH)
    fg.updated(newest)
    fg.lastBuildDate(newest)
    for entry in scope.entries:
        try:
            _add_entry(fg, entry, rss=self_type == "application/rss+xml")
        except ValueError as exc:  # feedgen's errors do not say which entry
            raise PublisherError(f"cannot be written to a feed: {short(str(exc), 200)}",
                                 file=relpath(entry.issue.file, config.root)) from None
    return fg


def _add_entry(fg: FeedGenerator, entry: FeedEntry, *, rss: bool) -> None:
    fe = fg.add_entry(order="append")
    fe.guid(entry.permalink, permalink=True)
    fe.title(entry.title)
    # One link only: feedgen 1.0 drops the rel of entry links, so a second (rel="related", for `source`)
    # would become a second rel="alternate", which Atom forbids. JSON Feed carries `source` as external_url.
    fe.link(href=entry.permalink, rel="alternate", type="text/html")
    fe.published(entry.issue.date)
    fe.updated(entry.issue.date)
    fe.pubDate(entry.issue.date)
    text = entry.summary or entry.title
    if rss:
        # RSS <description> is HTML: plain text is escaped as HTML once here, and feedgen escapes it again as
        # XML, so that a reader shows "<script> & co" as written instead of taking it for markup.
        fe.description(html.escape(text, quote=False))
    else:
        fe.summary(text)  # Atom's <summary> and <content> are text constructs (type="text"): no HTML escaping
        fe.description(text)
    if entry.content is not None:
        fe.content(entry.content, type="html")
    for tag in entry.tags:
        fe.category(term=tag, label=tag)
    for name in entry.authors:
        fe.author({"name": name})  # Atom: one <author> each
    if entry.creator:
        fe.dc.dc_creator(entry.creator)


STYLESHEET = "static/feed.xsl"  # the theme's XSLT: a feed opened in a browser reads as a page


def with_stylesheet(data: bytes, prefix: str) -> bytes:
    """Add the xml-stylesheet instruction after the XML declaration. The href is relative (a browser only
    applies a same-origin XSLT, and this way it works on the site, in a sub-folder and in the preview)."""
    href = "../" * prefix.count("/") + STYLESHEET
    declaration, newline, rest = data.partition(b"\n")
    return declaration + newline + f'<?xml-stylesheet type="text/xsl" href="{href}"?>\n'.encode() + rest


def render_rss(config: Config, scope: Scope, now: datetime | None = None) -> bytes:
    url = feed_url(config, scope.prefix + "rss.xml")
    data: bytes = _generator(config, scope, url, "application/rss+xml", now).rss_str(pretty=True)
    if not scope.entries:
        # lastBuildDate is optional in RSS and an empty feed has no honest one (feedgen always writes it).
        data = re.sub(rb"\n\s*<lastBuildDate>[^<]*</lastBuildDate>", b"", data)
    return with_stylesheet(data, scope.prefix)


def render_atom(config: Config, scope: Scope, now: datetime | None = None) -> bytes:
    url = feed_url(config, scope.prefix + "atom.xml")
    return with_stylesheet(_generator(config, scope, url, "application/atom+xml", now).atom_str(pretty=True),
                           scope.prefix)


def render_json_feed(config: Config, scope: Scope, now: datetime | None = None) -> bytes:
    site = config.site
    feed: dict[str, object] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": scope.title,
        "home_page_url": scope.home,
        "feed_url": feed_url(config, scope.prefix + "feed.json"),
        "language": site.language,
    }
    if config.feeds.hubs:
        feed["hubs"] = [{"type": "WebSub", "url": hub} for hub in config.feeds.hubs]
    if site.description:
        feed["description"] = site.description
    if site.author:
        feed["authors"] = [{"name": site.author}]
    items = []
    for entry in scope.entries:
        item: dict[str, object] = {"id": entry.permalink, "url": entry.permalink, "title": entry.title}
        if entry.issue.source:
            item["external_url"] = entry.issue.source
        if entry.content is not None:
            item["content_html"] = entry.content
        else:
            item["content_text"] = entry.summary
        item["summary"] = entry.summary
        if entry.image:
            item["image"] = entry.image
        item["date_published"] = entry.issue.date.isoformat()
        if entry.tags:
            item["tags"] = list(entry.tags)
        if entry.authors:
            item["authors"] = [{"name": a} for a in entry.authors]
        items.append(item)
    feed["items"] = items
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


KINDS: dict[str, Callable[[Config, Scope, datetime | None], bytes]] = {
    "rss.xml": render_rss,
    "atom.xml": render_atom,
    "feed.json": render_json_feed,
}
TAG_KINDS = ("rss.xml", "atom.xml", "feed.json")  # each tag has all three, like the whole newsletter


def render_feeds(config: Config, issues: Sequence[Issue], bodies: Mapping[str, str],
                 now: datetime | None = None, memo: Memo | None = None) -> dict[str, bytes]:
    """Every feed file. `issues` are newest first; `bodies` maps slug to the issue's HTML. `memo` may return
    a feed made by an earlier build from the same entries (then no entry is converted at all)."""
    limit = config.feeds.limit
    site_title = xml_safe(config.site.title)
    members = [("", site_title, config.site.url, issues[:limit])]
    for tag in collect_tags(issues):
        members.append((tag.url_path, f"{site_title} · {xml_safe(tag.name)}",
                        markdown.absolute_url(config.site.url, tag.url_path), tag.issues[:limit]))
    pages = {str(i.path): i.url_path for i in issues}
    entries: dict[str, FeedEntry] = {}  # an issue in several feeds is converted once

    def entry(issue: Issue) -> FeedEntry:
        if issue.slug not in entries:
            entries[issue.slug] = make_entry(config, issue, bodies[issue.slug], pages)
        return entries[issue.slug]

    out: dict[str, bytes] = {}
    for prefix, title, home, chosen in members:
        for name, render in KINDS.items():
            if prefix and name not in TAG_KINDS:
                continue

            def make(prefix: str = prefix, title: str = title, home: str = home, chosen: Sequence[Issue] = chosen,
                     render: Callable[[Config, Scope, datetime | None], bytes] = render) -> bytes:
                return render(config, Scope(prefix, title, home, tuple(entry(i) for i in chosen)), now)

            inputs = ("feed", prefix + name, title, [issue_inputs(i, pages) for i in chosen],
                      None if chosen else now)  # only an empty feed shows the clock
            out[prefix + name] = make() if memo is None else memo(inputs, make)
    return out
