"""The web archive: index, one page per issue, one page per tag, sitemap. Pure: model in, {path: bytes} out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit
from xml.sax.saxutils import escape as xml_escape

from . import __version__, markdown, messages
from .config import Config
from .content import Issue, issue_digest, tag_slug
from .themes import Theme


@dataclass(frozen=True)
class Tag:
    name: str
    slug: str
    issues: tuple[Issue, ...]

    @property
    def url_path(self) -> str:
        return f"tags/{self.slug}/"


def collect_tags(issues: Sequence[Issue]) -> list[Tag]:
    """Tags in order of first use on the newest issue; tags that differ only in case or punctuation merge."""
    names: dict[str, str] = {}
    members: dict[str, list[Issue]] = {}
    for issue in issues:
        for name in issue.tags:
            slug = tag_slug(name)
            names.setdefault(slug, name)
            same = members.setdefault(slug, [])
            if not same or same[-1] is not issue:  # "AI" and "ai" on one issue count once
                same.append(issue)
    return [Tag(names[s], s, tuple(members[s])) for s in names]


def feed_links(config: Config, tag: Tag | None = None) -> list[dict[str, str]]:
    """The autodiscovery links for a page: the site's feeds, and a tag page's own feeds first."""
    links = []
    if tag is not None:
        base = markdown.absolute_url(config.site.url, tag.url_path)
        title = f"{config.site.title} · {tag.name}"
        links += [
            {"type": "application/rss+xml", "title": f"{title} (RSS)", "href": base + "rss.xml"},
            {"type": "application/atom+xml", "title": f"{title} (Atom)", "href": base + "atom.xml"},
            {"type": "application/feed+json", "title": f"{title} (JSON Feed)", "href": base + "feed.json"},
        ]
    site = config.site.url
    links += [
        {"type": "application/rss+xml", "title": f"{config.site.title} (RSS)", "href": site + "rss.xml"},
        {"type": "application/atom+xml", "title": f"{config.site.title} (Atom)", "href": site + "atom.xml"},
        {"type": "application/feed+json", "title": f"{config.site.title} (JSON Feed)", "href": site + "feed.json"},
    ]
    return links


SOCIAL_IMAGE = "static/social.jpg"  # the theme's picture for link previews of pages without a cover (1200 x 630)


def og_locale(language: str) -> str:
    """Open Graph's locale (language_TERRITORY) for a BCP 47 tag: zh-CN -> zh_CN, zh-Hant-TW -> zh_TW, en -> en."""
    parts = language.replace("_", "-").split("-")
    region = next((p for p in parts[1:] if len(p) == 2 and p.isalpha()), "")
    return parts[0].lower() + (f"_{region.upper()}" if region else "")


def robots_txt(config: Config) -> bytes:
    """Crawlers may read every page but the email copies (the issue pages say the same), and find the sitemap."""
    base = urlsplit(config.site.url).path or "/"
    return (f"User-agent: *\nDisallow: {base}issues/*/email.html\nAllow: {base}\n\n"
            f"Sitemap: {markdown.absolute_url(config.site.url, 'sitemap.xml')}\n").encode()


def format_date(value: datetime, language: str, theme: Theme | None = None) -> str:
    """A date as the site's language writes it (Babel's long format): 2026年11月24日, November 24, 2026. The
    locale is the language's when the theme has a catalogue for it, else the catalogue's it falls back to."""
    said = messages.for_theme(theme, language) if theme is not None else messages.load(language)
    return said.format_date(value)


