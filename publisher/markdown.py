"""Markdown to HTML and to plain text; URL rewriting; CJK-aware summaries.

Parsing is markdown-it-pyrs (markdown-it in Rust): CommonMark plus tables, strikethrough, autolinked URLs,
footnotes and heading ids, about 25x faster than markdown-it-py on our reference content.
"""

from __future__ import annotations

import html
import posixpath
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import PurePosixPath
from urllib.parse import quote, urljoin

import markdown_it_pyrs

PLUGINS = ["table", "strikethrough", "linkify", "footnote", "heading_anchors"]
SUMMARY_LENGTH = 200
ELLIPSIS = "…"


@lru_cache(maxsize=1)
def parser() -> markdown_it_pyrs.MarkdownIt:
    return markdown_it_pyrs.MarkdownIt("commonmark").enable_many(PLUGINS)


# The heading_anchors plugin wraps an SVG icon link around each id; a plain id on the heading is lighter for
# feeds and emails, and the theme can add its own anchor affordance.
_ANCHOR = re.compile(
    r'<h([1-6])><a aria-hidden="true" class="anchor" id="([^"]*)" href="#[^"]*">.*?</svg></a>', re.S
)


# ---- input limits: markdown-it-pyrs recurses once per nesting level and overflows the C stack (SIGSEGV, which
# no `except` catches) at about 20,000 levels of lists, and at about 60,000 levels of emphasis or links; the
# Python walkers below recurse too. So the nesting is bounded before anything parses.

MAX_NESTING = 32  # lists and quotes inside each other; real issues nest a handful
MAX_INLINE_MARKS = 10_000  # `*`, `_`, `~` and `[` in one paragraph: each may open a level inside the last
_INLINE_MARKS = "*_~["
# A line can only be nested deeper than MAX_NESTING if its run of indentation and markers is at least this long
# (a tab adds at most 2 levels, every other character at most 1), so only such lines are looked at closely.
# (A search for "\n" is several times faster than one for "^" under re.M; the first line is matched on its own.)
_PREFIX = rf"[ \t>*+\-0-9.)]{{{MAX_NESTING // 2 + 1}}}"
_CANDIDATE = re.compile(r"\n" + _PREFIX)
_CANDIDATE_FIRST = re.compile(_PREFIX)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


class NestingError(ValueError):
    """Markdown nested deeper than the parser can take; `line` is 1-based within the source."""

    def __init__(self, message: str, line: int, hint: str) -> None:
        super().__init__(message)
        self.line = line
        self.hint = hint


def _line_depth(line: str) -> int:
    """An upper bound of how many lists and quotes `line` is inside: its `>` and list markers, plus half its
    indentation (a list item's content is indented at least 2 columns more than its parent's). Stops once
    past MAX_NESTING."""
    markers = free = col = 0
    after_marker = False  # the one space after a marker belongs to the marker
    i, n = 0, len(line)
    while i < n and markers + free // 2 <= MAX_NESTING:
        c = line[i]
        if c in " \t":
            width = 4 - col % 4 if c == "\t" else 1
            col += width
            free += width - 1 if after_marker else width
            after_marker = False
            i += 1
            continue
        after_marker = False
        if c == ">":
            size = 1
        elif c in "-*+":
            if i + 1 < n and line[i + 1] not in " \t":
                break
            rest = line[i:]
            if c != "+" and rest.count(c) >= 3 and not rest.strip(c + " \t"):
                break  # "- - -" and "* * *" are a thematic break, not lists
            size = 1
        elif "0" <= c <= "9":
            j = i
            while j < n and j - i < 9 and "0" <= line[j] <= "9":
                j += 1
            if j == n or line[j] not in ".)" or (j + 1 < n and line[j + 1] not in " \t"):
                break
            size = j + 1 - i
        else:
            break
        markers += 1
        col += size
        i += size
        after_marker = True
    return markers + free // 2


