"""`publisher import ghost`: the JSON content export and the members CSV (Admin → Members → Export).

The content export (docs/import-formats.md §5) is one `<site>.ghost.<date>.json`: {"db": [{"meta", "data"}]}, or
{"meta", "data"}, or (around 2014) {"data"} alone. It is untrusted: every value is type-checked before use, the
bodies (html, else lexical, else mobiledoc) are rendered here with a depth limit, and Ghost's card markup is made
plain HTML before the shared writer converts it."""

from __future__ import annotations

import html as htmllib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from bs4 import BeautifulSoup, Tag

from .. import markdown as md
from ..errors import PublisherError
from ..subscribers import Subscriber
from . import archive
from .convert import link_html, replace_with_html, string, unwrap_figure
from .writer import Imported, IssueReport, Post, Skipped

HINT = "use the JSON file from Ghost Admin → Settings → Labs → Export your content"
MAX_DEPTH = 60  # nesting of lexical / mobiledoc nodes: real posts stay far below; deeper is refused per post
PLACEHOLDER = "__GHOST_URL__"
_HEADING = re.compile(r"^h[1-6]$")
_PAID = {"members", "paid", "tiers"}


class TooDeep(ValueError):
    """A post body nested deeper than MAX_DEPTH."""


def read_subscribers(path: Path) -> Imported:
    imported = Imported("ghost")
    for name, line, row in archive.tables(path, "subscribed_to_emails", "Ghost members",
                                  "export the members from Ghost Admin → Members → Export (the JSON export "
                                  "holds no members)"):
        subscribed = archive.flag(imported, name, line, row, "subscribed_to_emails")
        if subscribed is None:
            continue
        # false covers "unsubscribed" and "never subscribed": both stay out of the mail, kept so a later sign-up
        # confirms again; a deleted member is unsubscribed whatever the flag says.
        deleted = bool(row.get("deleted_at"))
        status = "active" if subscribed and not deleted else "unsubscribed"
        was = f"subscribed_to_emails={str(subscribed).lower()}" + (" deleted" if deleted else "")
        labels = archive.split_list(row.get("labels", ""))
        imported.add(Subscriber(row.get("email", ""), row.get("name", ""), status, labels), f"{name}:{line}", was)
    return imported


# ---------------------------------------------------------------------------------------------------- the file


def _export_file(path: Path) -> tuple[str, bytes] | None:
    """(name, bytes) of the content export: the one file given, or the `*.ghost.*.json` (else the only .json) in
    a zip or folder; None when there is none (a members CSV)."""
    if path.is_file() and not path.name.lower().endswith(".zip"):
        if path.suffix.lower() == ".csv":
            return None
        return archive.members(path)[0]
    files = archive.members(path, (".json",))
    named = [f for f in files if ".ghost." in PurePosixPath(f[0]).name.lower()]
    chosen = named or files
    return chosen[0] if chosen else None


def _data(name: str, raw: bytes) -> dict[str, Any]:
    """The `data` object of an export, whichever generation's shape holds it."""
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = f"line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        raise PublisherError(f"is not JSON ({why}); a Ghost content export is", file=name, hint=HINT) from None
    if isinstance(doc, dict) and isinstance(doc.get("db"), list) and doc["db"]:
        doc = doc["db"][0]
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise PublisherError('has no {"db": [{"meta", "data"}]} or {"data"} object, which a Ghost export has',
                             file=name, hint=HINT)
    return data