class PageRenderer:
    """Renders pages for one build: the things every page shares are computed once here."""

    def __init__(self, config: Config, theme: Theme, issues: Sequence[Issue], now: datetime | None = None,
                 memo: Memo | None = None):
        self.config = config
        self.memo = memo
        self.theme = theme
        self.issues = list(issues)
        self.tags = collect_tags(self.issues)
        self.now = now
        # The words and formats of the site's language, installed in the theme's templates before any renders
        # (here in the parent: the forked render workers inherit them).
        self.messages = messages.install(theme, config.site.language)
        self.pages = {str(i.path): i.url_path for i in self.issues}
        tz = config.site.timezone
        self.site = {
            "title": config.site.title,
            "url": config.site.url,
            "description": config.site.description,
            "language": config.site.language,
            "author": config.site.author,
            "subscribe_url": config.site.subscribe_url,
            "search": config.search.enabled,
            "generator": f"publisher {__version__}",
            # Link previews need absolute URLs (a chat app fetches the image, not the page's neighbour).
            "social_image": markdown.absolute_url(config.site.url, SOCIAL_IMAGE),
            "og_locale": og_locale(config.site.language),
        }
        self._local = {id(i): i.date.astimezone(tz) for i in self.issues}
        by_year: dict[int, list[Issue]] = {}
        for issue in self.issues:  # newest first, so the years are too
            by_year.setdefault(self._local[id(issue)].year, []).append(issue)
        self.years = list(by_year.items())

    def _view(self, issue: Issue, prefix: str) -> dict[str, object]:
        local = self._local[id(issue)]
        state = "draft" if issue.draft else ("scheduled" if self.now and issue.is_future(self.now) else None)
        return {
            "title": issue.title,
            "slug": issue.slug,
            "url": prefix + issue.url_path,
            "permalink": markdown.absolute_url(self.config.site.url, issue.url_path),
            "date": local,
            "date_iso": local.isoformat(),
            "date_text": self.messages.format_date(local),
            "summary": issue.summary,
            "tags": [{"name": t, "url": prefix + f"tags/{tag_slug(t)}/"} for t in issue.tags],
            "authors": list(issue.authors) or ([self.config.site.author] if self.config.site.author else []),
            "source": issue.source,
            "image": self._image(issue, prefix),
            "image_url": self._image(issue, None),
            "state": state,
        }

    def _image(self, issue: Issue, prefix: str | None) -> str | None:
        """The cover's URL from a page `prefix` deep, or (None) absolute; a remote cover stays as written."""
        if not issue.image:
            return None
        target = markdown.site_path(issue.image, issue.path.parent, self.pages)
        if target is None:
            return issue.image
        return markdown.absolute_url(self.config.site.url, target) if prefix is None else prefix + target

    def _page(self, template: str, prefix: str, path: str, **context: object) -> bytes:
        html = self.theme.render(
            template, site=self.site, root=prefix, canonical=markdown.absolute_url(self.config.site.url, path),
            **context,
        )
        return html.encode("utf-8")

    def _cached(self, inputs: object, make: Callable[[], bytes]) -> bytes:
        """`make()`, or the bytes an earlier build made from the same `inputs` (plus theme and settings)."""
        return make() if self.memo is None else self.memo(inputs, make)

    def _listed(self, issues: Sequence[Issue]) -> list[tuple[object, ...]]:
        """The inputs of a page that lists `issues`: what each entry shows, and whether it is scheduled."""
        return [(fingerprint(i), self.now is not None and i.is_future(self.now)) for i in issues]

    def _listing(self, template: str, base: str, issues: Sequence[Issue], key: tuple[object, ...],
                 **context: object) -> dict[str, bytes]:
        """The pages of one list of issues, `per_page` to a page: `base` (e.g. "tags/ai/") holds the newest,
        `base + "page/2/"` the next ones, each linking to its neighbours (and telling crawlers, rel prev/next)."""
        per_page = self.config.site.per_page
        chunks = [issues[k:k + per_page] for k in range(0, len(issues), per_page)] or [issues[:0]]
        out = {}
        for number, chunk in enumerate(chunks, 1):
            path = page_path(base, number)
            prefix = "../" * path.count("/")

            def make(path: str = path, prefix: str = prefix, number: int = number, chunk=chunk) -> bytes:
                pagination = self._pagination(base, path, prefix, number, len(chunks))
                pagination["start"] = len(issues) - (number - 1) * per_page  # the numbers of <ol reversed>
                return self._page(template, prefix, path, issues=[self._view(i, prefix) for i in chunk],
                                  pagination=pagination, **context)

            out[path + "index.html"] = self._cached((key, number, len(chunks), len(issues), self._listed(chunk)), make)
        return out

    def _pagination(self, base: str, path: str, prefix: str, number: int, count: int) -> dict[str, object]:
        def link(n: int) -> dict[str, str] | None:
            if not 1 <= n <= count:
                return None
            target = page_path(base, n)
            return {"url": prefix + target if target else prefix or "./",
                    "permalink": markdown.absolute_url(self.config.site.url, target)}

        return {"number": number, "count": count, "newer": link(number - 1), "older": link(number + 1),
                "first": link(1), "last": link(count)}

    def index_pages(self) -> dict[str, bytes]:
        tags = [{"name": t.name, "url": t.url_path, "count": len(t.issues)} for t in self.tags]
        years = [{"year": y, "url": f"archive/{y}/", "count": len(i)} for y, i in self.years]
        return self._listing("web/index.html", "", self.issues, ("index", tags, years), tags=tags, years=years,
                             feeds=feed_links(self.config))

    def year_page(self, year: int, issues: Sequence[Issue]) -> bytes:
        """Every issue of one year, titles and dates only: with the year links on the home page, every issue
        is two clicks from it, however long the archive."""
        path = f"archive/{year}/"
        years = [{"year": y, "url": f"archive/{y}/", "count": len(i)} for y, i in self.years]

        def make() -> bytes:
            return self._page("web/archive.html", "../../", path, year=year, years=years,
                              issues=[self._view(i, "../../") for i in issues], feeds=feed_links(self.config))

        return self._cached(("year", year, years, self._listed(issues)), make)

    def issue_page(self, issue: Issue, body_html: str, newer: Issue | None, older: Issue | None) -> bytes:
        prefix = "../../"
        body = markdown.localize(body_html, issue.path.parent, self.pages, prefix)
        return self._page(
            "web/issue.html", prefix, issue.url_path, issue=self._view(issue, prefix), content=body,
            newer=self._view(newer, prefix) if newer else None,
            older=self._view(older, prefix) if older else None, feeds=feed_links(self.config),
        )

    def tag_pages(self, tag: Tag) -> dict[str, bytes]:
        return self._listing("web/tag.html", tag.url_path, tag.issues, ("tag", tag.name, tag.slug),
                             tag={"name": tag.name, "slug": tag.slug}, feeds=feed_links(self.config, tag))

    def not_found(self) -> bytes:
        # Served by S3/CloudFront (or a preview) for any missing path, at any depth: its links start with the
        # path of site.url ("/" or "/daily/"), so they lead into the site on whatever host serves it (the real
        # one, a staging copy, `publisher preview`), never to production from a local copy.
        return self._page("web/404.html", urlsplit(self.config.site.url).path or "/", "404.html",
                          feeds=feed_links(self.config))

    def feed_stylesheet(self) -> dict[str, bytes]:
        """`static/feed.xsl`, which shows a feed opened in a browser as a page, in the site's language; none
        when the theme has its own `web/static/feed.xsl` (copied as it is, with the other static files)."""
        if "feed.xsl" in {str(rel) for rel in self.theme.files("web/static")}:
            return {}
        return {"static/feed.xsl": self._cached(("feed.xsl",), lambda: self.theme.render("web/feed.xsl").encode())}

    def sitemap(self, pages: Sequence[str]) -> bytes:
        """Every page of `pages` (site paths of HTML files) but the 404 page, dated by the newest issue it shows:
        a list page changes whenever an issue joins the list (every later page shifts by one)."""
        newest = {"": self.issues[0].date} if self.issues else {}
        newest |= {i.url_path: i.date for i in self.issues}
        newest |= {t.url_path: t.issues[0].date for t in self.tags}
        newest |= {f"archive/{y}/": i[0].date for y, i in self.years}
        lines = ['<?xml version="1.0" encoding="UTF-8"?>',
                 '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">']
        for page in pages:
            if not page.endswith("index.html"):
                continue
            path = page.removesuffix("index.html")
            when = newest.get(_list_base(path))
            loc = xml_escape(markdown.absolute_url(self.config.site.url, path))
            lines.append(f"<url><loc>{loc}</loc>" + (f"<lastmod>{when.isoformat()}</lastmod>" if when else "")
                         + "</url>")
        lines.append("</urlset>\n")
        return "\n".join(lines).encode("utf-8")


