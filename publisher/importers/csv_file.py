"""`publisher import csv`: any CSV with a header row, its columns named by `--map`. (Not `csv.py`: never shadow the
stdlib.)"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from ..errors import Problem, PublisherError
from ..subscribers import Subscriber
from . import archive
from .writer import RESTRICTIVE, Imported


def parse_map(text: str) -> dict[str, str]:
    """`email=Email Address,name=Full name,tags=Groups,status=State` -> {field: column}."""
    mapping: dict[str, str] = {}
    for part in (p for p in text.split(",") if p.strip()):
        key, sep, column = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("email", "name", "tags", "status") or not column.strip():
            raise PublisherError(f"--map takes field=column pairs for email, name, tags and status; {part!r} is "
                                 "not one", field="map")
        mapping[key] = column.strip()
    return mapping


def read_subscribers(path: Path, mapping: Mapping[str, str] | None = None, status: str = "active") -> Imported:
    """A CSV with a header row; `mapping` names the columns (default: email, name, tags, status). A `status`
    column must hold publisher's statuses; without one every row gets `status`."""
    imported = Imported("csv")
    columns = {"email": "email", "name": "name", "tags": "tags", "status": "status"} | dict(mapping or {})
    for name, data in archive.members(path):
        rows = list(archive.rows(name, data))
        if rows:
            archive.need(name, rows[0][1].keys(), [columns["email"]], "CSV (see --map)")
        for line, row in rows:
            row_status = (row.get(columns["status"]) or status).lower()
            if row_status not in RESTRICTIVE:
                imported.problems.append(Problem(f"status {row_status!r} is not one of {', '.join(RESTRICTIVE)}",
                                                 file=name, line=line, field=columns["status"]))
                continue
            tags = tuple(t.strip() for t in re.split(r"[;,]", row.get(columns["tags"], "")) if t.strip())
            imported.add(Subscriber(row.get(columns["email"], ""), row.get(columns["name"], ""), row_status, tags),
                         f"{name}:{line}", row_status)
    return imported