def check_nesting(source: str) -> None:
    """Raise `NestingError` for Markdown nested too deeply to parse safely (lists and quotes beyond
    MAX_NESTING, or more than MAX_INLINE_MARKS emphasis and link marks in one paragraph). Cheap: a regular
    expression picks the few lines worth a closer look."""
    starts = [m.start() + 1 for m in _CANDIDATE.finditer(source)]
    if _CANDIDATE_FIRST.match(source):
        starts.insert(0, 0)
    for start in starts:
        end = source.find("\n", start)
        depth = _line_depth(source[start:] if end == -1 else source[start:end])
        if depth > MAX_NESTING:
            raise NestingError(f"lists and quotes are nested more than {MAX_NESTING} levels deep",
                               source.count("\n", 0, start) + 1, "flatten the lists and quotes that start there")
    if len(source) <= MAX_INLINE_MARKS or sum(source.count(c) for c in _INLINE_MARKS) <= MAX_INLINE_MARKS:
        return
    start = 0
    for gap in [*_BLANK_LINE.finditer(source), None]:
        end = len(source) if gap is None else gap.start()
        if sum(source.count(c, start, end) for c in _INLINE_MARKS) > MAX_INLINE_MARKS:
            raise NestingError(f"a paragraph has more than {MAX_INLINE_MARKS:,} emphasis and link marks "
                               "(*, _, ~, [), which may nest that deep", source.count("\n", 0, start) + 1,
                               "split the paragraph that starts there with blank lines")
        if gap is not None:
            start = gap.end()


def to_html(source: str) -> str:
    """Render Markdown to an HTML fragment (URLs as written)."""
    # tabindex: a wide table scrolls in its own box (the theme's CSS), which a keyboard must be able to reach
    return _ANCHOR.sub(r'<h\1 id="\2">', parser().render(source)).replace("<table>", '<table tabindex="0">')


def tree(source: str) -> markdown_it_pyrs.Node:
    return parser().tree(source)


# ---- URLs ----

_URL_ATTR = re.compile(r'(?<=\s)(href|src|poster)="([^"]*)"')
# Only the URLs a rewrite can change: most links in an issue are absolute, and skipping them in the regex
# (rather than in a Python callback) keeps rewriting cheap. The pattern with a literal space before the
# attribute is 20x faster than one with \s; an attribute after a tab or line break (possible in raw HTML) sends
# the fragment to the general pattern.
_NOT_ABSOLUTE = re.compile(r' (href|src|poster)="(?![A-Za-z][A-Za-z0-9+.-]*:)([^"]*)"')
_NOT_ABSOLUTE_ANY_SPACE = re.compile(r'(?<=\s)(href|src|poster)="(?![A-Za-z][A-Za-z0-9+.-]*:)([^"]*)"')
_OTHER_SPACE_ATTRS = [f"{space}{attr}=" for space in "\t\n\r\f" for attr in ("href", "src", "poster")]
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def is_relative(url: str) -> bool:
    """True for a URL that depends on where the page is: not absolute, not protocol-relative, not #fragment."""
    return bool(url) and not _SCHEME.match(url) and not url.startswith(("//", "#"))


def rewrite_urls(fragment: str, rewrite: Callable[[str], str]) -> str:
    """Apply `rewrite` to every href/src URL without a scheme in an HTML fragment (unescaped, then re-escaped)."""

    def sub(match: re.Match[str]) -> str:
        url = html.unescape(match.group(2))
        new = rewrite(url)
        if new == url:
            return match.group(0)
        return match.group(0)[: match.start(2) - match.start(0)] + html.escape(new, quote=True) + '"'

    general = any(attr in fragment for attr in _OTHER_SPACE_ATTRS)
    return (_NOT_ABSOLUTE_ANY_SPACE if general else _NOT_ABSOLUTE).sub(sub, fragment)


def urls_in(fragment: str) -> Iterator[tuple[str, str]]:
    """(attribute, URL) pairs of an HTML fragment."""
    for match in _URL_ATTR.finditer(fragment):
        yield match.group(1), html.unescape(match.group(2))


# ---- plain text and summaries ----


def is_wide(char: str) -> bool:
    """CJK and other full-width characters: no spaces between them, and a line may break between any two."""
    return unicodedata.east_asian_width(char) in "WF"