def _table(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    rows = data.get(name)
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _id(value: Any) -> str:
    """An id: a string (Ghost 1+) or an integer (the 2014 generation)."""
    if isinstance(value, bool):
        return ""
    return str(value) if isinstance(value, str | int) else ""


def _order(row: dict[str, Any]) -> int:
    value = row.get("sort_order")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _joined(data: dict[str, Any], link: str, key: str, target: str, label: str) -> dict[str, list[str]]:
    """post id -> the `label` of its `target` rows through the `link` table, in sort_order."""
    names = {_id(r.get("id")): string(r.get(label)) for r in _table(data, target)}
    found: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for row in _table(data, link):
        name = names.get(_id(row.get(key)), "")
        if name:
            found[_id(row.get("post_id"))].append((_order(row), name))
    return {post: [n for _, n in sorted(pairs, key=lambda p: p[0])] for post, pairs in found.items()}


# ---------------------------------------------------------------------------------------------------- posts


def read_posts(path: Path, report: IssueReport, *, old_url: str | None = None) -> list[Post]:
    """The export's posts: published (and email-only `sent`) ones as issues, drafts and scheduled ones as drafts;
    pages skipped."""
    found = _export_file(path)
    if found is None:
        report.notes.append(f"{path.name} holds no Ghost content export (JSON): no past issues to import")
        return []
    name, raw = found
    data = _data(name, raw)
    report.pages.append(name)
    rows = _table(data, "posts")
    if not rows:
        report.notes.append(f"{name} has no posts")
        return []
    base = archive.old_base(old_url, report)
    context = _Context(data, base)
    posts = [post for row in rows if (post := _post(row, context, report))]
    _notes(report, context.counts, base)
    return posts


class _Context:
    """What every post needs from the rest of the export."""

    def __init__(self, data: dict[str, Any], base: str | None) -> None:
        self.base = base
        tags = _joined(data, "posts_tags", "tag_id", "tags", "name")
        self.tags = {post: [t for t in names if not t.startswith("#")] for post, names in tags.items()}
        self.authors = _joined(data, "posts_authors", "author_id", "users", "name")
        self.users = {_id(r.get("id")): string(r.get("name")) for r in _table(data, "users")}
        self.meta = {_id(r.get("post_id")): r for r in _table(data, "posts_meta")}
        self.counts: Counter[str] = Counter()

    def authors_of(self, post_id: str, row: dict[str, Any]) -> list[str]:
        """posts_authors (Ghost 1+), else the 2014 generation's single author_id."""
        if found := self.authors.get(post_id):
            return found
        name = self.users.get(_id(row.get("author_id")), "")
        return [name] if name else []

    def url(self, text: str) -> str:
        """`__GHOST_URL__` -> the old site address (it stands for the site URL, subfolder included), or nothing:
        the paths stay relative (/content/images/...)."""
        if PLACEHOLDER in text:
            self.counts["placeholder"] += 1
        return text.replace(PLACEHOLDER, self.base or "")


def _post(row: dict[str, Any], context: _Context, report: IssueReport) -> Post | None:
    post_id, slug, title = _id(row.get("id")), string(row.get("slug")), string(row.get("title"))
    what = title or slug or post_id or "a post without id"
    kind = string(row.get("type")) or ("page" if row.get("page") in (1, True) else "post")
    status = string(row.get("status")).lower()
    if kind != "post":
        report.skipped.append(Skipped(what, f"a Ghost {kind} (pages are not issues)"))
        return None
    if status not in ("published", "draft", "scheduled", "sent"):
        report.skipped.append(Skipped(what, f"status {status!r} (not published, draft, scheduled or sent)"))
        return None
    try:
        html, markdown = _body(row, context)
    except (TooDeep, RecursionError):  # the parser and the cleaner recurse on the HTML's nesting too
        report.skipped.append(Skipped(what, "its body is nested too deeply to import (lists, quotes or editor "
                                            f"nodes beyond {MAX_DEPTH} levels); refused"))
        return None
    context.counts[status] += 1
    if string(row.get("visibility")).lower() in _PAID:
        context.counts["paid"] += 1
    meta = context.meta.get(post_id, {})
    image = context.url(string(row.get("feature_image"))) or None
    return Post(key=f"ghost:{post_id or slug}", title=title or slug, date_text=_date(row), html=html,
                link=f"{context.base}/{slug}/" if context.base and slug else None, markdown=markdown,
                summary=string(row.get("custom_excerpt")) or string(meta.get("meta_description")),
                tags=context.tags.get(post_id, []), image=image, subject=string(meta.get("email_subject")) or None,
                authors=context.authors_of(post_id, row),
                draft=status in ("draft", "scheduled"), slug=slug or None)


def _date(row: dict[str, Any]) -> str | None:
    """published_at, else created_at: ISO text as Ghost wrote it (UTC); a naive one gets its +00:00, and the
    2014 generation's epoch milliseconds are made ISO."""
    for key in ("published_at", "created_at"):
        value = row.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return datetime.fromtimestamp(value / 1000, UTC).isoformat()
            except (OverflowError, OSError, ValueError):
                return None
        text = string(value)
        if text:
            return text if re.search(r"(Z|[+-]\d\d:?\d\d)$", text) else text + "+00:00"
    return None


def _body(row: dict[str, Any], context: _Context) -> tuple[str, str | None]:
    """(html, markdown): `html` first, else `lexical` rendered, else `mobiledoc`, else the 2014 `markdown`."""
    if html := string(row.get("html")):
        return clean_html(context.url(html)), None
    for key, render in (("lexical", render_lexical), ("mobiledoc", render_mobiledoc)):
        if source := string(row.get(key)):
            try:
                doc = json.loads(context.url(source))
            except RecursionError:
                raise TooDeep from None
            except ValueError:
                continue  # a damaged field: try the next one
            return clean_html(render(doc)), None
    return "", string(row.get("markdown")) or None


def _notes(report: IssueReport, counts: Counter[str], base: str | None) -> None:
    def posts(n: int) -> str:
        return f"{n} post{'s' if n != 1 else ''}"

    if counts["sent"]:
        report.notes.append(f"{posts(counts['sent'])} only emailed in Ghost (status sent) imported as web issues")
    if counts["draft"] or counts["scheduled"]:
        report.notes.append(f"{posts(counts['draft'] + counts['scheduled'])} draft or scheduled in Ghost "
                            "imported with `draft: true`")
    if counts["paid"]:
        report.notes.append(f"{posts(counts['paid'])} for members or paid tiers imported as public issues "
                            "(publisher has no paid tier)")
    if counts["placeholder"] and not base:
        report.notes.append("no --old-url: Ghost's __GHOST_URL__ links and images are left as site-relative "
                            "paths (/content/images/...); copy those files or import again with --old-url")


# ---------------------------------------------------------------------------------------------------- cards


def _text_of(el: Tag | None) -> str:
    return " ".join(el.get_text(" ").split()) if isinstance(el, Tag) else ""


def _inner(el: Tag | None) -> str:
    return el.decode_contents().strip() if isinstance(el, Tag) else ""


def _is_signup(href: str) -> bool:
    return "#/portal" in href or href.rstrip("/").endswith(("/signup", "/subscribe"))


def _bookmark(soup: BeautifulSoup, card: Tag) -> None:
    anchor = card.find("a", href=True)
    href = string(anchor.get("href")) if isinstance(anchor, Tag) else ""
    title = _text_of(card.select_one(".kg-bookmark-title")) or href
    description = _text_of(card.select_one(".kg-bookmark-description"))
    caption = _inner(card.find("figcaption"))
    markup = (f'<p><a href="{htmllib.escape(href)}">{htmllib.escape(title)}</a>'
              + (f"<br>{htmllib.escape(description)}" if description else "") + "</p>") if href else ""
    replace_with_html(soup, card, markup + (f"<p><em>{caption}</em></p>" if caption else ""))


def _media(soup: BeautifulSoup, card: Tag, label: str) -> None:
    media = card.find(["video", "audio", "source"], src=True)
    src = string(media.get("src")) if isinstance(media, Tag) else ""
    title = _text_of(card.select_one(".kg-audio-title, .kg-video-title")) or f"{label}: {src.rsplit('/', 1)[-1]}"
    replace_with_html(soup, card, link_html(src, title) if src else "")


def _header(soup: BeautifulSoup, card: Tag) -> None:
    heading = card.select_one(".kg-header-card-header, .kg-header-card-heading")
    sub = card.select_one(".kg-header-card-subheader, .kg-header-card-subheading")
    button = card.find("a", href=True)
    markup = (f"<h2>{_inner(heading)}</h2>" if _text_of(heading) else "") + \
        (f"<p>{_inner(sub)}</p>" if _text_of(sub) else "")
    if isinstance(button, Tag) and not _is_signup(string(button.get("href"))):
        markup += link_html(string(button.get("href")), _text_of(button))
    replace_with_html(soup, card, markup)


def _cta(soup: BeautifulSoup, card: Tag) -> None:
    """A call-to-action card: dropped when it is a subscribe form, else its text and its link kept."""
    anchor = card.find("a", href=True)
    if card.find("form") or (isinstance(anchor, Tag) and _is_signup(string(anchor.get("href")))):
        card.decompose()
        return
    text = _inner(card.select_one(".kg-cta-text")) or ""
    link = link_html(string(anchor.get("href")), _text_of(anchor)) if isinstance(anchor, Tag) else ""
    replace_with_html(soup, card, (f"<p>{text}</p>" if text else "") + link)


def _simple_cards(soup: BeautifulSoup) -> None:
    for card in soup.select(".kg-button-card"):
        anchor = card.find("a", href=True)
        href = string(anchor.get("href")) if isinstance(anchor, Tag) else ""
        replace_with_html(soup, card, link_html(href, _text_of(anchor)) if href and not _is_signup(href) else "")
    for card in soup.select(".kg-callout-card"):
        emoji = _text_of(card.select_one(".kg-callout-emoji"))
        text = _inner(card.select_one(".kg-callout-text"))
        replace_with_html(soup, card, f"<blockquote><p>{htmllib.escape(emoji)} {text}</p></blockquote>")
    for card in soup.select(".kg-toggle-card"):
        heading = card.select_one(".kg-toggle-heading-text")
        replace_with_html(soup, card, f"<h4>{_inner(heading)}</h4>{_inner(card.select_one('.kg-toggle-content'))}")
    for card in soup.select(".kg-signup-card"):
        card.decompose()


def clean_html(body: str) -> str:
    """Ghost's card markup (image, gallery, bookmark, button, callout, toggle, media, header, signup, cta) as plain
    HTML; embed cards keep their iframe, which the shared converter turns into a link."""
    soup = BeautifulSoup(body, "html.parser")
    for figure in soup.select("figure.kg-image-card, figure.kg-gallery-card"):
        unwrap_figure(soup, figure)
    for card in soup.select(".kg-bookmark-card"):
        _bookmark(soup, card)
    for card in soup.select(".kg-video-card"):
        _media(soup, card, "Video")
    for card in soup.select(".kg-audio-card"):
        _media(soup, card, "Audio")
    for card in soup.select(".kg-header-card"):
        _header(soup, card)
    for card in soup.select(".kg-cta-card"):
        _cta(soup, card)
    _simple_cards(soup)
    return str(soup)


# ---------------------------------------------------------------------------------------------------- lexical

_FORMATS = ((16, "code"), (1, "strong"), (2, "em"), (4, "s"), (32, "sub"), (64, "sup"))


def _esc(value: Any) -> str:
    return htmllib.escape(string(value) if not isinstance(value, str) else value)


def _card(node: dict[str, Any], kind: str) -> str | None:
    """A Ghost card (lexical node or mobiledoc card payload) as plain HTML; None when `kind` is no known card."""
    if kind == "image":
        src, caption = string(node.get("src")), string(node.get("caption"))
        alt = string(node.get("alt")) or " ".join(BeautifulSoup(caption, "html.parser").get_text(" ").split())
        return (f'<p><img src="{_esc(src)}" alt="{_esc(alt)}"></p>' if src else "") + \
            (f"<p><em>{caption}</em></p>" if caption else "")
    if kind == "gallery":
        images = node.get("images") if isinstance(node.get("images"), list) else []
        return "".join(_card(i, "image") or "" for i in images if isinstance(i, dict)) + \
            (f"<p><em>{string(node.get('caption'))}</em></p>" if string(node.get("caption")) else "")
    if kind == "markdown":
        source = string(node.get("markdown"))
        try:  # the Markdown parser overflows the C stack on deep nesting: bounded first, as a build does
            md.check_nesting(source)
        except md.NestingError:
            raise TooDeep from None
        return md.to_html(source)
    if kind == "html":
        return string(node.get("html"))
    if kind in ("hr", "horizontalrule"):
        return "<hr>"
    if kind in ("code", "codeblock"):
        language = string(node.get("language"))
        cls = f' class="language-{_esc(language)}"' if re.fullmatch(r"[\w+#.-]{1,30}", language) else ""
        return f"<pre><code{cls}>{_esc(node.get('code'))}</code></pre>"
    return _link_card(node, kind)


def _link_card(node: dict[str, Any], kind: str) -> str | None:
    if kind in ("bookmark", "embed"):
        url = string(node.get("url"))
        meta = node.get("metadata") if isinstance(node.get("metadata"), dict) else {}
        title, description = string(meta.get("title")) or url, string(meta.get("description"))
        return (link_html(url, title) + (f"<p>{_esc(description)}</p>" if description else "")) if url else ""
    if kind == "button":
        url = string(node.get("buttonUrl"))
        return link_html(url, string(node.get("buttonText"))) if url and not _is_signup(url) else ""
    if kind in ("video", "audio", "file"):
        src = string(node.get("src"))
        title = string(node.get("title")) or string(node.get("fileName")) or f"{kind.title()}: {src.rsplit('/', 1)[-1]}"
        return link_html(src, title) if src else ""
    if kind == "callout":
        return f"<blockquote><p>{_esc(node.get('calloutEmoji'))} {string(node.get('calloutText'))}</p></blockquote>"
    if kind == "toggle":
        return f"<h4>{string(node.get('heading'))}</h4>{string(node.get('content'))}"
    if kind == "header":
        return f"<h2>{string(node.get('header') or node.get('heading'))}</h2>" + \
            f"<p>{string(node.get('subheader') or node.get('subheading'))}</p>"
    if kind in ("signup", "call-to-action", "paywall", "email-cta", "email"):
        return ""  # subscribe forms and email-only blocks: nothing for the web archive
    return None


def render_lexical(doc: Any) -> str:
    """A Ghost lexical document as HTML; unknown nodes give their text. Raises TooDeep past MAX_DEPTH."""
    root = doc.get("root") if isinstance(doc, dict) else None
    return _lexical_children(root, 0) if isinstance(root, dict) else ""


def _lexical_children(node: dict[str, Any], depth: int) -> str:
    if depth > MAX_DEPTH:
        raise TooDeep
    children = node.get("children")
    return "".join(_lexical(c, depth + 1) for c in children if isinstance(c, dict)) \
        if isinstance(children, list) else ""


def _lexical(node: dict[str, Any], depth: int) -> str:
    kind = string(node.get("type")).removeprefix("extended-")
    inner: Callable[[], str] = lambda: _lexical_children(node, depth)  # noqa: E731
    if kind == "text":
        return _text_node(node)
    if kind in ("linebreak", "tab"):
        return "<br>" if kind == "linebreak" else " "
    if kind == "paragraph":
        return f"<p>{inner()}</p>"
    if kind == "heading":
        tag = string(node.get("tag"))
        tag = tag if _HEADING.match(tag) else "h2"
        return f"<{tag}>{inner()}</{tag}>"
    if kind == "list":
        tag = "ol" if string(node.get("listType")) == "number" else "ul"
        return f"<{tag}>{inner()}</{tag}>"
    if kind == "listitem":
        return f"<li>{inner()}</li>"
    if kind in ("quote", "aside"):
        return f"<blockquote><p>{inner()}</p></blockquote>"
    if kind in ("link", "autolink"):
        return f'<a href="{_esc(node.get("url"))}">{inner()}</a>'
    if kind == "code" and isinstance(node.get("children"), list):
        code = BeautifulSoup(inner().replace("<br>", "\n"), "html.parser").get_text()
        return f"<pre><code>{htmllib.escape(code)}</code></pre>"
    card = _card(node, kind)
    return card if card is not None else inner() or _esc(node.get("text"))


def _text_node(node: dict[str, Any]) -> str:
    text = _esc(node.get("text"))
    fmt = node.get("format")
    if isinstance(fmt, int) and not isinstance(fmt, bool):
        for bit, tag in _FORMATS:
            if fmt & bit:
                text = f"<{tag}>{text}</{tag}>"
    return text


# ---------------------------------------------------------------------------------------------------- mobiledoc

_MARKUP_TAGS = {"a", "b", "strong", "i", "em", "code", "s", "sub", "sup", "u"}
_SECTION_TAGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "aside", "pull-quote"}


