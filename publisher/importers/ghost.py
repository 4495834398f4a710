"""`publisher import ghost`: the JSON content export and the members CSV (Admin → Members → Export)."""

from __future__ import annotations

from pathlib import Path

from ..subscribers import Subscriber
from . import archive
from .writer import Imported


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
