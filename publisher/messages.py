"""The words around an issue (the "chrome": page titles, pager, badges, email footer, `serve` pages), in the
site's language, from one gettext catalogue per language.

The catalogues are PO files in the theme: `themes/default/messages/<language>.po` (en, zh-CN, zh-TW). A theme
overrides a string with a partial `themes/<name>/messages/<language>.po` holding only the entries it changes
(its non-empty entries win over the built-in ones), and adds a language with a file of a new name. The msgid
is the English text: a string missing from a catalogue shows in English.

`site.language` (BCP 47) picks the catalogue of the same language and script, Babel filling in the likely
script (zh-HK and zh-Hant read zh-TW, zh-SG and zh-Hans read zh-CN, any en-* reads en); a language with no
catalogue reads en, with a warning. Dates, numbers and lists are formatted by Babel for the site's own locale
when it shares the catalogue's language (en-GB: "24 November 2026"), else for the catalogue's.

Babel and Jinja are imported here only when a catalogue is loaded, that is when something is rendered.
"""

from __future__ import annotations

import functools
import gettext
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import builtin_theme_dir
from .errors import PublisherError, relpath

if TYPE_CHECKING:
    from babel import Locale

    from .themes import Theme

log = logging.getLogger(__name__)

FOLDER = "messages"
DEFAULT = "en"


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """Marks a msgid for extraction where it is defined; it is translated where it is shown."""
    return message


def _tag(name: str) -> str:
    return name.replace("_", "-")


def catalogue_files(dirs: Sequence[Path]) -> dict[str, list[Path]]:
    """Each catalogue name (a BCP 47 tag: "zh-CN") to its files, the built-in one first, overrides after."""
    found: dict[str, list[Path]] = {}
    for base in reversed(dirs):
        folder = base / FOLDER
        if folder.is_dir():
            for path in sorted(folder.glob("*.po")):
                if path.is_file():
                    found.setdefault(_tag(path.stem), []).append(path)
    return dict(sorted(found.items()))


def _locale(tag: str) -> Locale | None:
    from babel import Locale, UnknownLocaleError

    try:
        return Locale.parse(_tag(tag), sep="-")
    except (ValueError, TypeError, UnknownLocaleError):
        return None


def _script(locale: Locale) -> str:
    """The locale's script, or the likely one for its language and territory (CLDR's likely subtags)."""
    if locale.script:
        return str(locale.script)
    from babel.core import get_global

    likely = get_global("likely_subtags")
    for key in (f"{locale.language}_{locale.territory}" if locale.territory else "", locale.language):
        full = likely.get(key) if key else None
        if full:
            parts = full.split("_")
            if len(parts) > 1 and len(parts[1]) == 4:
                return parts[1]
    return ""


def choose(language: str, available: Iterable[str]) -> str | None:
    """The catalogue (of `available`) for `language`: same language and script; among several, the one of the
    same territory, then one with no territory, then the first by name. None when none fits."""
    wanted = _locale(language)
    if wanted is None:
        return None
    best: tuple[int, str] | None = None
    for name in sorted(available):
        have = _locale(name)
        if have is None or have.language != wanted.language or _script(have) != _script(wanted):
            continue
        rank = 0 if have.territory == wanted.territory else 1 if not have.territory else 2
        if best is None or rank < best[0]:
            best = (rank, name)
    return best[1] if best else None


@functools.lru_cache(maxsize=64)
def _warn_once(language: str, used: str, available: tuple[str, ...]) -> None:
    log.warning("site.language is %r but no message catalogue is for it (there are %s): the theme's words are in "
                "%s; add themes/<name>/messages/%s.po to translate them", language, ", ".join(available), used,
                language)


@dataclass(frozen=True)
class Messages:
    """The catalogue of one language: translations, and the locale dates and numbers are formatted for."""

    language: str  # site.language, as written
    catalogue: str  # the catalogue read: "zh-CN"
    locale: Locale
    translations: gettext.NullTranslations

    def gettext(self, message: str, **variables: object) -> str:
        text = self.translations.gettext(message)
        return text % variables if variables else text

    def ngettext(self, singular: str, plural: str, n: int, **variables: object) -> str:
        text = self.translations.ngettext(singular, plural, n)
        return text % {"num": self.format_number(n), **variables}

    def format_date(self, value: date | datetime) -> str:
        return _format_date(value.date() if isinstance(value, datetime) else value, str(self.locale))

    def format_number(self, value: int | float) -> str:
        from babel.numbers import format_decimal

        return str(format_decimal(value, locale=self.locale))

    def format_list(self, items: Sequence[str]) -> str:
        from babel.lists import format_list

        return str(format_list(list(items), locale=self.locale)) if items else ""


