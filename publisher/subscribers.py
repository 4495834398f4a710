"""Subscriber stores: SQLite (the default, `subscribers.db`) and an Amazon SES contact list.

Both keep the same record (email, name, status, tags, created and changed times) behind one small interface,
`Store`, so the commands, the sending loop and the tests do not care which one is in use.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sqlite3
import unicodedata
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
SCHEMA_VERSION = 2  # 2: paused_until (the preferences page's "pause for N weeks")
NAME_MAX = 100  # characters, after normalisation
TAG_MAX = 40
TAGS_MAX = 20


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
    paused_until: str = ""  # UTC, as `clock.iso()`: no issue goes to the address before then; "": not paused

    def paused_at(self, when: str) -> bool:
        """Whether the subscriber is paused at `when` (a `clock.iso()` text: the same form compares as text)."""
        return bool(self.paused_until) and self.paused_until > when


def normalize_email(address: str, *, test_domains: bool = False) -> str:
    """A valid, normalized (lowercased, ASCII) address; raises ValueError with the reason. No DNS lookups.

    A Unicode domain is stored as IDNA (punycode, user@xn--mnchen-3ya.de): every transport and header can carry
    it, and the same mailbox written either way is one subscriber. A non-ASCII local part would need SMTPUTF8
    end to end, which publisher does not do, so it is refused. `test_domains` lets the reserved `.test` domain
    (RFC 6761) through."""
    address = address.strip()
    local, at, _ = address.rpartition("@")
    if at and not local.isascii():
        raise ValueError(f"{address!r} is not supported: publisher cannot send to addresses with non-ASCII "
                         "characters before the @ (an internationalised domain after it is fine)")
    try:
        result = validate_email(address, check_deliverability=False, allow_smtputf8=False,
                                test_environment=test_domains)
    except EmailNotValidError as exc:
        raise ValueError(f"{address!r} is not a valid email address: {exc}") from None
    return result.ascii_email.lower()


# ZWNJ and ZWJ are format characters that Persian and Indic names and emoji sequences need; every other
# control or format character (line breaks, escape codes, direction overrides, invisible marks) is refused.
_JOINERS = frozenset("\u200c\u200d")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _refused_character(value: str) -> str | None:
    if value.isascii() and value.isprintable():  # the common case, without a per-character lookup
        return None
    for char in value:
        if char not in _JOINERS and unicodedata.category(char) in _REFUSED_CATEGORIES:
            return char
    return None


def clean_text(value: object, field: str, limit: int) -> str:
    """One line of subscriber-supplied text made safe to store, print and put into a message: NFKC (so
    look-alike compatibility forms of one name are one name), trimmed, no control or format characters, at
    most `limit` characters. Raises PublisherError naming the field."""
    if not isinstance(value, str):
        raise PublisherError(f"must be text, not {type(value).__name__}", field=field)
    text = unicodedata.normalize("NFKC", value).strip()
    bad = _refused_character(text)
    if bad is not None:
        raise PublisherError(f"contains the control character U+{ord(bad):04X}", field=field,
                             hint="line breaks, tabs, escape codes and invisible or direction-changing "
                                  "characters are not allowed")
    if len(text) > limit:
        raise PublisherError(f"is {len(text)} characters long; at most {limit} are allowed", field=field)
    return text


def clean_tags(tags: Iterable[object]) -> tuple[str, ...]:
    cleaned = []
    for tag in tags:
        text = clean_text(tag, "tags", TAG_MAX)
        if ";" in text:  # the CSV format separates tags with ";"
            raise PublisherError(f"tag {text!r} contains ';'", field="tags", hint="';' separates tags in CSV files")
        if text:
            cleaned.append(text)
    unique = tuple(dict.fromkeys(cleaned))
    if len(unique) > TAGS_MAX:
        raise PublisherError(f"{len(unique)} tags; at most {TAGS_MAX} are allowed", field="tags")
    return unique


def validate_subscriber(subscriber: Subscriber, *, test_domains: bool = False) -> Subscriber:
    """The one check of everything a subscriber (or an import) supplies, at every entry into a store: the
    address normalized, the name and tags cleaned (see `clean_text`), the status known. Raises PublisherError
    naming the field.

    The stores pass `test_domains`: their check is about what may be stored safely, and test and staging setups
    keep subscribers on the reserved `.test` domain; the commands, the import and the endpoint refuse it as
    undeliverable before the store is reached."""
    try:
        email = normalize_email(subscriber.email if isinstance(subscriber.email, str) else "",
                                test_domains=test_domains)
    except ValueError as exc:
        raise PublisherError(str(exc), field="email") from None
    if subscriber.status not in STATUSES:
        raise PublisherError(f"unknown status {subscriber.status!r}", field="status",
                             hint=f"one of {', '.join(STATUSES)}")
    return Subscriber(email, clean_text(subscriber.name, "name", NAME_MAX), subscriber.status,
                      clean_tags(subscriber.tags), subscriber.created, subscriber.changed, subscriber.paused_until)


def printable(text: str) -> str:
    """`text` for a terminal: control and format characters shown escaped (`\\x1b`, `\\u202e`), so a stored
    name cannot move the cursor, recolour or rewrite what the user sees."""
    if _refused_character(text) is None:
        return text
    return "".join(c.encode("unicode_escape").decode("ascii") if c not in _JOINERS
                   and unicodedata.category(c) in _REFUSED_CATEGORIES else c for c in text)


class Store(Protocol):
    """Where subscribers live."""

    description: str

    def get(self, email: str) -> Subscriber | None: ...

    def upsert(self, subscriber: Subscriber, *, reactivate: bool = False) -> str:
        """Add or update; returns "added", "updated", "unchanged" or "kept" (a suppressed address that was
        not reactivated keeps its status)."""

    def upsert_many(self, subscribers: Iterable[Subscriber], *, reactivate: bool = False,
                    validated: bool = False) -> dict[str, int]: ...

    def set_status(self, email: str, status: str) -> bool: ...

    def add_soft_bounce(self, email: str) -> int: ...

    def forget(self, email: str) -> bool: ...

    def iter(self, status: str | None = None) -> Iterator[Subscriber]: ...

    def count(self, status: str | None = None) -> int: ...

    # The preferences page (preferences.py). A store that cannot do one raises PublisherError saying so.

    def set_tags(self, email: str, tags: Iterable[str]) -> bool:
        """Replace the subscriber's tags with exactly `tags` (validated as any tags); False if there is no one."""

    def set_paused(self, email: str, until: str) -> bool:
        """No issue goes to `email` before `until` (a `clock.iso()` text; "" resumes); False if there is no one."""

    def change_email(self, old: str, new: str) -> bool:
        """`old`'s record under the address `new` (see `merge_change`); False if `old` is not there."""