def _join_break(before: str, after: str) -> str:
    # A soft line break is a space in English but nothing between two Chinese characters.
    if before and after and (is_wide(before[-1]) or is_wide(after[0])):
        return ""
    return " "


# Python's own recursion limit is about 1,000 frames, and emphasis may nest up to MAX_INLINE_MARKS deep: below
# this depth a walker gives up the structure and takes the bare text (without recursion).
_FLAT_BELOW = 64


def flat_text(node: markdown_it_pyrs.Node) -> str:
    """The text and code of a node tree in order, walked without recursion (nothing else is kept)."""
    out: list[str] = []
    stack = list(reversed(node.children))
    while stack:
        child = stack.pop()
        if child.name in ("text", "text_special", "code_inline"):
            out.append(child.meta.get("content", ""))
        elif child.name in ("softbreak", "hardbreak"):
            out.append(" ")
        stack.extend(reversed(child.children))
    return "".join(out)


def inline_text(node: markdown_it_pyrs.Node, depth: int = 0) -> str:
    """The readable text of an inline node tree (images and raw HTML left out)."""
    if depth > _FLAT_BELOW:
        return flat_text(node)
    out: list[str] = []
    pending_break = False
    for child in node.children:
        name = child.name
        if name in ("softbreak", "hardbreak"):
            pending_break = True
            continue
        if name in ("text", "text_special"):
            piece = child.meta.get("content", "")
        elif name in ("image", "html_inline", "footnote_ref"):
            continue
        else:
            piece = inline_text(child, depth + 1) if child.children else child.meta.get("content", "")
        if not piece:
            continue
        if pending_break and out:
            out.append(_join_break(out[-1], piece))
        pending_break = False
        out.append(piece)
    return "".join(out)


def first_paragraph_text(source: str) -> str:
    """Text of the first top-level paragraph that has any (a paragraph holding only an image is skipped).

    Block parsing is sequential, so the blocks of the document's head parse the same without the rest: only
    the head (cut at a blank line) is parsed, unless the rest defines link references the head may use.
    """
    for size in (500, 3000):
        cut = source.find("\n\n", size)
        if cut == -1:
            break
        if "]:" not in source[cut:]:
            text = _first_paragraph(source[:cut])
            if text:
                return text
    return _first_paragraph(source)


_PARAGRAPH = re.compile(r"^<p>(.*?)</p>$", re.S | re.M)
_FOOTNOTE_REF = re.compile(r'<sup class="footnote-ref">.*?</sup>', re.S)
_TAG = re.compile(r"<[^>]*>")


def _first_paragraph(source: str) -> str:
    # From the rendered HTML rather than the syntax tree: the Rust renderer is several times cheaper than
    # building the tree as Python objects, and top-level paragraphs are the `<p>` elements at line starts.
    rendered = parser().render(source)
    for match in _PARAGRAPH.finditer(rendered):
        before = rendered[: match.start()]
        if before.count("<blockquote") > before.count("</blockquote>") or before.count("<li") > before.count("</li>"):
            continue  # not a top-level paragraph
        inner = _TAG.sub("", _FOOTNOTE_REF.sub("", match.group(1)))
        lines = [html.unescape(line) for line in inner.split("\n")]
        text = lines[0]
        for line in lines[1:]:
            text += _join_break(text, line) + line
        text = " ".join(text.split())
        if text:
            return text
    return ""


def _is_word_char(char: str) -> bool:
    return char.isalnum() and not is_wide(char)


def truncate(text: str, limit: int = SUMMARY_LENGTH) -> str:
    """Cut plain text to about `limit` characters, with an ellipsis.

    Cuts on a character boundary (a CJK text is cut anywhere between characters), never inside a grapheme
    (combining marks, emoji joiners), and backs up to a word start when the cut falls inside a Latin word.
    """
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = limit
    while cut > 0 and (unicodedata.combining(text[cut]) or text[cut] in "\u200d\ufe0e\ufe0f"
                       or text[cut - 1] == "\u200d"):
        cut -= 1
    if _is_word_char(text[cut - 1]) and _is_word_char(text[cut]):
        start = cut
        while start > 0 and _is_word_char(text[start - 1]):
            start -= 1
        if start > limit // 2:
            cut = start
    head = text[:cut].rstrip(" \t,.;:!?，、。；：！？—–-(（「『“‘[【")
    return head + ELLIPSIS


