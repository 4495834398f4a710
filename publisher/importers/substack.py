"""`publisher import substack`: the export zip (posts.csv, posts/<id>.<slug>.html, the email list CSVs).

Layout and fields: docs/import-formats.md §3 (from TryGhost/migrate's mg-substack). Everything in the zip is
untrusted: CSV cells are only compared and copied, HTML is cleaned here and converted by the shared writer, the
JSON in `data-attrs` is type-checked, and a member's name is only matched, never used as a path."""

from __future__ import annotations

import html as htmllib
import re
from collections import Counter
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from bs4 import BeautifulSoup, Tag

from ..subscribers import Subscriber
from . import archive
from .convert import data_attrs, link_html, replace_with_html, string, unwrap_figure
from .writer import Imported, IssueReport, Post, Skipped

HINT = "use the zip from Substack's Settings → Exports"
_CDN = re.compile(r"^https?://substackcdn\.com/image/fetch/(?:[^/]*/)*?(https?(?::|%3A)[^?#]*)", re.I)
_VIDEO_ID = re.compile(r"^[\w-]{1,32}$")
_SKIP_TYPES = {"page": "a Substack page (pages are not issues)",
               "thread": "a Substack thread (a discussion, not an issue)",
               "podcast": "a Substack podcast (its audio is not in the export)"}


def read_subscribers(path: Path) -> Imported:
    imported = Imported("substack")
    for name, line, row in archive.tables(path, "email_disabled", "subscriber list",
                                  "use the zip from Substack's Settings → Exports, or the email list CSV in it"):
        disabled = archive.flag(imported, name, line, row, "email_disabled")
        if disabled is not None:
            imported.add(Subscriber(row.get("email", ""), "", "unsubscribed" if disabled else "active"),
                         f"{name}:{line}", f"email_disabled={str(disabled).lower()}")
    return imported


# ---------------------------------------------------------------------------------------------------- posts


def original_image(url: str) -> str:
    """A substackcdn.com/image/fetch/<params>/<url-encoded original> URL -> the original (other URLs as they are)."""
    match = _CDN.match(url.strip())
    if not match:
        return url.strip()
    original = unquote(match.group(1))
    return original if urlsplit(original).scheme in ("http", "https") else url.strip()


def _is_subscribe(href: str) -> bool:
    parts = urlsplit(href)
    path = parts.path.rstrip("/")
    return (path.endswith(("/subscribe", "/share", "/account")) or "action=share" in parts.query
            or ("utm_source=substack" in parts.query and "share" in parts.query))


def _clean_images(soup: BeautifulSoup) -> None:
    for container in soup.select("div.captioned-image-container"):
        figure = container.find("figure")
        if isinstance(figure, Tag):
            unwrap_figure(soup, figure, original_image)
        container.unwrap()
    for img in soup.find_all("img"):
        if isinstance(img.get("src"), str):
            img["src"] = original_image(img["src"])
        for attr in ("srcset", "data-attrs"):
            if attr in img.attrs:
                del img[attr]
    for picture in soup.find_all("picture"):  # <source> srcsets are CDN variants of the <img>
        for source in picture.find_all("source"):
            source.decompose()
        picture.unwrap()


def _clean_buttons(soup: BeautifulSoup) -> int:
    """Subscribe and share buttons and widgets dropped (a count returned); other buttons as plain links."""
    dropped = 0
    for widget in soup.select("div.subscription-widget-wrap, div.subscription-widget-wrap-editor, "
                              "div.subscribe-widget, form"):
        if widget.decomposed:  # a form inside a widget already dropped
            continue
        widget.decompose()
        dropped += 1
    for button in soup.select("a.button"):
        href = string(button.get("href"))
        wrapper = button.find_parent("p", class_="button-wrapper") or button
        if not href or _is_subscribe(href):
            wrapper.decompose()
            dropped += 1
        else:
            replace_with_html(soup, wrapper, link_html(href, " ".join(button.get_text(" ").split())))
    for wrapper in soup.select("p.button-wrapper"):  # a wrapper left without a link holds nothing to keep
        wrapper.decompose()
    return dropped


def _clean_embeds(soup: BeautifulSoup) -> None:
    for embed in soup.select("div.digest-post-embed, div.embedded-post-wrap"):
        attrs = data_attrs(embed)
        anchor = embed.find("a", href=True)
        url = string(attrs.get("canonical_url")) or string(attrs.get("url")) or \
            (string(anchor.get("href")) if isinstance(anchor, Tag) else "")
        title = string(attrs.get("title")) or " ".join(embed.get_text(" ").split())[:200]
        replace_with_html(soup, embed, link_html(url, title) if url else "")
    for tweet in soup.select("div.tweet"):
        attrs = data_attrs(tweet)
        url = string(attrs.get("url"))
        if not url and isinstance(anchor := tweet.find("a", href=True), Tag):
            url = string(anchor.get("href"))
        who = string(attrs.get("username"))
        text = string(attrs.get("full_text"))
        label = f"Tweet by @{who}" if who else "Tweet"
        quote = f"<blockquote><p>{htmllib.escape(text)}</p></blockquote>" if text else ""
        replace_with_html(soup, tweet, (link_html(url, label) + quote) if url else quote)
    for video in soup.select("div.youtube-wrap"):
        video_id = string(data_attrs(video).get("videoId"))
        iframe = video.find("iframe")
        if _VIDEO_ID.match(video_id):
            replace_with_html(soup, video, link_html(f"https://www.youtube.com/watch?v={video_id}",
                                                     f"YouTube: {video_id}"))
        elif isinstance(iframe, Tag):
            video.replace_with(iframe)  # the shared converter turns an iframe into a link


