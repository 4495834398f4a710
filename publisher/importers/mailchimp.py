"""`publisher import mailchimp`: the audience export (a zip of one CSV per status; the status is in the file's name)."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import PublisherError
from ..subscribers import Subscriber
from . import archive
from .writer import Imported

_MAILCHIMP_FILES = {"subscribed": "active", "unsubscribed": "unsubscribed", "cleaned": "bounced",
                    "nonsubscribed": None}
_MAILCHIMP_NAME = re.compile(r"(?:^|/)(nonsubscribed|unsubscribed|subscribed|cleaned)_members_export_[^/]*\.csv$",
                             re.IGNORECASE)
_EMAIL_ALIASES = ("Email Address", "Email", "email", "E-mail", "email_address")


def read_subscribers(path: Path) -> Imported:
    imported = Imported("mailchimp")
    for name, data in archive.members(path):
        match = _MAILCHIMP_NAME.search(name)
        rows = list(archive.rows(name, data))
        columns = rows[0][1].keys() if rows else set()
        if match:
            kind = match.group(1).lower()
            status = _MAILCHIMP_FILES[kind]
        elif "UNSUB_TIME" in columns:
            kind, status = "unsubscribed", "unsubscribed"
        elif "CLEAN_TIME" in columns:
            kind, status = "cleaned", "bounced"
        else:
            raise PublisherError("is not named like a Mailchimp export file (subscribed_members_export_*.csv, "
                                 "unsubscribed_…, cleaned_…, nonsubscribed_…), so its members' status is unknown",
                                 file=name, hint="import the audience export zip as Mailchimp made it, or use "
                                 "`publisher import csv --status …` for a list you know the status of")
        address = next((a for a in _EMAIL_ALIASES if a in columns), None)
        if rows and address is None:
            archive.need(name, columns, ["Email Address"], "Mailchimp")
        for line, row in rows:
            if status is None:
                imported.skipped["never subscribed (Mailchimp non-subscribed)"] += 1
                continue
            full = " ".join(part for part in (row.get("First Name", ""), row.get("Last Name", "")) if part)
            imported.add(Subscriber(row.get(address or "", ""), full, status, archive.split_list(row.get("TAGS", ""))),
                         f"{name}:{line}", kind)
    return imported