def summarize(source: str, limit: int = SUMMARY_LENGTH) -> str:
    return truncate(first_paragraph_text(source), limit)


# ---- characters XML 1.0 forbids ----

_XML_FORBIDDEN = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """Drop characters that XML 1.0 forbids (control characters, U+FFFE/U+FFFF, lone surrogates)."""
    return _XML_FORBIDDEN.sub("", text)


# ---- where a relative URL in content/ points on the site ----


def site_path(url: str, base: PurePosixPath, pages: Mapping[str, str]) -> str | None:
    """The site path (no leading slash) a relative URL in a file under content/`base` points at, or None.

    `images/a.png` in content/2026/x.md is the asset copied to 2026/images/a.png; `/about/` is site-root
    relative; a link to another issue's Markdown file (`2026-11-20-x.md`) is that issue's page (`pages`
    maps content paths to page paths). None for absolute URLs, fragments, and paths outside content/.
    """
    found = _joined(url, str(base))
    if found is None:
        return None
    joined, sep, rest, folder = found
    joined = pages.get(joined, joined)
    if folder and joined and not joined.endswith("/"):
        joined += "/"
    return joined + sep + rest


@lru_cache(maxsize=1 << 16)
def _joined(url: str, base: str) -> tuple[str, str, str, bool] | None:
    """The part of `site_path` that does not depend on the pages (asked for again and again by every render
    key of an issue with `.md` links): the content path `url` names, its query or fragment, whether it ends in
    "/"."""
    if not is_relative(url):
        return None
    path, sep, rest = _split_suffix(url)
    if path.startswith("/"):
        joined = posixpath.normpath(path.lstrip("/")) if path.strip("/") else ""
    else:
        joined = posixpath.normpath(posixpath.join(base, path)) if path else base
    if joined == ".":
        joined = ""
    if joined.startswith("../") or joined == "..":
        return None
    return joined, sep, rest, path.endswith("/")


def _split_suffix(url: str) -> tuple[str, str, str]:
    for sep in ("?", "#"):
        if sep in url:
            path, _, rest = url.partition(sep)
            return path, sep, rest
    return url, "", ""


_SAFE = "/%#?=&:@!$'()*+,;~"  # what quoting a URL's path leaves as it is


def absolute_url(site_url: str, path: str) -> str:
    """`path` (site-relative) under the site's base URL, percent-encoded where a URL needs it."""
    return site_url + quote(path, safe=_SAFE)


def localize(fragment: str, base: PurePosixPath, pages: Mapping[str, str], prefix: str) -> str:
    """Rewrite relative URLs so they work from a page `prefix` away from the site root (e.g. "../../")."""

    def rewrite(url: str) -> str:
        target = site_path(url, base, pages)
        return url if target is None else prefix + quote(target, safe=_SAFE)

    return rewrite_urls(fragment, rewrite)


# Where a relative URL an author writes points (one rule for web pages, feeds and emails, so that they agree):
# - inside content/ (`images/a.png`, `../2026/x.md`, `/about/`): the file or page the build makes of it;
#   a root-relative `/x` is relative to the *site root*, i.e. under `site.url` with its path
#   (`https://e.com/daily/` + `x`), not to the host's root: the site may live in a sub-folder, and the web pages
#   (`localize`) point `/x` at the same place, so a site moved to another path keeps working;
# - climbing out of content/ (`../2026-11-20-x/` from content/y.md): relative to the issue's own page
#   (`issues/<slug>/`), as a browser resolves it there; web pages keep it as written, feeds and emails join it
#   to the page's absolute URL.