# The more restrictive a status, the higher: a merge keeps the higher one (consent is never widened). An
# unconfirmed address that the change-address link was followed from counts as confirmed.
_RESTRICTION = {"active": 0, "unconfirmed": 0, "unsubscribed": 1, "bounced": 2, "complained": 3}


def merge_change(old: Subscriber, existing: Subscriber | None, new_email: str) -> Subscriber:
    """The record after `old` moved to `new_email`, where `existing` may already be subscribed: `old`'s name, tags,
    created time and pause, the union of both tag sets, and the more restrictive status of the two (a suppressed
    address stays suppressed, whoever asks)."""
    if existing is None:
        return Subscriber(new_email, old.name, old.status, old.tags, old.created, old.changed, old.paused_until)
    status = old.status if _RESTRICTION[old.status] >= _RESTRICTION[existing.status] else existing.status
    tags = tuple(dict.fromkeys(old.tags + existing.tags))[:TAGS_MAX]
    return Subscriber(new_email, old.name or existing.name, status, tags, old.created, old.changed,
                      old.paused_until)


def _merge(old: Subscriber | None, new: Subscriber, reactivate: bool, *,
           validated: bool = False) -> tuple[Subscriber, str]:
    """The record after an upsert, and what happened: added, updated, unchanged, or kept (an unsubscribed,
    bounced or complained address keeps that status unless `reactivate`).

    Every store's upsert comes through here, so this is where subscriber-supplied values are validated
    (`validated`: the caller already did)."""
    if not validated:
        new = validate_subscriber(new, test_domains=True)
    if old is None:
        return new, "added"
    kept = old.status in SUPPRESSED and new.status not in SUPPRESSED and not reactivate
    tags = tuple(dict.fromkeys(old.tags + new.tags))
    if len(tags) > TAGS_MAX:
        raise PublisherError(f"{new.email} would have {len(tags)} tags; at most {TAGS_MAX} are allowed",
                             field="tags")
    merged = Subscriber(old.email, new.name or old.name, old.status if kept else new.status, tags, old.created,
                        old.changed, old.paused_until)
    if (merged.name, merged.status, merged.tags) == (old.name, old.status, old.tags):
        return old, "kept" if kept else "unchanged"
    return merged, "kept" if kept else "updated"


