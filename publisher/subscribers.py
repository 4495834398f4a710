"""Subscriber stores: SQLite (the default, `subscribers.db`) and an Amazon SES contact list.

Both keep the same record (email, name, status, tags, created and changed times) behind one small interface,
`Store`, so the commands, the sending loop and the tests do not care which one is in use.
"""

from __future__ import annotations

import contextlib
import csv
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from email_validator import EmailNotValidError, validate_email

from . import clock
from .config import Config
from .errors import Problem, PublisherError, relpath

STATUSES = ("active", "unconfirmed", "unsubscribed", "bounced", "complained")
SUPPRESSED = ("unsubscribed", "bounced", "complained")  # never emailed again (unless reactivated on purpose)
SCHEMA_VERSION = 1


def normalize_email(address: str) -> str:
    """A valid, normalized (lowercased) address; raises ValueError with the reason. No DNS lookups."""
    try:
        result = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(f"{address.strip()!r} is not a valid email address: {exc}") from None
    return result.normalized.lower()


def now_text() -> str:
    return clock.iso()


@dataclass(frozen=True)
class Subscriber:
    email: str
    name: str = ""
    status: str = "active"
    tags: tuple[str, ...] = ()
    created: str = ""
    changed: str = ""


class Store(Protocol):
    """Where subscribers live."""

    description: str

    def get(self, email: str) -> Subscriber | None: ...

    def upsert(self, subscriber: Subscriber, *, reactivate: bool = False) -> str:
        """Add or update; returns "added", "updated", "unchanged" or "kept" (a suppressed address that was
        not reactivated keeps its status)."""

    def upsert_many(self, subscribers: Iterable[Subscriber], *, reactivate: bool = False) -> dict[str, int]: ...

    def set_status(self, email: str, status: str) -> bool: ...

    def add_soft_bounce(self, email: str) -> int: ...

    def forget(self, email: str) -> bool: ...

    def iter(self, status: str | None = None) -> Iterator[Subscriber]: ...

    def count(self, status: str | None = None) -> int: ...


def _merge(old: Subscriber | None, new: Subscriber, reactivate: bool) -> tuple[Subscriber, str]:
    """The record after an upsert, and what happened: added, updated, unchanged, or kept (an unsubscribed,
    bounced or complained address keeps that status unless `reactivate`)."""
    if old is None:
        return new, "added"
    kept = old.status in SUPPRESSED and new.status not in SUPPRESSED and not reactivate
    merged = Subscriber(old.email, new.name or old.name, old.status if kept else new.status,
                        tuple(dict.fromkeys(old.tags + new.tags)), old.created, old.changed)
    if (merged.name, merged.status, merged.tags) == (old.name, old.status, old.tags):
        return old, "kept" if kept else "unchanged"
    return merged, "kept" if kept else "updated"


# ---- SQLite ----


def connect(path: Path) -> sqlite3.Connection:
    """The newsletter's database: WAL (readers never block the writer), a busy timeout instead of "database is
    locked", and synchronous=NORMAL (a committed row survives a killed process)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=30000")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    return db


@contextlib.contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """All or nothing. BEGIN IMMEDIATE takes the write lock at once (waiting up to the busy timeout), where a
    deferred transaction could fail with "database is locked" at its first write."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def migrate(db: sqlite3.Connection, component: str, version: int, statements: Iterable[str]) -> None:
    """Create a component's tables on first use; refuse a database made by a newer publisher."""
    row = db.execute("SELECT version FROM schema_versions WHERE component = ?", (component,)).fetchone()
    if row is not None:
        if row[0] > version:
            raise PublisherError(f"the database was made by a newer publisher ({component} schema {row[0]}, "
                                 f"this one knows {version})", hint="upgrade publisher")
        return
    with write_transaction(db):
        # Another process may have created the tables while this one waited for the write lock.
        if db.execute("SELECT 1 FROM schema_versions WHERE component = ?", (component,)).fetchone() is None:
            for statement in statements:
                db.execute(statement)
            db.execute("INSERT INTO schema_versions VALUES (?, ?)", (component, version))


SUBSCRIBER_TABLES = (
    """CREATE TABLE subscribers (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL CHECK (status IN ('active', 'unconfirmed', 'unsubscribed', 'bounced', 'complained')),
        tags TEXT NOT NULL DEFAULT '[]',
        soft_bounces INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        changed_at TEXT NOT NULL
    )""",
    "CREATE INDEX subscribers_status ON subscribers (status, id)",
)