def clean_html(body: str) -> tuple[str, int]:
    """Substack's editor markup made plain HTML before conversion: (html, subscribe/share buttons dropped).
    Footnote markup is left for the shared converter."""
    soup = BeautifulSoup(body, "html.parser")
    _clean_images(soup)
    dropped = _clean_buttons(soup)
    _clean_embeds(soup)
    return str(soup), dropped


def _bodies(files: list[tuple[str, bytes]]) -> dict[str, tuple[str, bytes]]:
    """post_id -> (member name, bytes) of every posts/<post_id>.html."""
    found = {}
    for name, data in files:
        path = PurePosixPath(name)
        if path.suffix.lower() == ".html" and path.parent.name == "posts" and len(path.parts) <= 3:
            found.setdefault(path.name[:-5], (name, data))
    return found


def read_posts(path: Path, report: IssueReport, *, old_url: str | None = None) -> list[Post]:
    """The export's published newsletter posts; pages, threads, podcasts and unpublished posts are skipped."""
    archive.refuse_non_zip(path, HINT)
    files = archive.members(path, (".csv", ".html"))
    table = [(name, data) for name, data in files if archive.top_level(name, "posts.csv")]
    if not table:
        report.notes.append(f"{path.name} has no posts.csv: no past issues to import")
        return []
    name, data = table[0]
    rows = list(archive.rows(name, data))
    report.pages.append(name)
    if rows:
        archive.need(name, rows[0][1], ("post_id", "type", "is_published"), "Substack")
    base = archive.old_base(old_url, report)
    bodies = _bodies(files)
    posts: list[Post] = []
    counts: Counter[str] = Counter()
    for line, row in rows:
        post = _post(row, f"{name}:{line}", bodies, base, report, counts)
        if post is not None:
            posts.append(post)
    _notes(report, counts, len(posts))
    return posts


def _post(row: dict[str, str], where: str, bodies: dict[str, tuple[str, bytes]], base: str | None,
          report: IssueReport, counts: Counter[str]) -> Post | None:
    post_id = row.get("post_id", "")
    number, _, slug = post_id.partition(".")
    what = row.get("title") or post_id or where
    kind = row.get("type", "").lower()
    if not post_id:
        report.skipped.append(Skipped(where, "no post_id"))
        return None
    if kind != "newsletter":
        report.skipped.append(Skipped(what, _SKIP_TYPES.get(kind, f"a Substack post of type {kind!r}")))
        return None
    if row.get("is_published", "").lower() != "true":
        report.skipped.append(Skipped(what, "not published (a draft in Substack)"))
        return None
    if post_id not in bodies:
        counts["no html"] += 1
        report.skipped.append(Skipped(what, f"no HTML file in the export (posts/{post_id}.html)"))
        return None
    member, data = bodies[post_id]
    report.pages.append(member)
    try:
        body, dropped = clean_html(archive.text(member, data))
    except RecursionError:  # bs4's cleaning recurses on the HTML's nesting
        report.skipped.append(Skipped(what, "its HTML is nested too deeply to convert"))
        return None
    counts["buttons"] += dropped
    if row.get("audience", "").lower() == "only_paid":
        counts["paid"] += 1
    return Post(key=f"substack:{number or post_id}", title=row.get("title") or slug or post_id,
                date_text=row.get("post_date") or row.get("email_sent_at") or None,
                link=f"{base}/p/{slug}" if base and slug else None, html=body,
                summary=" ".join(htmllib.unescape(row.get("subtitle", "")).split()), slug=slug or None)


def _notes(report: IssueReport, counts: Counter[str], imported: int) -> None:
    if counts["paid"]:
        report.notes.append(f"{counts['paid']} paid-only post{'s' if counts['paid'] != 1 else ''} imported as "
                            "public issues (publisher has no paid tier; add `draft: true` to keep one off the web)")
    if counts["no html"]:
        one = counts["no html"] == 1
        report.notes.append(f"{counts['no html']} post{'' if one else 's'} in posts.csv "
                            f"{'has' if one else 'have'} no HTML file (Substack leaves out recent ones; "
                            "export again later)")
    if counts["buttons"]:
        report.notes.append(f"{counts['buttons']} subscribe/share button{'s' if counts['buttons'] != 1 else ''} "
                            "dropped")
    if not imported:
        report.notes.append("no published newsletter post in posts.csv")