# ---- SQLite ----


_CORRUPT = (11, 26)  # SQLITE_CORRUPT ("database disk image is malformed"), SQLITE_NOTADB ("file is not a database")


@contextlib.contextmanager
def database_errors(path: Path, shown: str | Path | None = None) -> Iterator[None]:
    """A damaged database file as one clear user error instead of a traceback. Other database errors (a lock,
    a full disk) pass through as they are."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) not in _CORRUPT:
            raise
        raise PublisherError(f"is damaged and cannot be read ({exc})", file=shown or relpath(path, Path.cwd()),
                             hint="restore it from a backup (a copy of the file and its -wal file); publisher "
                                  "does not repair or replace it") from None


def connect(path: Path, shown: str | Path | None = None) -> sqlite3.Connection:
    """The newsletter's database: WAL (readers never block the writer), a busy timeout instead of "database is
    locked", and synchronous=NORMAL (a committed row survives a killed process). `shown`: the path as errors
    name it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    # SQLite reads the file's header (and checks its size against it) on the first statement: a file that is
    # not a database, or a truncated one, fails here, before any command has done anything.
    try:
        with database_errors(path, shown):
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, "
                       "version INTEGER NOT NULL)")
    except BaseException:
        db.close()
        raise
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


def migrate(db: sqlite3.Connection, component: str, version: int, statements: Iterable[str],
            upgrades: dict[int, Iterable[str]] | None = None) -> None:
    """Create a component's tables on first use (`statements` make the newest schema); bring an older one up to
    `version` with `upgrades` ({n: the statements that turn schema n - 1 into n}, each step in one
    transaction); refuse a database made by a newer publisher."""
    row = db.execute("SELECT version FROM schema_versions WHERE component = ?", (component,)).fetchone()
    if row is not None:
        if row[0] > version:
            raise PublisherError(f"the database was made by a newer publisher ({component} schema {row[0]}, "
                                 f"this one knows {version})", hint="upgrade publisher")
        for step in range(row[0] + 1, version + 1):
            with write_transaction(db):
                # Another process may have upgraded it while this one waited for the write lock.
                now_at = db.execute("SELECT version FROM schema_versions WHERE component = ?",
                                    (component,)).fetchone()[0]
                if now_at >= step:
                    continue
                for statement in (upgrades or {}).get(step, ()):
                    db.execute(statement)
                db.execute("UPDATE schema_versions SET version = ? WHERE component = ?", (step, component))
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
        changed_at TEXT NOT NULL,
        paused_until TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX subscribers_status ON subscribers (status, id)",
    # Where an address moved (the preferences page's change of address): an unsubscribe link in an email sent
    # before the move still reaches the record. Never followed to widen anything.
    """CREATE TABLE moved (
        old TEXT PRIMARY KEY,
        new TEXT NOT NULL,
        moved_at TEXT NOT NULL
    )""",
)
SUBSCRIBER_UPGRADES = {2: ("ALTER TABLE subscribers ADD COLUMN paused_until TEXT NOT NULL DEFAULT ''",
                           SUBSCRIBER_TABLES[2])}


