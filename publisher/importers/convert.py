"""HTML to publisher Markdown, with markdownify: links made absolute and unsafe schemes dropped, `|` escaped in
table cells, embedded media (iframe, video, audio) turned into links, footnotes into `[^n]`. Every importer's
HTML goes through here; a source cleans its own editor's quirks (cards, captions, buttons) before it calls
`html_to_markdown`."""

from __future__ import annotations

import html as htmllib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, Tag
from markdownify import ATX, MarkdownConverter


def plain(html: str) -> str:
    """Text of an HTML fragment, whitespace collapsed."""
    if "<" not in html and "&" not in html:
        return " ".join(html.split())
    return " ".join(BeautifulSoup(html, "html.parser").get_text(" ").split())


# ---- editor HTML: what the platform readers share to clean their editors' markup before conversion


def data_attrs(el: Tag) -> dict[str, Any]:
    """An editor's `data-attrs` JSON, or {} when it is missing or not a JSON object."""
    raw = el.get("data-attrs")
    if not isinstance(raw, str):
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def string(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def replace_with_html(soup: BeautifulSoup, el: Tag, markup: str) -> None:
    """Put `markup` (HTML built here, with every export value escaped) where `el` was."""
    fragment = BeautifulSoup(markup, "html.parser")
    el.replace_with(*list(fragment.contents) or [""])


def link_html(url: str, text: str) -> str:
    return f'<p><a href="{htmllib.escape(url)}">{htmllib.escape(text or url)}</a></p>'


def unwrap_figure(soup: BeautifulSoup, figure: Tag, image_url: Any = None) -> None:
    """A figure with images and a caption -> each image in its own paragraph (alt = the caption when it had none)
    and the caption as an italic paragraph below; the link around an image (to its full size) is dropped."""
    caption_el = figure.find("figcaption")
    caption = caption_el.decode_contents().strip() if isinstance(caption_el, Tag) else ""
    caption_text = " ".join(caption_el.get_text(" ").split()) if isinstance(caption_el, Tag) else ""
    parts = []
    for img in figure.find_all("img"):
        src = string(img.get("src"))
        if image_url is not None:
            src = image_url(src)
        if not src:
            continue
        alt = string(img.get("alt")) or caption_text
        parts.append(f'<p><img src="{htmllib.escape(src)}" alt="{htmllib.escape(alt)}"></p>')
    if caption:
        parts.append(f"<p><em>{caption}</em></p>")
    replace_with_html(soup, figure, "".join(parts))


_YOUTUBE_EMBED = re.compile(r"^https?://(?:www\.)?youtube(?:-nocookie)?\.com/embed/([\w-]+)")
_SAFE_LINK = ("http", "https", "mailto")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")  # what urlsplit takes for a scheme
_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f\\]")


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
        scheme = _SCHEME.match(url)
        if scheme is None and self.base:
            url = urljoin(self.base, url)
            scheme = _SCHEME.match(url)
        if scheme is None or scheme.group(1).lower() not in schemes or _UNSAFE_IN_URL.search(url):
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


_REF_OPEN, _REF_CLOSE = "\ue000", "\ue001"  # private-use marks: markdownify leaves them alone
_FOOTNOTE_ID = re.compile(r"^(fn|footnote|note)[-:_.]?\w*", re.I)


def _is_footnote(target: Any) -> bool:
    """A footnote definition as editors write them: an id like fn1 / fn:1 / footnote-1, or inside an element
    whose class says footnote (Substack's div.footnote, markdown-it's section.footnotes, WordPress's
    div.footnotes)."""
    if _FOOTNOTE_ID.match(target.get("id") or ""):
        return True
    return any("footnote" in " ".join(node.get("class") or []) for node in [target, *target.parents][:4]
               if hasattr(node, "get"))


def _definition(target: Any) -> Any:
    """The element holding a footnote's text, from the element its reference points to."""
    if target.name in ("li", "div", "p", "aside", "dd"):
        return target
    return target.find_parent(["li", "div", "p", "aside", "dd"]) or target


