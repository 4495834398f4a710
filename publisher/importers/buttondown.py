"""`publisher import buttondown`: the export zip (emails.csv or emails.json, emails/<slug>.md, subscribers.csv)."""

from __future__ import annotations

from pathlib import Path

from ..errors import Problem
from ..subscribers import Subscriber
from . import archive
from .writer import Imported

# buttondown/openapi enums.json SubscriberType (see docs/import-formats.md): every value, mapped; an unknown one
# is refused (never guessed), as is "unpaid" (a paid-only newsletter's reader who never paid: not opted in to
# anything we would send).
_BUTTONDOWN = {"regular": "active", "premium": "active", "trialed": "active", "gifted": "active",
               "churning": "active", "paused": "active", "past_due": "active", "churned": "active",
               "upcoming": "active", "unactivated": "unconfirmed", "unsubscribed": "unsubscribed",
               "removed": "unsubscribed", "blocked": "unsubscribed", "spammy": "unsubscribed"}


def read_subscribers(path: Path) -> Imported:
    imported = Imported("buttondown")
    for name, line, row in archive.tables(path, "subscriber_type", "subscriber list",
                                  "use the export from Buttondown's Settings → Exports (subscribers)"):
        kind = row.get("subscriber_type", "").lower()
        if kind == "unpaid":
            imported.skipped["never paid for a paid-only newsletter (Buttondown unpaid)"] += 1
            continue
        status = _BUTTONDOWN.get(kind)
        if status is None:
            imported.problems.append(Problem(f"unknown subscriber_type {kind!r}", file=name, line=line,
                                             field="subscriber_type"))
            continue
        tags = tuple(t.strip() for t in row.get("tags", "").split(";") if t.strip())
        imported.add(Subscriber(row.get("email", ""), "", status, tags), f"{name}:{line}", kind)
    return imported