def render_mobiledoc(doc: Any) -> str:
    """A mobiledoc 0.3 document as HTML: markup, list and card sections; atoms give their text."""
    if not isinstance(doc, dict):
        return ""
    lists = {k: doc.get(k) if isinstance(doc.get(k), list) else [] for k in ("markups", "atoms", "cards", "sections")}
    out = []
    for section in lists["sections"][:100_000]:
        if isinstance(section, list) and section:
            out.append(_section(section, lists))
    return "".join(out)


def _section(section: list[Any], lists: dict[str, list[Any]]) -> str:
    kind = section[0]
    if kind == 1 and len(section) >= 3:
        tag = string(section[1]).lower()
        tag = tag if tag in _SECTION_TAGS else "p"
        tag = "blockquote" if tag in ("aside", "pull-quote") else tag
        return f"<{tag}>{_markers(section[2], lists)}</{tag}>"
    if kind == 3 and len(section) >= 3 and isinstance(section[2], list):
        tag = "ol" if string(section[1]).lower() == "ol" else "ul"
        return f"<{tag}>" + "".join(f"<li>{_markers(item, lists)}</li>" for item in section[2]) + f"</{tag}>"
    if kind == 10 and len(section) >= 2 and isinstance(section[1], int):
        cards = lists["cards"]
        if 0 <= section[1] < len(cards) and isinstance(cards[section[1]], list) and len(cards[section[1]]) == 2:
            name, payload = cards[section[1]]
            kind_name = string(name).removesuffix("-card").removeprefix("card-")
            found = _card(payload if isinstance(payload, dict) else {}, kind_name)
            return found if found is not None else ""
    return ""


