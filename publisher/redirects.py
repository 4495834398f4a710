"""Old addresses of an issue (frontmatter `aliases:`, as Hugo has them; `publisher import --redirects` writes them
from the old URLs): one small page per old path that sends the reader on (meta refresh, canonical link, noindex:
search engines treat it as a move), and `_redirects`, the same map as one file (`/old/ /issues/new/ 301`), which
Netlify and Cloudflare Pages apply as real redirects. `deploy` to S3 gives each of these pages the
`WebsiteRedirectLocation` of its target, so an S3 website endpoint answers 301 too.

An alias is a site path, written by the author or taken from an import: it must stay inside the site (no `..`, no
scheme or host, no control characters), and it may not claim a path the site already has (the build says which)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from posixpath import normpath
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

if TYPE_CHECKING:
    from .config import Config
    from .content import Issue

MAP_FILE = "_redirects"
_BAD = re.compile(r"[\x00-\x20\x7f\\<>\"'`|#?%]")
MAX_ALIASES = 50


def site_path(value: str) -> str:
    """An old address (`/p/old-post`, `/2019/05/a.html`, or a whole URL whose path is taken) as the output file
    it becomes (`p/old-post/index.html`, `2019/05/a.html`). Raises ValueError with the reason."""
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme or parts.netloc:
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"{text!r} is not a path or an http(s) URL")
        text = parts.path
    elif parts.query or parts.fragment:
        raise ValueError(f"{text!r} has a query or fragment; an alias is a path")
    path = unquote(text.split("?", 1)[0].split("#", 1)[0])
    if _BAD.search(path):
        raise ValueError(f"{value!r} has spaces, control characters or characters that are not safe in a path")
    trail = path.endswith("/")
    clean = normpath("/" + path.lstrip("/")).lstrip("/")
    if not clean or clean == "." or any(seg in ("", ".", "..") for seg in clean.split("/")) or \
            clean.startswith("..") or path.split("/").count("..") or len(clean) > 512:
        raise ValueError(f"{value!r} is not a path inside the site")
    if trail or not re.search(r"\.html?$", clean, re.I):
        clean += "/index.html"
    return clean


def url_of(path: str) -> str:
    """The address a reader types for an output file, percent-encoded: `p/old/index.html` -> `/p/old/`."""
    return "/" + quote(path[: -len("index.html")] if path.endswith("index.html") else path)


def page(config: Config, issue: Issue) -> bytes:
    target = escape(config.site.url.rstrip("/") + "/" + issue.url_path, quote=True)
    title = escape(issue.title)
    return (f'<!doctype html>\n<html lang="{escape(config.site.language, quote=True)}">\n<head>\n'
            f'<meta charset="utf-8">\n<title>{title}</title>\n<link rel="canonical" href="{target}">\n'
            f'<meta name="robots" content="noindex">\n<meta http-equiv="refresh" content="0; url={target}">\n'
            f'</head>\n<body>\n<p><a href="{target}">{title}</a></p>\n</body>\n</html>\n').encode()


def pages(config: Config, issues: Sequence[Issue]) -> Iterable[tuple[str, bytes, str]]:
    """(output path, page, producer) of every alias of the public `issues`; the producer names the issue's file
    (two outputs claiming one path is an error that names both)."""
    for issue in issues:
        for alias in getattr(issue, "aliases", ()):
            yield alias, page(config, issue), f"the aliases of content/{issue.path}"


def redirect_map(config: Config, issues: Sequence[Issue]) -> bytes:
    """`_redirects`: one `old new 301` line per alias (the Netlify / Cloudflare Pages format)."""
    lines = [f"{url_of(alias)} /{issue.url_path} 301" for issue in issues for alias in getattr(issue, "aliases", ())]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def read_map(data: bytes) -> Mapping[str, str]:
    """`_redirects` back as {output path: target URL path} (deploy gives those objects a redirect location)."""
    targets = {}
    for line in data.decode("utf-8", "replace").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].startswith("/") and fields[1].startswith("/"):
            old = unquote(fields[0][1:])
            targets[old + "index.html" if old.endswith("/") or not old else old] = fields[1]
    return targets
