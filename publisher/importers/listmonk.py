"""`publisher import listmonk`: the subscribers CSV (opt-in per list is not in it: see `read_subscribers`)."""

from __future__ import annotations

from pathlib import Path

from ..errors import Problem, PublisherError
from ..subscribers import Subscriber
from . import archive
from .writer import Imported

_LISTMONK = {"confirmed": "active", "unconfirmed": "unconfirmed", "unsubscribed": "unsubscribed"}


def read_subscribers(path: Path, subscription_status: str | None = None) -> Imported:
    """`subscription_status`: the filter the export was made with (listmonk ≥ 4: confirmed, unconfirmed or
    unsubscribed), which the file cannot show. Without it, enabled subscribers come in unconfirmed."""
    if subscription_status is not None and subscription_status not in _LISTMONK:
        raise PublisherError(f"--subscription-status must be one of {', '.join(_LISTMONK)}",
                             field="subscription_status")
    imported = Imported("listmonk")
    enabled = _LISTMONK[subscription_status] if subscription_status else "unconfirmed"
    if subscription_status is None:
        imported.notes.append("a listmonk export does not say who confirmed which list: enabled subscribers come "
                              "in unconfirmed (export each list with subscription_status=confirmed and pass "
                              "--subscription-status confirmed to import them active)")
    for name, data in archive.members(path):
        rows = list(archive.rows(name, data))
        if rows:
            archive.need(name, rows[0][1].keys(), ["email", "status"], "listmonk")
        for line, row in rows:
            state = row.get("status", "").lower()
            if state == "enabled":
                status = enabled
            elif state in ("disabled", "blocklisted"):
                status = "unsubscribed"
            else:
                imported.problems.append(Problem(f"unknown status {state!r} (listmonk has enabled, disabled, "
                                                 "blocklisted)", file=name, line=line, field="status"))
                continue
            imported.add(Subscriber(row.get("email", ""), row.get("name", ""), status), f"{name}:{line}", state)
    return imported