class SqliteStore:
    def __init__(self, path: Path, shown: str | None = None) -> None:
        self.path = path
        self.description = shown or str(path)
        self.db = connect(path, self.description)
        with database_errors(path, self.description):
            migrate(self.db, "subscribers", SCHEMA_VERSION, SUBSCRIBER_TABLES, SUBSCRIBER_UPGRADES)

    def close(self) -> None:
        self.db.close()

    @staticmethod
    def _row(row: sqlite3.Row | tuple) -> Subscriber:  # type: ignore[type-arg]
        return Subscriber(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4], row[5], row[6] or "")

    _COLUMNS = "email, name, status, tags, created_at, changed_at, paused_until"

    def get(self, email: str) -> Subscriber | None:
        with database_errors(self.path, self.description):
            row = self.db.execute(f"SELECT {self._COLUMNS} FROM subscribers WHERE email = ?", (email,)).fetchone()
        return self._row(row) if row else None

    def upsert(self, subscriber: Subscriber, *, reactivate: bool = False) -> str:
        # Before the lookup, which needs the normalized address.
        subscriber = validate_subscriber(subscriber, test_domains=True)
        with database_errors(self.path, self.description), write_transaction(self.db):
            return self._upsert(subscriber, reactivate)

    def _upsert(self, subscriber: Subscriber, reactivate: bool, stamp: str | None = None) -> str:
        old = self.get(subscriber.email)
        merged, verdict = _merge(old, subscriber, reactivate, validated=True)
        stamp = stamp or now_text()
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

    def upsert_many(self, subscribers: Iterable[Subscriber], *, reactivate: bool = False,
                    validated: bool = False) -> dict[str, int]:
        """Many upserts in one transaction (an import of 100,000 rows takes seconds, not minutes), all stamped
        with one time. `validated`: every row has been through `validate_subscriber` already (an import's rows
        are, as they are read), so the address is not parsed twice."""
        counts: dict[str, int] = {}
        stamp = now_text()
        with database_errors(self.path, self.description), write_transaction(self.db):
            for subscriber in subscribers:
                if not validated:
                    subscriber = validate_subscriber(subscriber, test_domains=True)
                verdict = self._upsert(subscriber, reactivate, stamp)
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

    def set_tags(self, email: str, tags: Iterable[str]) -> bool:
        cleaned = json.dumps(list(clean_tags(tags)), ensure_ascii=False)
        with database_errors(self.path, self.description):
            cursor = self.db.execute("UPDATE subscribers SET tags = ?, changed_at = ? WHERE email = ?",
                                     (cleaned, now_text(), email))
        return cursor.rowcount > 0

    def set_paused(self, email: str, until: str) -> bool:
        with database_errors(self.path, self.description):
            cursor = self.db.execute("UPDATE subscribers SET paused_until = ?, changed_at = ? WHERE email = ?",
                                     (until, now_text(), email))
        return cursor.rowcount > 0

    def change_email(self, old: str, new: str) -> bool:
        new = validate_subscriber(Subscriber(new), test_domains=True).email
        with database_errors(self.path, self.description), write_transaction(self.db):
            current = self.get(old)
            if current is None:
                return False
            if new == old:
                return True
            existing = self.get(new)
            merged = merge_change(current, existing, new)
            if existing is not None:  # one person, one record: the old one (its id, created time) goes on
                self.db.execute("DELETE FROM subscribers WHERE email = ?", (new,))
            self.db.execute("UPDATE subscribers SET email = ?, name = ?, status = ?, tags = ?, changed_at = ? "
                            "WHERE email = ?", (new, merged.name, merged.status,
                                                json.dumps(list(merged.tags), ensure_ascii=False), now_text(), old))
            # Earlier moves now lead here too (one hop, however often an address moved); a move back drops it.
            self.db.execute("UPDATE moved SET new = ? WHERE new = ?", (new, old))
            self.db.execute("DELETE FROM moved WHERE old = ?", (new,))
            self.db.execute("INSERT OR REPLACE INTO moved (old, new, moved_at) VALUES (?, ?, ?)",
                            (old, new, now_text()))
        return True

    def moved_to(self, email: str) -> str | None:
        """The address `email` moved to by a change of address, if it did (for unsubscribe links only)."""
        with database_errors(self.path, self.description):
            row = self.db.execute("SELECT new FROM moved WHERE old = ?", (email,)).fetchone()
        return str(row[0]) if row else None

    def soft_bounces(self, email: str) -> int:
        """The soft bounces counted for `email` (0 for an unknown address); for `subscribers export ADDRESS`."""
        with database_errors(self.path, self.description):
            row = self.db.execute("SELECT soft_bounces FROM subscribers WHERE email = ?", (email,)).fetchone()
        return int(row[0]) if row else 0

    def iter(self, status: str | None = None) -> Iterator[Subscriber]:
        """Streams in id order, a page at a time: memory stays flat for any list size."""
        last = 0
        while True:
            where = "id > ?" + (" AND status = ?" if status else "")
            args: tuple[object, ...] = (last, status) if status else (last,)
            with database_errors(self.path, self.description):
                rows = self.db.execute(f"SELECT id, {self._COLUMNS} FROM subscribers WHERE {where} ORDER BY id "
                                       "LIMIT 1000", args).fetchall()
            if not rows:
                return
            for row in rows:
                yield self._row(row[1:])
            last = rows[-1][0]

    def count(self, status: str | None = None) -> int:
        with database_errors(self.path, self.description):
            if status:
                return int(self.db.execute("SELECT count(*) FROM subscribers WHERE status = ?",
                                           (status,)).fetchone()[0])
            return int(self.db.execute("SELECT count(*) FROM subscribers").fetchone()[0])


