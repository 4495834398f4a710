"""`publisher import substack`: the export zip (posts.csv, posts/<id>.<slug>.html, the email list CSVs)."""

from __future__ import annotations

from pathlib import Path

from ..subscribers import Subscriber
from . import archive
from .writer import Imported


def read_subscribers(path: Path) -> Imported:
    imported = Imported("substack")
    for name, line, row in archive.tables(path, "email_disabled", "subscriber list",
                                  "use the zip from Substack's Settings → Exports, or the email list CSV in it"):
        disabled = archive.flag(imported, name, line, row, "email_disabled")
        if disabled is not None:
            imported.add(Subscriber(row.get("email", ""), "", "unsubscribed" if disabled else "active"),
                         f"{name}:{line}", f"email_disabled={str(disabled).lower()}")
    return imported