def page_path(base: str, number: int) -> str:
    """The site path of page `number` of the list at `base`: the first page is the list's own address."""
    return base if number == 1 else f"{base}page/{number}/"


def _list_base(path: str) -> str:
    """The list a page belongs to: "tags/ai/page/3/" -> "tags/ai/"."""
    head, sep, tail = path.rpartition("page/")
    return head if sep and tail.rstrip("/").isdigit() and (not head or head.endswith("/")) else path


# memo(inputs, make): the bytes an earlier build made from equal `inputs` (a repr-able value; the cache adds the
# theme, the settings and the version), else make().
Memo = Callable[[object, Callable[[], bytes]], bytes]


def render_pages(config: Config, theme: Theme, issues: Sequence[Issue], bodies: Mapping[str, str],
                 now: datetime | None = None, memo: Memo | None = None) -> dict[str, bytes]:
    """Every web page of the archive. `bodies` maps slug to the issue's HTML as rendered from Markdown.

    `memo` may return a page rendered by an earlier build from the same inputs: everything its page shows
    (issues, body, neighbours).
    """
    renderer = PageRenderer(config, theme, issues, now, memo)
    out = renderer.index_pages()
    out["404.html"] = renderer.not_found()
    out.update(renderer.feed_stylesheet())
    for n, issue in enumerate(renderer.issues):
        newer = renderer.issues[n - 1] if n > 0 else None
        older = renderer.issues[n + 1] if n + 1 < len(renderer.issues) else None

        def make(issue: Issue = issue, newer: Issue | None = newer, older: Issue | None = older) -> bytes:
            return renderer.issue_page(issue, bodies[issue.slug], newer, older)

        make.group = issue.slug  # type: ignore[attr-defined]  # rendered beside the issue's email (build.py)

        inputs = None
        if memo is not None:
            neighbours = [fingerprint(i) if i else None for i in (newer, older)]
            scheduled = now is not None and issue.is_future(now)
            inputs = ("issue", issue_inputs(issue, renderer.pages), neighbours, scheduled)
        out[issue.url_path + "index.html"] = renderer._cached(inputs, make)
    for tag in renderer.tags:
        out.update(renderer.tag_pages(tag))
    for year, listed in renderer.years:
        out[f"archive/{year}/index.html"] = renderer.year_page(year, listed)
    out["sitemap.xml"] = renderer.sitemap(list(out))
    return out


def issue_inputs(issue: Issue, pages: Mapping[str, str]) -> tuple[object, ...]:
    """What a rendering of one issue depends on: its fields, its Markdown, and where links to other issues go
    (the version of publisher, which fixes how Markdown renders, is in every cache key)."""
    links = _md_targets(issue, pages) if issue.md_links or (issue.md_links is None and ".md" in issue.body) \
        else None
    return (fingerprint(issue), links)


def _md_targets(issue: Issue, pages: Mapping[str, str]) -> tuple[tuple[str, str | None], ...]:
    """Where each `.md` link of the issue goes: the page of the issue it names. A rendering depends on these,
    not on the whole page map (keying on the map made every such issue's key O(issues): quadratic builds)."""
    tokens = issue.md_links if issue.md_links is not None else markdown.md_link_targets(issue.body)
    base = issue.path.parent
    return tuple((token, markdown.site_path(token, base, pages)) for token in tokens)


def fingerprint(issue: Issue) -> str:
    return issue.digest or issue_digest(issue)  # an Issue made by hand (tests, API users) may lack it