def open_store(config: Config) -> Store:
    if config.subscribers.dynamodb_table:
        from .stores.dynamodb import DynamoDBStore

        return DynamoDBStore(config)
    if config.subscribers.ses_contact_list:
        from .ses_contacts import SesContactStore

        return SesContactStore(config)
    path = config.root / config.subscribers.database
    return SqliteStore(path, str(relpath(path, config.root)))


# ---- CSV ----

CSV_FIELDS = ("email", "name", "status", "tags", "created", "changed")

# CSV injection (OWASP): a spreadsheet runs a cell that starts with one of these as a formula, so an export
# writes such a cell with a leading "'" (which spreadsheets show as "text", not as part of the value). A cell
# that starts with "'" itself gets one too, so that an import can undo exactly this: it drops one leading "'"
# before a trigger character or another "'", and `export` then `import` gives back the same values. A
# hand-written "'abc" stays as it is.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START + ("'",)) else value


def _csv_value(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_START + ("'",)) else cell


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
    # The csv module, not str.splitlines(), finds the rows: a quoted cell keeps its line breaks (and is refused
    # for them below) instead of being silently joined, and U+2028 or a form feed does not split a row.
    reader = csv.DictReader(io.StringIO(text, newline=""))
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
        cells = {k: _csv_value(v) for k, v in row.items() if isinstance(k, str) and isinstance(v, str)}
        row_status = (cells.get("status") or status).strip().lower()
        tags = [t for t in (cells.get("tags") or "").split(";") if t.strip()]
        try:
            subscriber = validate_subscriber(Subscriber(cells.get("email") or "", cells.get("name") or "",
                                                        row_status, tuple(tags)))
        except PublisherError as exc:
            problems.extend(Problem(p.message, file=shown, line=line, field=p.field, hint=p.hint)
                            for p in exc.problems)
            continue
        if subscriber.email in seen:
            continue
        seen.add(subscriber.email)
        good.append(subscriber)
    return good, problems


def write_csv(subscribers: Iterable[Subscriber], path: Path) -> int:
    count = 0
    tmp = path.with_name(path.name + ".tmp")
    with closing(open(tmp, "w", newline="", encoding="utf-8")) as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_FIELDS)
        for s in subscribers:
            writer.writerow([_csv_cell(v) for v in (s.email, s.name, s.status, ";".join(s.tags), s.created,
                                                     s.changed)])
            count += 1
    tmp.replace(path)
    return count