class SqliteStore:
    def __init__(self, path: Path, shown: str | None = None) -> None:
        self.path = path
        self.description = shown or str(path)
        self.db = connect(path)
        migrate(self.db, "subscribers", SCHEMA_VERSION, SUBSCRIBER_TABLES)

    def close(self) -> None:
        self.db.close()

    @staticmethod
    def _row(row: sqlite3.Row | tuple) -> Subscriber:  # type: ignore[type-arg]
        return Subscriber(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4], row[5])

    _COLUMNS = "email, name, status, tags, created_at, changed_at"

    def get(self, email: str) -> Subscriber | None:
        row = self.db.execute(f"SELECT {self._COLUMNS} FROM subscribers WHERE email = ?", (email,)).fetchone()
        return self._row(row) if row else None

    def upsert(self, subscriber: Subscriber, *, reactivate: bool = False) -> str:
        with write_transaction(self.db):
            return self._upsert(subscriber, reactivate)

    def _upsert(self, subscriber: Subscriber, reactivate: bool) -> str:
        old = self.get(subscriber.email)
        merged, verdict = _merge(old, subscriber, reactivate)
        stamp = now_text()
        if verdict == "added":
            self.db.execute("INSERT INTO subscribers (email, name, status, tags, created_at, changed_at) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (merged.email, merged.name, merged.status,
                                                          json.dumps(list(merged.tags), ensure_ascii=False),
                                                          stamp, stamp))
        elif merged is not old:
            self.db.execute("UPDATE subscribers SET name = ?, status = ?, tags = ?, changed_at = ? WHERE email = ?",
                            (merged.name, merged.status, json.dumps(list(merged.tags), ensure_ascii=False), stamp,
                             merged.email))
        return verdict

    def upsert_many(self, subscribers: Iterable[Subscriber], *, reactivate: bool = False) -> dict[str, int]:
        """Many upserts in one transaction (an import of 100,000 rows takes seconds, not minutes)."""
        counts: dict[str, int] = {}
        with write_transaction(self.db):
            for subscriber in subscribers:
                verdict = self._upsert(subscriber, reactivate)
                counts[verdict] = counts.get(verdict, 0) + 1
        return counts

    def set_status(self, email: str, status: str) -> bool:
        if status not in STATUSES:
            raise ValueError(status)
        cursor = self.db.execute("UPDATE subscribers SET status = ?, changed_at = ? WHERE email = ? AND status != ?",
                                 (status, now_text(), email, status))
        return cursor.rowcount > 0

    def add_soft_bounce(self, email: str) -> int:
        self.db.execute("UPDATE subscribers SET soft_bounces = soft_bounces + 1, changed_at = ? WHERE email = ?",
                        (now_text(), email))
        row = self.db.execute("SELECT soft_bounces FROM subscribers WHERE email = ?", (email,)).fetchone()
        return int(row[0]) if row else 0

    def forget(self, email: str) -> bool:
        return self.db.execute("DELETE FROM subscribers WHERE email = ?", (email,)).rowcount > 0

    def iter(self, status: str | None = None) -> Iterator[Subscriber]:
        """Streams in id order, a page at a time: memory stays flat for any list size."""
        last = 0
        while True:
            where = "id > ?" + (" AND status = ?" if status else "")
            args: tuple[object, ...] = (last, status) if status else (last,)
            rows = self.db.execute(f"SELECT id, {self._COLUMNS} FROM subscribers WHERE {where} ORDER BY id LIMIT 1000",
                                   args).fetchall()
            if not rows:
                return
            for row in rows:
                yield self._row(row[1:])
            last = rows[-1][0]

    def count(self, status: str | None = None) -> int:
        if status:
            return int(self.db.execute("SELECT count(*) FROM subscribers WHERE status = ?", (status,)).fetchone()[0])
        return int(self.db.execute("SELECT count(*) FROM subscribers").fetchone()[0])


def open_store(config: Config) -> Store:
    if config.subscribers.ses_contact_list:
        from .ses_contacts import SesContactStore

        return SesContactStore(config)
    path = config.root / config.subscribers.database
    return SqliteStore(path, str(relpath(path, config.root)))


# ---- CSV ----

CSV_FIELDS = ("email", "name", "status", "tags", "created", "changed")


def read_csv(path: Path, *, status: str = "active") -> tuple[list[Subscriber], list[Problem]]:
    """Subscribers from a CSV file with a header row (email required; name, status, tags optional; tags
    separated by `;`). Bad rows are reported by line number; the good ones are returned."""
    shown = path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PublisherError(f"is not UTF-8 text (byte {exc.start})", file=shown,
                             hint="save the file as UTF-8 (Excel: CSV UTF-8)") from None
    except OSError as exc:
        raise PublisherError(f"cannot be read: {exc.strerror}", file=shown) from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip().lower() for c in (reader.fieldnames or [])]
    if "email" not in columns:
        raise PublisherError("has no 'email' column", file=shown, line=1,
                             hint="the first row must name the columns, e.g. email,name,tags")
    reader.fieldnames = columns
    good: list[Subscriber] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for row in reader:
        line = reader.line_num
        try:
            email = normalize_email(row.get("email") or "")
        except ValueError as exc:
            problems.append(Problem(str(exc), file=shown, line=line, field="email"))
            continue
        row_status = (row.get("status") or status).strip().lower()
        if row_status not in STATUSES:
            problems.append(Problem(f"unknown status {row_status!r}", file=shown, line=line, field="status",
                                    hint=f"one of {', '.join(STATUSES)}"))
            continue
        if email in seen:
            continue
        seen.add(email)
        tags = tuple(t.strip() for t in (row.get("tags") or "").split(";") if t.strip())
        good.append(Subscriber(email, (row.get("name") or "").strip(), row_status, tags))
    return good, problems


def write_csv(subscribers: Iterable[Subscriber], path: Path) -> int:
    count = 0
    tmp = path.with_name(path.name + ".tmp")
    with closing(open(tmp, "w", newline="", encoding="utf-8")) as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_FIELDS)
        for s in subscribers:
            writer.writerow([s.email, s.name, s.status, ";".join(s.tags), s.created, s.changed])
            count += 1
    tmp.replace(path)
    return count