class _Translations(gettext.NullTranslations):
    """A catalogue's translations, for Jinja's i18n extension and for code: what `gettext.GNUTranslations` does
    with a compiled .mo file, straight from the parsed PO file (no compile step). A msgid it lacks, or leaves
    untranslated (or marked fuzzy), reads as itself: English."""

    def __init__(self, catalog: Any) -> None:
        super().__init__()
        self.table: dict[str, str | tuple[str, ...]] = {}
        self.plural: Callable[[int], int] = lambda n: int(n != 1)
        if catalog is None:
            return
        self.plural = gettext.c2py(catalog.plural_expr)
        for message in catalog:
            if not message.id or message.fuzzy:
                continue
            if isinstance(message.id, tuple | list):
                if all(message.string):
                    self.table[message.id[0]] = tuple(message.string)
            elif message.string:
                self.table[message.id] = message.string

    def gettext(self, message: str) -> str:
        found = self.table.get(message)
        return found if isinstance(found, str) else message

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        forms = self.table.get(msgid1)
        if isinstance(forms, tuple):
            index = self.plural(n)
            if 0 <= index < len(forms):
                return forms[index]
        return msgid1 if n == 1 else msgid2


@functools.lru_cache(maxsize=4096)
def _format_date(value: date, locale: str) -> str:
    from babel.dates import format_date

    return str(format_date(value, format="long", locale=locale))


def _read(path: Path, locale: str, root: Path | None) -> Any:
    from babel.messages.pofile import PoFileError, read_po

    try:
        with path.open("rb") as fh:
            return read_po(fh, locale=locale, ignore_obsolete=True, abort_invalid=True)
    except (PoFileError, UnicodeDecodeError, ValueError) as exc:
        shown = relpath(path, root) if root else path
        raise PublisherError(f"the message catalogue cannot be read: {exc}", file=shown,
                             hint="a gettext PO file: msgid \"English text\" then msgstr \"translation\"") from None


def load(language: str, dirs: Sequence[Path] | None = None, root: Path | None = None) -> Messages:
    """The messages for `language` from the theme folders `dirs` (the user's first, then the built-in theme).
    Read once per process while the files do not change (an edited catalogue is read again)."""
    dirs = tuple(dirs) if dirs is not None else (builtin_theme_dir(),)
    files = catalogue_files(dirs)
    name = choose(language, files)
    if name is None:
        name = DEFAULT
        _warn_once(language, name, tuple(files))
    stamps = []
    for path in files.get(name, ()):
        stat = path.stat()
        stamps.append((path, stat.st_mtime_ns, stat.st_size))
    return _load(language, name, tuple(stamps), root)


@functools.lru_cache(maxsize=32)
def _load(language: str, name: str, stamps: tuple[tuple[Path, int, int], ...], root: Path | None) -> Messages:
    chosen = _locale(name) or _locale(DEFAULT)
    assert chosen is not None
    catalog = None
    for path, _, _ in stamps:
        read = _read(path, str(chosen), root)
        if catalog is None:
            catalog = read
            continue
        for message in read:  # an override: its translated entries win
            string = message.string
            if message.id and (any(string) if isinstance(string, tuple | list) else string):
                catalog.delete(message.id, context=message.context)  # (`add` would keep the built-in string)
                catalog.add(message.id, string, flags=message.flags, context=message.context)
    translations = _Translations(catalog)
    own = _locale(language)
    same = own is not None and own.language == chosen.language and _script(own) == _script(chosen)
    return Messages(language, name, own if same and own is not None else chosen, translations)


def for_theme(theme: Theme, language: str) -> Messages:
    """The messages of `theme` for `language`, looked up once per theme (each build loads its theme anew)."""
    cache: dict[str, Messages] = theme.__dict__.setdefault("_publisher_messages", {})
    found = cache.get(language)
    if found is None:
        found = cache[language] = load(language, theme.dirs, theme.root)
    return found


def install(theme: Theme, language: str) -> Messages:
    """Make the theme's templates speak `language`: Jinja's i18n extension (`_()`, `gettext`, `ngettext`,
    `{% trans %}`, new style: `_("Page %(number)s", number=n)`) with this language's catalogue, and the filters
    `number`, `list` (and `date`) formatted for it. Call it before the first template is rendered."""
    messages = for_theme(theme, language)
    env = theme.env
    if getattr(env, "publisher_language", None) == language:
        return messages
    if "jinja2.ext.InternationalizationExtension" not in env.extensions:
        env.add_extension("jinja2.ext.i18n")
    env.install_gettext_translations(messages.translations, newstyle=True)  # type: ignore[attr-defined]
    env.filters["number"] = messages.format_number
    env.filters["list"] = messages.format_list
    env.filters["date_text"] = messages.format_date
    env.publisher_language = language  # type: ignore[attr-defined]
    return messages