def _take_footnotes(soup: Any) -> list[tuple[int, Any]]:
    """Replace each footnote reference by a numbered mark and take the definitions out of the document:
    [(number, definition element)], in the order the references first appear."""
    refs, ids = [], {}
    for el in soup.descendants:  # one walk (bs4's find_all with filters costs a walk each, and more)
        if isinstance(el, Tag):
            href = el.get("href") if el.name == "a" else None
            if isinstance(href, str) and len(href) > 1 and href[0] == "#":
                refs.append(el)
            if isinstance(anchor := el.get("id"), str):
                ids.setdefault(anchor, el)  # the first of an id, as a browser's #link goes
    if not refs:
        return []
    numbers: dict[int, int] = {}  # id(definition) -> number
    found: list[tuple[int, Any]] = []
    replaced: set[int] = set()  # references already made marks: a back-reference pointing at one is not a note
    for ref in refs:
        target = ids.get(ref["href"][1:])
        if target is None or target is ref or id(target) in replaced or not _is_footnote(target):
            continue
        definition = _definition(target)
        ancestors = {id(a) for a in ref.parents}
        if id(target) in ancestors or id(definition) in ancestors:  # a back-reference inside the note itself
            continue
        number = numbers.setdefault(id(definition), len(numbers) + 1)
        if number > len(found):
            found.append((number, definition))
        holder = ref.parent if ref.parent is not None and ref.parent.name == "sup" and \
            ref.parent.get_text(strip=True) == ref.get_text(strip=True) else ref
        replaced.update((id(ref), id(holder)))
        holder.replace_with(f"{_REF_OPEN}{number}{_REF_CLOSE}")
    for _, definition in found:
        for back in definition.find_all("a", href=re.compile(r"^#")):
            back.decompose()  # back-references (↩) and Substack's number link
        definition.extract()
        definition.name = "div"  # a note's text, not a list item any more
    if found:
        for container in soup.find_all(class_=re.compile(r"^footnotes?(-list|-sep)?$")):
            if not container.get_text(strip=True):
                container.decompose()  # the emptied list of notes, and markdown-it's separator rule
    return found


def _note(number: int, text: str) -> str:
    lines = text.strip("\n").split("\n")
    rest = "\n".join(f"    {line}" if line else "" for line in lines[1:])
    return f"[^{number}]: {lines[0]}" + (f"\n{rest}" if rest else "")


class _Tag(Tag):
    """A tag whose `find_parent("pre")` walks up comparing names: markdownify asks that of every tag it
    converts, and bs4's general search builds a filter each time (a sixth of an import's time)."""

    def find_parent(self, name: Any = None, attrs: Any = None, **kwargs: Any) -> Any:
        if isinstance(name, str) and not attrs and not kwargs:
            node = self.parent
            while node is not None:
                if node.name == name:
                    return node
                node = node.parent
            return None
        return super().find_parent(name, attrs, **kwargs)


@dataclass(frozen=True)
class Converted:
    markdown: str
    text: str  # the whole fragment as plain text, whitespace collapsed (for a summary or a missing title)
    too_deep: bool = False  # the HTML nests too deeply to convert (nothing else is set)


def convert(html: str, base: str | None = None) -> Converted:
    """An HTML fragment as publisher Markdown (ATX headings, `-` bullets, GFM tables, fenced code, footnotes as
    `[^n]`), and as text: one parse for both."""
    converter = _Converter(base)
    soup = BeautifulSoup(html, "lxml", element_classes={Tag: _Tag})
    text = " ".join(soup.get_text(" ").split())
    notes = _take_footnotes(soup)
    markdown = converter.convert_soup(soup)
    if notes:
        markdown = markdown.rstrip() + "\n\n" + "\n\n".join(
            _note(n, converter.convert_soup(definition)) for n, definition in notes) + "\n"
    markdown = re.sub(f"{_REF_OPEN}(\\d+){_REF_CLOSE}", r"[^\1]", markdown)
    markdown = re.sub(r"[ \t]+\n", "\n", markdown)
    markdown = re.sub(r"\n{3,}", "\n\n", markdown)
    return Converted(markdown.strip("\n") + "\n" if markdown.strip() else "", text)


def html_to_markdown(html: str, base: str | None = None) -> str:
    """`convert`'s Markdown."""
    return convert(html, base).markdown