def target_path(url: str, base: PurePosixPath, pages: Mapping[str, str], page_path: str) -> str | None:
    """The site path (query and fragment kept) a relative URL written in the issue at content/`base`, whose
    page is `page_path`, points at; None for absolute URLs, fragments, and paths above the site root."""
    if not is_relative(url):
        return None
    target = site_path(url, base, pages)
    return target if target is not None else site_path(url, PurePosixPath(page_path), {})


def absolute(url: str, base: PurePosixPath, pages: Mapping[str, str], site_url: str, page_url: str) -> str:
    """`url` as written in the issue at content/`base` made absolute, for a feed or an email (where nothing
    resolves a relative URL). `page_url` is the issue's page: a bare `#fragment` (footnotes, heading links)
    and a path that climbs out of content/ are resolved against it (see the rule above)."""
    if url.startswith("#"):
        return page_url + url
    if url.startswith("//"):
        return urljoin(site_url, url)
    target = site_path(url, base, pages)
    if target is not None:
        return absolute_url(site_url, target)
    if is_relative(url):
        return urljoin(page_url, quote(url, safe=_SAFE))
    return url


def absolutize(fragment: str, base: PurePosixPath, pages: Mapping[str, str], site_url: str, page_url: str) -> str:
    """Rewrite relative URLs to absolute ones (see `absolute`), for feeds and emails."""
    return rewrite_urls(fragment, lambda url: absolute(url, base, pages, site_url, page_url))


# ---- finding the relative URLs of an issue (for `check`, and for images that must exist) ----

# Cheap tests that most issues (every URL absolute) fail, so that only the few others are parsed: a Markdown
# link or image destination, a link reference definition, or a raw-HTML URL attribute whose URL has no scheme.
# Each pattern starts with a literal (which the regex engine searches for fast), and runs only when a substring
# test says it may match: a single pattern with alternatives is tried at every position, 30x slower.
_NO_SCHEME = r"(?![A-Za-z][A-Za-z0-9+.-]*:|//|#)"
_LINK = re.compile(rf"\]\([ \t\n]*<?{_NO_SCHEME}[^\s)]")
_IMAGE = re.compile(rf"!\[(?:[^\[\]]|\[[^\[\]]*\])*\]\([ \t\n]*<?{_NO_SCHEME}[^\s)]")  # alt text: [] 1 deep
_DEFINITION = re.compile(rf"\n {{0,3}}\[(?!\^)[^\]\n]+\]:[ \t]*\n?[ \t]*<?{_NO_SCHEME}\S")
_RAW_ATTRS = {"href": re.compile(rf"href[ \t\n]*=[ \t\n]*[\"']?{_NO_SCHEME}"),
              "src": re.compile(rf"src[ \t\n]*=[ \t\n]*[\"']?{_NO_SCHEME}"),
              "poster": re.compile(rf"poster[ \t\n]*=[ \t\n]*[\"']?{_NO_SCHEME}")}


def _may_have_relative(source: str, embeds_only: bool) -> bool:
    if (_IMAGE if embeds_only else _LINK).search(source):
        return True
    if "]:" in source and _DEFINITION.search("\n" + source):  # a reference-style link or image may use it
        return True
    names = ("src", "poster") if embeds_only else ("href", "src", "poster")
    return any(name in source and _RAW_ATTRS[name].search(source) for name in names)


_RAW_URL_ATTR = re.compile(r'(?<=\s)(href|src|poster)="([^"]*)"')
EMBEDS = ("src", "poster")  # attributes whose URL is shown inside the page: an image, a video