def _markers(markers: Any, lists: dict[str, list[Any]]) -> str:
    """Marker list -> HTML: each marker opens markups by index, has text (or an atom), closes the last N."""
    if not isinstance(markers, list):
        return ""
    out, open_tags = [], []
    for marker in markers:
        if not (isinstance(marker, list) and len(marker) == 4 and isinstance(marker[1], list)):
            continue
        for index in marker[1]:
            tag, attrs = _markup(lists["markups"], index)
            out.append(f"<{tag}{attrs}>")
            open_tags.append(tag)
        out.append(_atom(marker[3], lists["atoms"]) if marker[0] == 1 else _esc(marker[3]))
        closed = marker[2] if isinstance(marker[2], int) and not isinstance(marker[2], bool) else 0
        for _ in range(max(0, min(closed, len(open_tags)))):
            out.append(f"</{open_tags.pop()}>")
    out += [f"</{tag}>" for tag in reversed(open_tags)]
    return "".join(out)


def _markup(markups: list[Any], index: Any) -> tuple[str, str]:
    entry = markups[index] if isinstance(index, int) and 0 <= index < len(markups) else None
    if not isinstance(entry, list) or not entry:
        return "span", ""
    tag = string(entry[0]).lower()
    if tag not in _MARKUP_TAGS:
        return "span", ""
    attrs = entry[1] if len(entry) > 1 and isinstance(entry[1], list) else []
    pairs = dict(zip(attrs[::2], attrs[1::2], strict=False))
    href = string(pairs.get("href"))
    return tag, (f' href="{_esc(href)}"' if tag == "a" and href else "")


def _atom(index: Any, atoms: list[Any]) -> str:
    atom = atoms[index] if isinstance(index, int) and 0 <= index < len(atoms) else None
    if isinstance(atom, list) and len(atom) >= 2:
        return "<br>" if atom[0] == "soft-return" else _esc(atom[1])
    return ""
