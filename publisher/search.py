"""Static search: a Pagefind index of the issue pages (`pagefind/`) and the search page (`search/index.html`),
made as part of the output tree like every other file (the build swaps it in whole; nothing here writes dist/).

What is indexed: the web page of each public issue (`issues/<slug>/index.html`), its article only (the site's
header, footer and navigation are left out). Never the emails' web copies (`email.html`), the list, tag, year and
404 pages, a draft (a preview build shows drafts, marked `badge-draft`), or an issue that is not on the web.

When: the index is one value of the render cache, keyed on the render keys of the pages it covers (and the
Pagefind version, the language and the theme and settings, which every key holds): a build in which no issue
page changed reuses the last index and never starts Pagefind. Pagefind cannot add to or take from an index, so
a changed page indexes the site again (3 to 7 s at 1,000 issues on 2 cores, 4.6 s of CPU: see the README).

How: the Pagefind binary of the `pagefind[extended]` package (its extended build segments Chinese and Japanese)
run once over a private temporary copy of the pages. Not its Python API: it reads each reply after a 0.1 s
pause (measured: 2.1 s for 20 pages, so well over a minute and a half for 1,000), and its stream reader is
limited to 2 MiB while the whole index comes back as one reply. The files it writes are named by content
hashes, so the same pages give the same bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import struct
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import PublisherError

if TYPE_CHECKING:
    from .build import Site
    from .config import Config
    from .content import Issue
    from .themes import Theme

log = logging.getLogger(__name__)

BUNDLE = "pagefind/"  # the index and Pagefind's UI, at the site's root
SEARCH_PAGE = "search/index.html"
SEARCH_TEMPLATE = "web/search.html"
ISSUE_PAGE = re.compile(r"issues/[^/]+/index\.html")
# Never indexed, whatever the theme marks with data-pagefind-body: the site's chrome, links to other issues, the
# draft/scheduled badges, forms (the subscribe form).
EXCLUDE = ("header.site-header", "footer.site-footer", "nav", ".issue-nav", ".badge", "form", "script", "style")
DRAFT_MARK = re.compile(rb"""class=["'][^"']*\bbadge-draft\b""")  # the badge templates put on a draft
# Pagefind's other UIs (component, modular): 240 KB the default theme does not load.
LEFT_OUT = re.compile(r"pagefind-(component|modular)-ui\.(js|css)")
# Pagefind's code (the same for every index of one version and language), kept apart from the index in the cache
SAME_FOR_ALL = re.compile(r"pagefind[\w-]*\.(js|css)|wasm\.[\w-]+\.pagefind")
_ONE_WORD = b"<!DOCTYPE html><html><body><p>publisher</p></body></html>"  # Pagefind needs a word to run at all
TIMEOUT = 1800.0  # seconds: far above the few seconds of 1,000 issues; only a hung binary reaches it

runs = 0  # times Pagefind ran in this process (tests read it: a build with no page changed adds none)
_last: dict[str, dict[str, bytes]] = {}  # newsletter folder -> the last index made (see `refresh`); one folder

Memo = Callable[[object, Callable[[], bytes]], object]


def index(config: Config, site: Site, memo: Memo | None = None, issues: Sequence[Issue] | None = None, *,
          theme: Theme | None = None, refresh: bool = True) -> dict[str, bytes | object]:
    """The files search adds to the site: Pagefind's bundle under `pagefind/`, and the search page.

    `issues` (optional) are the issues the build shows: with them, drafts and issues not on the web are left
    out by their flags; without them, by the draft badge on their page. `refresh=False` (the preview, while
    editing) returns the last index made for this newsletter, stale as it may be, and indexes only if there
    is none yet."""
    root = str(config.root)
    if not refresh and root in _last:
        files: dict[str, bytes | object] = dict(_last[root])
    else:
        bundle = _bundle(config, site, memo, issues)
        _last.clear()  # a preview serves one newsletter: never more than one index held
        _last[root] = bundle
        files = dict(bundle)
    files[SEARCH_PAGE] = search_page(config, memo, theme)
    return files


def _bundle(config: Config, site: Site, memo: Memo | None, issues: Sequence[Issue] | None) -> dict[str, bytes]:
    hidden = set() if issues is None else {i.url_path + "index.html" for i in issues if not on_the_web(i)}
    pages = [path for path in sorted(site.files) if ISSUE_PAGE.fullmatch(path) and path not in hidden]
    language = config.site.language.lower()
    version = pagefind_version()
    made: dict[str, bytes] = {}  # Pagefind's own files, from a run of this build

    def make_index() -> bytes:
        chosen = {}
        for path in pages:
            data = site.data(path)
            data = data if isinstance(data, bytes) else Path(data).read_bytes()
            if DRAFT_MARK.search(data) is None:
                chosen[path] = data
        files = run_pagefind(chosen, language)
        made.update({name: data for name, data in files.items() if SAME_FOR_ALL.fullmatch(name)})
        return pack({name: data for name, data in files.items() if not SAME_FOR_ALL.fullmatch(name)})

    def make_code() -> bytes:  # what every index of this version shares: cached once, not with each index
        return pack(made or {name: data for name, data in run_pagefind({"index.html": _ONE_WORD}, language).items()
                             if SAME_FOR_ALL.fullmatch(name)})

    inputs = ("pagefind", version, language, EXCLUDE, [(path, _digest(site.files[path])) for path in pages])
    files = unpack(_value(site, memo, inputs, make_index))
    if files:  # no bundle without a page (see run_pagefind)
        files.update(unpack(_value(site, memo, ("pagefind code", version, language), make_code)))
    return {BUNDLE + name: data for name, data in sorted(files.items())}


def _value(site: Site, memo: Memo | None, inputs: object, make: Callable[[], bytes]) -> bytes:
    value = make() if memo is None else memo(inputs, make)
    return value if isinstance(value, bytes) else site.resolve(value)  # type: ignore[operator,no-any-return]


def on_the_web(issue: Issue) -> bool:
    """Whether an issue's page is public: not a draft, not an email-only issue."""
    return not issue.draft and not getattr(issue, "send_only", False)


def _digest(source: object) -> str:
    """What identifies a page's bytes without reading them: its render key when the cache holds it."""
    key = getattr(source, "key", None)
    if isinstance(key, str):
        return "key:" + key
    data = source if isinstance(source, bytes) else Path(source).read_bytes()  # type: ignore[arg-type]
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pagefind_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("pagefind", "pagefind_bin_extended", "pagefind_bin"):
        with contextlib.suppress(PackageNotFoundError):
            found.append(f"{name} {version(name)}")
    return ", ".join(found) or f"external {os.environ.get('PAGEFIND_BINARY_PATH', 'pagefind')}"


def executable() -> Path:
    try:
        from pagefind.service import get_executable
    except ImportError:
        found = None
    else:
        found = get_executable()
    if found is None:
        raise PublisherError("search is enabled but the Pagefind binary was not found",
                             hint="pip install 'pagefind[extended]' (its extended build segments Chinese and "
                                  "Japanese), or set enabled = false under [search] in publisher.toml")
    return found


def run_pagefind(pages: Mapping[str, bytes], language: str) -> dict[str, bytes]:
    """Pagefind's bundle for `pages` (site path -> HTML), as bundle path -> bytes. No pages, no bundle (Pagefind
    refuses to make an index without a word in it): the search page then says there is nothing to search."""
    global runs
    if not pages:
        return {}
    runs += 1
    binary = executable()
    # Pagefind reads pagefind.toml/yml/json from its working folder and PAGEFIND_* from the environment: it runs
    # in a folder of its own, with only the settings given here.
    env = {name: value for name, value in os.environ.items() if not name.startswith("PAGEFIND_")}
    with tempfile.TemporaryDirectory(prefix="publisher-search-") as tmp:
        work = Path(tmp)
        for path, data in pages.items():
            target = work / "site" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        command = [str(binary), "--site", "site", "--output-path", "bundle", "--force-language", language,
                   "--exclude-selectors", ", ".join(EXCLUDE), "--quiet"]
        try:
            done = subprocess.run(command, cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PublisherError(f"Pagefind could not index the site: {exc}",
                                 hint="or set enabled = false under [search] in publisher.toml") from None
        said = (done.stdout + done.stderr).decode("utf-8", "replace").strip()
        if done.returncode != 0:
            raise PublisherError(f"Pagefind could not index the site (exit status {done.returncode}): "
                                 f"{said[-2000:]}", hint="or set enabled = false under [search] in publisher.toml")
        for line in said.splitlines():
            if line.strip() and "stemming" not in line and "Search will still work" not in line:
                log.info("pagefind: %s", line.strip())
        bundle = work / "bundle"
        return {path.relative_to(bundle).as_posix(): path.read_bytes()
                for path in sorted(bundle.rglob("*"))
                if path.is_file() and not LEFT_OUT.fullmatch(path.name)}


# ---- the bundle as one cache value: (path length, path, data length, data) for each file ----

_SIZES = struct.Struct("<IQ")


def pack(files: Mapping[str, bytes]) -> bytes:
    parts = []
    for path in sorted(files):
        name = path.encode("utf-8")
        parts += [_SIZES.pack(len(name), len(files[path])), name, files[path]]
    return b"".join(parts)


def unpack(blob: bytes) -> dict[str, bytes]:
    files, offset, view = {}, 0, memoryview(blob)
    while offset < len(view):
        name_size, size = _SIZES.unpack_from(view, offset)
        offset += _SIZES.size
        name = bytes(view[offset:offset + name_size]).decode("utf-8")
        offset += name_size
        files[name] = bytes(view[offset:offset + size])
        offset += size
        if offset > len(view) or not name or name.startswith("/") or ".." in name.split("/"):
            raise ValueError("a damaged search bundle")
    return files


# ---- the search page ----


def search_page(config: Config, memo: Memo | None = None, theme: Theme | None = None) -> object:
    """`search/index.html`: the theme's search.html (the Pagefind UI, which runs the query of ?q=)."""

    def make() -> bytes:
        from .site import PageRenderer, feed_links
        from .themes import load_theme

        renderer = PageRenderer(config, theme or load_theme(config), [])
        renderer.site = {**renderer.site, "search": True}
        return renderer._page(SEARCH_TEMPLATE, "../", "search/", feeds=feed_links(config))

    return make() if memo is None else memo(("search page", SEARCH_TEMPLATE), make)