def relative_references(source: str, *, embeds_only: bool = False) -> list[tuple[str, str, int | None]]:
    """(attribute, URL, line) of each relative URL in Markdown `source`: a link gives "href", an image "src",
    raw HTML its attribute's name; the line is 1-based within `source` (None if unknown). The URL is as the
    HTML has it (Markdown percent-encodes it). `embeds_only`: images and other embedded media only."""
    if not _may_have_relative(source, embeds_only):
        return []
    encoded = source.encode("utf-8", "surrogatepass")

    def line_of(node: markdown_it_pyrs.Node) -> int | None:
        srcmap = getattr(node, "srcmap", None)
        return encoded.count(b"\n", 0, srcmap[0]) + 1 if srcmap else None

    found: list[tuple[str, str, int | None]] = []
    stack = [tree(source)]
    while stack:  # without recursion: emphasis may nest thousands of levels deep
        node = stack.pop()
        name = node.name
        if name in ("link", "image"):
            attr = "src" if name == "image" else "href"
            url = node.meta.get("url", "")
            if is_relative(url) and (attr in EMBEDS or not embeds_only):
                found.append((attr, url, line_of(node)))
        elif name in ("html_inline", "html_block"):
            raw = node.meta.get("content", "")
            start = line_of(node)
            for match in _RAW_URL_ATTR.finditer(raw):
                attr, url = match.group(1), html.unescape(match.group(2))
                if is_relative(url) and (attr in EMBEDS or not embeds_only):
                    found.append((attr, url, None if start is None else start + raw.count("\n", 0, match.start())))
        stack.extend(reversed(node.children))
    return found


# ---- plain text (the text/plain part of an email) ----

TEXT_WIDTH = 72
# East Asian wide and full-width ranges (what unicodedata.east_asian_width calls W and F), as a regex class so
# that tokenizing runs in C.
_WIDE = ("\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3"
         "\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\U0001f300-\U0001f64f\U0001f900-\U0001f9ff"
         "\U00020000-\U0003fffd")
_TOKEN = re.compile(
    rf"(?P<url>(?:https?|ftp|mailto):[^\s<>\"]+)|(?P<space>\s+)|(?P<wide>[{_WIDE}])|(?P<word>[^\s{_WIDE}]+)"
)
# Characters a line must not start with (closing punctuation), per the usual CJK line-breaking rules.
_NO_LINE_START = set("，。、；：！？）」』】》〉’”…—,.;:!?)]}%")


def display_width(text: str) -> int:
    return sum(2 if is_wide(c) else 1 for c in text)


def wrap(text: str, width: int = TEXT_WIDTH, indent: str = "", first: str | None = None) -> list[str]:
    """Wrap text to `width` display columns: CJK may break between any two characters, Latin words and URLs
    never break (a URL longer than the line gets a line of its own), and no line starts with closing
    punctuation."""
    first = indent if first is None else first
    start = display_width(first)
    if start + 2 * len(text) <= width:  # fits even if every character is wide
        return [(first + " ".join(text.split())).rstrip()]
    lines: list[str] = []
    line, used, line_start = first, start, start
    pending_space = False
    for match in _TOKEN.finditer(text):
        kind, token = match.lastgroup, match.group(0)
        if kind == "space":
            pending_space = used > line_start
            continue
        w = 2 if kind == "wide" else (len(token) if token.isascii() else display_width(token))
        space = 1 if pending_space else 0
        if used + space + w > width and used > line_start and token[0] not in _NO_LINE_START:
            lines.append(line.rstrip())
            line, used, space = indent, display_width(indent), 0
            line_start = used
        if space:
            line += " "
            used += 1
        line += token
        used += w
        pending_space = False
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


_BLOCKS = {"paragraph", "bullet_list", "ordered_list", "blockquote", "fence", "code_block", "table", "heading",
           "lheading", "hr", "html_block"}


Group = list[markdown_it_pyrs.Node] | markdown_it_pyrs.Node


def _item_groups(children: Sequence[markdown_it_pyrs.Node]) -> list[Group]:
    """A list item's children: runs of inline nodes (tight items hold them directly) and paragraphs as lists
    of inline nodes, other blocks as they are."""
    groups: list[Group] = []
    for child in children:
        if child.name == "paragraph":
            groups.append(list(child.children))
        elif child.name in _BLOCKS:
            groups.append(child)
        elif groups and isinstance(groups[-1], list):
            groups[-1].append(child)
        else:
            groups.append([child])
    return groups


_SUMMARY = re.compile(r"<summary\b[^>]*>(.*?)</summary\s*>", re.S | re.I)
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def footnote_mark(number: int) -> str:
    """A footnote's number in plain text, in superscript digits (²): the HTML's number, set apart from the [n]
    of a link."""
    return str(number).translate(_SUPERSCRIPT)


