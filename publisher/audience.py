"""Segments: which subscribers an issue goes to, chosen by their tags.

The grammar (frontmatter `audience:`, and `send --segment EXPR` as YAML flow text), kept small:

    audience: paid                                   # one tag
    audience: [paid, vip]                            # any of these tags
    audience: {any: [zh, en], all: [x], not: [paused]}

In the mapping form each key is optional but at least one is given, and each is a non-empty list of tags:
`any` = the subscriber has at least one of them, `all` = every one of them, `not` = none of them. Keys combine
with AND. Without an audience, every active subscriber gets the issue.

A tag is matched exactly against the subscriber's stored tag strings (any script: `audience: [中文]`), after
the same clean-up the stores apply to tags when they are written (Unicode NFKC, trimmed), so a tag written in
the frontmatter the way it was written at sign-up matches. There is no case folding and no prefix matching.

One model, two evaluations that must agree (tests/test_segments.py proves it): `Audience.matches` for any
store's subscribers in Python, and `Audience.sql` for the SQLite store, where the tags column is a JSON array
read with `json_each`, so that a segment of 100,000 subscribers is chosen inside SQLite.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from .errors import PublisherError

KEYS = ("any", "all", "not")
HINT = "e.g. audience: paid, audience: [paid, vip] or audience: {any: [zh, en], all: [paid], not: [paused]}"
TAG_MAX = 40  # as subscribers.TAG_MAX: a longer tag cannot be stored, so it could never match
TAGS_MAX = 50


class AudienceError(ValueError):
    """What is wrong with an audience value; the caller names the file and field."""

    def __init__(self, message: str, hint: str = HINT) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class Audience:
    any: tuple[str, ...] = ()
    all: tuple[str, ...] = ()
    none: tuple[str, ...] = ()  # the `not` key (a Python keyword)

    def matches(self, tags: Iterable[object]) -> bool:
        """Whether a subscriber with `tags` is in the audience. The one matcher of the Python path."""
        held = {t for t in tags if isinstance(t, str)}  # a non-text tag (a tampered record) matches nothing
        if self.any and held.isdisjoint(self.any):
            return False
        if not held.issuperset(self.all):
            return False
        return held.isdisjoint(self.none)

    def sql(self, column: str = "subscribers.tags") -> tuple[str, list[str]]:
        """A WHERE condition (and its arguments) over the JSON array of tags in `column`, true exactly when
        `matches` is. `type = 'text'` leaves out non-string items, as `matches` does."""
        parts: list[str] = []
        args: list[str] = []

        def members(tags: tuple[str, ...]) -> str:
            args.extend(tags)
            marks = ", ".join("?" * len(tags))
            return f"FROM json_each({column}) WHERE type = 'text' AND value IN ({marks})"

        if self.any:
            parts.append(f"EXISTS (SELECT 1 {members(self.any)})")
        if self.all:
            parts.append(f"(SELECT count(DISTINCT value) {members(self.all)}) = {len(self.all)}")
        if self.none:
            parts.append(f"NOT EXISTS (SELECT 1 {members(self.none)})")
        return " AND ".join(parts) or "1", args

    def describe(self) -> str:
        """For people: "any of zh, en, all of paid, none of paused"."""
        words = []
        for label, tags in (("any of", self.any), ("all of", self.all), ("none of", self.none)):
            if tags:
                words.append(f"{label} {', '.join(tags)}")
        return ", ".join(words)

    def key(self) -> str:
        """The canonical text of the audience: equal for equal audiences (order and duplicates do not count),
        stored with a send and on the Issue (a plain string keeps the issue cacheable)."""
        data = {k: sorted(v) for k, v in zip(KEYS, (self.any, self.all, self.none), strict=True) if v}
        return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_key(cls, text: str) -> Audience:
        data = json.loads(text)
        return cls(*(tuple(data.get(k, ())) for k in KEYS))


EVERYONE = "everyone"  # the description of no audience


def describe(audience: Audience | None) -> str:
    return audience.describe() if audience is not None else EVERYONE


def key_of(audience: Audience | None) -> str:
    return audience.key() if audience is not None else ""


def _tag(value: Any) -> str:
    # Numbers are tags too (`audience: [2026]`), as in the `tags:` key; true/false and structures are not.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise AudienceError(f"every tag must be text, got {_shown(value)}")
    tag = unicodedata.normalize("NFKC", str(value)).strip()
    if not tag:
        raise AudienceError("a tag is empty")
    if not tag.isprintable():
        raise AudienceError(f"the tag {_shown(tag)} contains control characters")
    if len(tag) > TAG_MAX:
        raise AudienceError(f"the tag {_shown(tag)} is longer than {TAG_MAX} characters, so no subscriber has it")
    return tag


def _tags(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise AudienceError(f"{where}must be a list of tags, got {type(value).__name__} {_shown(value)}")
    if not value:
        raise AudienceError(f"{where}is an empty list", "leave the key out, or list at least one tag")
    tags = tuple(dict.fromkeys(_tag(v) for v in value))
    if len(tags) > TAGS_MAX:
        raise AudienceError(f"{where}lists {len(tags)} tags; at most {TAGS_MAX} are allowed")
    return tags


def parse_audience(value: Any) -> Audience:
    """An audience from its YAML value; raises AudienceError."""
    if isinstance(value, list):
        return Audience(any=_tags(value, ""))
    if isinstance(value, dict):
        if not value:
            raise AudienceError("is an empty mapping")
        unknown = [str(k) for k in value if k not in KEYS]
        if unknown:
            raise AudienceError(f"unknown key {_shown(unknown[0])}", "the keys are any, all and not, e.g. "
                                "audience: {any: [zh, en], not: [paused]}")
        found = {k: _tags(v, f"`{k}` ") for k, v in value.items()}
        audience = Audience(found.get("any", ()), found.get("all", ()), found.get("not", ()))
        clash = set(audience.all) & set(audience.none) or (set(audience.any) <= set(audience.none)
                                                           if audience.any else set())
        if clash:
            raise AudienceError("selects no one: a tag is both required and excluded",
                                "a tag in `not` cannot also be in `all`, nor every tag of `any`")
        return audience
    if value is None:
        raise AudienceError("is empty", HINT)
    return Audience(any=(_tag(value),))


SEGMENT_HINT = "e.g. --segment paid, --segment '[paid, vip]' or --segment '{any: [zh, en], not: [paused]}'"


def _segment_hint(hint: str) -> str:
    return SEGMENT_HINT if hint == HINT else hint


def parse_segment(text: str) -> Audience:
    """`send --segment EXPR`: the same grammar, written as YAML flow text (`paid`, `[paid, vip]`,
    `{any: [zh], not: [paused]}`); raises PublisherError naming --segment."""
    if not isinstance(text, str) or not text.strip() or len(text) > 2000 or not text.isprintable():
        raise PublisherError("is empty, too long, or has control characters", field="--segment", hint=SEGMENT_HINT)
    try:
        # SafeLoader builds plain values only; a flow expression needs no aliases, so none are allowed.
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise AudienceError("uses a YAML alias")
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PublisherError(f"is not valid YAML flow text: {str(exc).splitlines()[0]}", field="--segment",
                             hint="quote the whole expression for the shell, e.g. --segment '{any: [zh]}'") from None
    except AudienceError as exc:
        raise PublisherError(str(exc), field="--segment", hint=_segment_hint(exc.hint)) from None
    try:
        return parse_audience(value)
    except AudienceError as exc:
        raise PublisherError(str(exc), field="--segment", hint=_segment_hint(exc.hint)) from None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"