class TextRenderer:
    """Markdown tree to readable plain text: links as numbered references [1] listed at the end."""

    def __init__(self, resolve: Callable[[str], str], width: int = TEXT_WIDTH) -> None:
        self.resolve = resolve  # URL as written -> absolute URL
        self.width = width
        self.links: list[str] = []
        self.footnotes: list[tuple[int, str]] = []  # (number, text): numbered as the HTML numbers them

    def render(self, source: str) -> str:
        blocks = self.blocks(tree(source).children, "")
        text = "\n\n".join(b for b in blocks if b)
        if self.footnotes:
            notes = [f"{footnote_mark(n)} {note}" for n, note in sorted(self.footnotes)]
            text += "\n\n" + "-" * 20 + "\n" + "\n".join(notes)
        if self.links:
            refs = [f"[{n}] {url}" for n, url in enumerate(self.links, 1)]
            text += "\n\n" + "\n".join(refs)
        return text.rstrip() + "\n"

    def ref(self, url: str) -> int:
        url = self.resolve(url)
        if url in self.links:
            return self.links.index(url) + 1
        self.links.append(url)
        return len(self.links)

    def inline(self, node: markdown_it_pyrs.Node, depth: int = 0) -> str:
        if depth > _FLAT_BELOW:
            return flat_text(node)
        depth += 1
        out: list[str] = []
        for child in node.children:
            name = child.name
            if name in ("text", "text_special"):
                out.append(child.meta.get("content", ""))
            elif name in ("softbreak", "hardbreak"):
                out.append("\n")
            elif name == "code_inline":
                out.append(self.inline(child, depth) or child.meta.get("content", ""))
            elif name in ("linkify", "autolink"):
                out.append(self.resolve(child.meta.get("url", "")))
            elif name == "link":
                label = self.inline(child, depth)
                url = child.meta.get("url", "")
                if url.startswith("#"):
                    out.append(label)  # a jump inside the issue means nothing in plain text
                elif label.strip() == self.resolve(url):
                    out.append(label)
                else:
                    out.append(f"{label} [{self.ref(url)}]")
            elif name == "image":
                alt = self.inline(child, depth).strip() or "image"
                out.append(f"[{alt}] [{self.ref(child.meta.get('url', ''))}]")
            elif name == "footnote_ref":
                out.append(footnote_mark(child.meta.get("def_id", 0)))  # the HTML's [n], and not a link's [n]
            elif name == "strikethrough":
                out.append(f"~~{self.inline(child, depth)}~~")  # struck-out text must not read as if it stood
            elif name in ("html_inline", "heading_anchor", "footnote_ref_anchor"):
                continue
            else:
                out.append(self.inline(child, depth))
        return "".join(out)

    def _flow(self, node: markdown_it_pyrs.Node) -> str:
        """Inline text with soft breaks joined as a space (or nothing between CJK characters)."""
        parts = self.inline(node).split("\n")
        text = parts[0]
        for part in parts[1:]:
            text += _join_break(text, part) + part
        return text

    def blocks(self, nodes: Sequence[markdown_it_pyrs.Node], indent: str) -> list[str]:
        return [self.block(node, indent) for node in nodes]

    def block(self, node: markdown_it_pyrs.Node, indent: str) -> str:
        name = node.name
        width = self.width
        if name == "paragraph":
            return "\n".join(wrap(self._flow(node), width, indent))
        if name in ("heading", "lheading"):
            text = " ".join(self._flow(node).split())
            level = node.meta.get("level", 1)
            if level <= 2:
                rule = ("=" if level == 1 else "-") * min(display_width(text), width)
                return "\n".join(wrap(text, width, indent)) + "\n" + indent + rule
            return "\n".join(wrap("#" * level + " " + text, width, indent))
        if name in ("bullet_list", "ordered_list"):
            return self.list(node, indent)
        if name == "blockquote":
            inner = "\n\n".join(b for b in self.blocks(node.children, "") if b)
            return "\n".join((indent + "> " + line).rstrip() for line in inner.split("\n"))
        if name in ("fence", "code_block"):
            code = node.meta.get("content", "").rstrip("\n")
            return "\n".join((indent + "    " + line).rstrip() for line in code.split("\n"))
        if name == "hr":
            return indent + "* * *"
        if name == "table":
            return self.table(node, indent)
        if name == "html_block":
            # Raw HTML shows nothing in text, except the visible label of a <details> block: its <summary>.
            summaries = [" ".join(html.unescape(_TAG.sub("", m)).split())
                         for m in _SUMMARY.findall(node.meta.get("content", ""))]
            return "\n\n".join("\n".join(wrap(t, width, indent)) for t in summaries if t)
        if name == "footnote_container":
            for definition in node.children:
                text = " ".join(b for b in self.blocks(definition.children, "") if b)
                self.footnotes.append((int(definition.meta.get("def_id", 0) or 0), text.replace("\n", " ")))
            return ""
        if node.children:
            return "\n\n".join(b for b in self.blocks(node.children, indent) if b)
        return ""

    def list(self, node: markdown_it_pyrs.Node, indent: str) -> str:
        items = []
        start = int(node.meta.get("start", 1) or 1)
        for n, item in enumerate(node.children):
            marker = f"{start + n}. " if node.name == "ordered_list" else "- "
            inner = indent + " " * len(marker)
            parts: list[str] = []
            for group in _item_groups(item.children):
                lead = (indent + marker) if not parts else inner
                if isinstance(group, list):  # a tight item's inline nodes, or a paragraph's
                    parts.append("\n".join(wrap(self._flow_nodes(group), self.width, inner, first=lead)))
                elif group.name in ("bullet_list", "ordered_list"):
                    if not parts:
                        parts.append(lead.rstrip())
                    parts.append(self.list(group, inner))
                else:
                    parts.append(self.block(group, inner))
            items.append("\n".join(parts) if parts else (indent + marker).rstrip())
        return "\n".join(items)

    def _flow_nodes(self, nodes: Sequence[markdown_it_pyrs.Node]) -> str:
        holder = markdown_it_pyrs.Node("inline")
        holder.children = list(nodes)
        return self._flow(holder)

    def table(self, node: markdown_it_pyrs.Node, indent: str) -> str:
        rows = []
        for section in node.children:
            for row in section.children:
                rows.append([" ".join(self._flow(cell).split()) for cell in row.children])
        lines = [indent + " | ".join(row) for row in rows]
        if len(lines) > 1:
            lines.insert(1, indent + "-" * min(max(display_width(line) for line in lines), self.width))
        return "\n".join(lines)


def to_text(source: str, resolve: Callable[[str], str], width: int = TEXT_WIDTH) -> str:
    """Markdown to plain text for email: wrapped for CJK, links as [n] references with the URLs at the end."""
    return TextRenderer(resolve, width).render(source)


# Where a `.md` link target can start: it ends at `.md` and runs back to one of the stops (whatever the syntax
# around it: inline, reference, autolink, raw HTML). Over-collecting costs nothing; missing one would serve a
# stale link.
_MD_END = re.compile(r"\.md(?![\w-])", re.IGNORECASE)
_TARGET_RUN = re.compile(r"[^ \t\r\n()<>\[\]\"'`|]*")  # what a target can hold: none of the stops
_TARGET_MAX = 512  # a longer "path" is no link target; bounds the work on long runs of CJK text without spaces


def md_link_targets(body: str) -> tuple[str, ...]:
    """Each relative `.md` path the body may link to (another issue's file), sorted. Found from each `.md`
    backwards, not by a pattern scanning forwards from every character, which is quadratic in a long run of
    Chinese text (no spaces to stop it). Absolute URLs (a GitHub README.md) go nowhere on the site: left out."""
    tokens = set()
    for match in _MD_END.finditer(body):
        end = match.start()
        before = body[max(0, end - _TARGET_MAX):end][::-1]
        token = body[end - _TARGET_RUN.match(before).end():match.end()]  # type: ignore[union-attr]
        if is_relative(token):
            tokens.add(token)
    return tuple(sorted(tokens))
