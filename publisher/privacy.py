"""One person's data: forget them everywhere (`subscribers forget ADDRESS`), or show all we hold about them
(`subscribers export ADDRESS`).

Where a newsletter folder keeps an address (each place is handled here; a new place must be added here):
- the subscriber store: the `subscribers` row of subscribers.db (name, tags, status, soft-bounce count), or the
  contact of the SES contact list (the same record in its attributes); a pending confirmation is the
  `unconfirmed` record itself (confirmation tokens are signed, not stored);
- the delivery ledger (`deliveries` in subscribers.db): one row per issue sent to them;
- any other text in subscribers.db (e.g. a failure note of `publish` naming the address);
- the outbox folder (`email.outbox`): one `.eml` per message written, issues, test copies and confirmations
  (`confirmations/`), found by their `To:` header, since the file names are numbers.

Forgetting keeps the ledger's counts and its exactly-once promise: a delivery row is not deleted but made
anonymous. Its address becomes `forgotten:<hex>`, a one-way hash: HMAC-SHA256 under a key derived from the
newsletter's secret (`PUBLISHER_SECRET`) when there is one, else SHA-256 with a fixed prefix (weaker: anyone
who guesses the address can confirm the guess). The send loop compares a recipient with an issue's forgotten
rows (only when the issue has any), so a person who subscribes again is never sent an issue they already had.
The database is vacuumed and its WAL truncated afterwards, so the address's bytes do not survive in
subscribers.db, -wal or -shm.

Forgetting an address found nowhere is an error (exit 1): a typo must not look like a successful erasure.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import hmac
import logging
import os
import re
import sqlite3
from dataclasses import dataclass, field
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from .config import Config
from .errors import PublisherError
from .subscribers import SqliteStore, Store, connect, normalize_email, open_store, write_transaction

log = logging.getLogger(__name__)

PREFIX = "forgotten:"
_DOMAIN = b"publisher forget v1\0"  # domain separation: these hashes are never another use's HMACs or digests
_REDACTED = "[forgotten]"
_HEAD_LIMIT = 64 * 1024  # the headers of an .eml are read, never its body


# ---- the hash of a forgotten address ----


def marker(address: str, secret: bytes | None) -> str:
    """What a forgotten address's ledger rows hold instead of it."""
    data = _DOMAIN + address.encode("utf-8")
    if secret:
        key = hmac.new(secret, b"publisher forget key", hashlib.sha256).digest()  # not the token-signing key
        return PREFIX + hmac.new(key, data, hashlib.sha256).hexdigest()
    return PREFIX + hashlib.sha256(data).hexdigest()


def markers(address: str, secret: bytes | None) -> set[str]:
    """Every form a forgotten row of `address` may have: keyed (if there is a secret) and plain, since the
    person may have been forgotten without the secret at hand."""
    return {marker(address, secret), marker(address, None)}


def forgotten_rows(db: sqlite3.Connection, issue: str) -> set[str]:
    """The forgotten rows of an issue: a range on the (issue, email) index, so cheap when there are none."""
    rows = db.execute("SELECT email FROM deliveries WHERE issue = ? AND email >= ? AND email < ?",
                      (issue, PREFIX, PREFIX[:-1] + chr(ord(PREFIX[-1]) + 1))).fetchall()
    return {r[0] for r in rows}


def was_forgotten(address: str, forgotten: set[str], secret: bytes | None) -> bool:
    return bool(forgotten) and not markers(address, secret).isdisjoint(forgotten)


# ---- the address given by the user ----


def person(address: str) -> str:
    """The normalized address, or a PublisherError: line breaks, control characters, a non-ASCII local part
    and anything else that is not one mailbox are refused before anything is looked up."""
    if not isinstance(address, str) or not address.strip() or len(address) > 320 or not address.isprintable():
        raise PublisherError("is not an email address (empty, too long, or with control characters)",
                             field="ADDRESS", hint="give one address, e.g. reader@example.com")
    try:
        return normalize_email(address, test_domains=True)
    except ValueError as exc:
        raise PublisherError(str(exc), field="ADDRESS") from None


def looks_like_address(argument: str) -> bool:
    """The rule of `subscribers export ARG`: a person, not a CSV file, when ARG has no path separator, one @
    with a dot in the part after it, and does not end in .csv."""
    local, at, domain = argument.rpartition("@")
    return (bool(at) and bool(local) and "." in domain.strip(".") and "/" not in argument
            and os.sep not in argument and not argument.lower().endswith(".csv"))


def _secret(secret: bytes | None) -> bytes | None:
    if secret is not None:
        return secret
    from .tokens import secret_from_env

    try:
        return secret_from_env()
    except PublisherError:
        return None  # no (usable) secret: the plain hash, see the module's docstring


# ---- forget ----


@dataclass
class ForgetReport:
    address: str
    removed: dict[str, int] = field(default_factory=dict)  # place -> how many records/files
    warnings: list[str] = field(default_factory=list)
    keyed: bool = False  # the ledger rows hold an HMAC (a secret was at hand), not a plain hash

    @property
    def total(self) -> int:
        return sum(self.removed.values())

    def lines(self) -> list[str]:
        return [f"{place}: {count}" for place, count in self.removed.items()]


def forget(config: Config, address: str, *, store: Store | None = None, secret: bytes | None = None) -> ForgetReport:
    """Remove every trace of `address` from the newsletter folder (see the module's docstring); raises
    PublisherError for an invalid address, or for one found nowhere."""
    who = person(address)
    secret = _secret(secret)
    report = ForgetReport(who, keyed=bool(secret))
    own = store is None
    store = store or open_store(config)
    try:
        sqlite_store = isinstance(store, SqliteStore) and _same_db(store, config)
        if not sqlite_store:  # the SES contact list (or another store): its own forget
            report.removed["subscriber (" + store.description + ")"] = int(store.forget(who))
    finally:
        if own and hasattr(store, "close"):
            store.close()  # type: ignore[union-attr]
    path = config.root / config.subscribers.database
    if path.exists():
        _forget_in_database(path, who, report, marker(who, secret))
    if config.subscribers.dynamodb_table:  # the delivery ledger lives in the table too
        from .stores.dynamodb_ledger import DynamoDBLedger

        ledger = DynamoDBLedger(config)
        try:
            if anonymous := ledger.forget(who, marker(who, secret)):
                report.removed["deliveries made anonymous (DynamoDB)"] = anonymous
        finally:
            ledger.close()
    report.removed["outbox files"] = _forget_outbox(config, who)
    outbox = config.root / config.email.outbox
    if outbox.is_symlink():
        report.warnings.append(f"{config.email.outbox} is a symbolic link, so it was not searched (publisher deletes "
                               "files only in folders it made); delete their messages in it by hand")
    if not report.total:
        raise PublisherError(f"nothing about {who} was found, so nothing was removed",
                             hint="check the address; `publisher subscribers list` shows who is subscribed")
    return report


def _same_db(store: SqliteStore, config: Config) -> bool:
    return store.path.resolve() == (config.root / config.subscribers.database).resolve()


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _forget_in_database(path: Path, who: str, report: ForgetReport, hashed: str) -> None:
    db = connect(path)
    try:
        # Zeroes what the deletes below free; the VACUUM then drops the copies older updates left in free space.
        db.execute("PRAGMA secure_delete=ON")
        tables = _tables(db)
        with write_transaction(db):
            if "subscribers" in tables:
                report.removed["subscriber (subscribers.db)"] = db.execute(
                    "DELETE FROM subscribers WHERE email = ?", (who,)).rowcount
            # A change of address names both of the person's addresses: the row goes.
            if "moved" in tables and (moved := db.execute("DELETE FROM moved WHERE old = ? OR new = ?",
                                                          (who, who)).rowcount):
                report.removed["changes of address"] = moved
            if "deliveries" in tables:
                report.removed["deliveries made anonymous"] = _anonymize(db, who, hashed)
            report.removed["other notes in subscribers.db"] = _redact_text(db, who, tables)
        db.execute("VACUUM")
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            report.warnings.append(f"{path.name}-wal could not be emptied now (another process has the database "
                                   "open): old copies of the address may stay in it until that process ends; run "
                                   "the command again then")
    finally:
        db.close()


def _anonymize(db: sqlite3.Connection, who: str, hashed: str) -> int:
    """Their delivery rows keep issue, state and times (the counts stay true) but not the address or the name.
    A row not sent yet is `skipped`: there is no one to send it to. (OR REPLACE: should the issue already have a
    forgotten row of this person, the two are one.)"""
    return db.execute(
        "UPDATE OR REPLACE deliveries SET email = ?, name = '', last_error = NULL, "
        "state = CASE WHEN state IN ('pending', 'sending') THEN 'skipped' ELSE state END, "
        "changed_at = CASE WHEN state IN ('pending', 'sending') THEN ? ELSE changed_at END WHERE email = ?",
        (hashed, _now(), who)).rowcount


def _now() -> str:
    from .subscribers import now_text

    return now_text()


def _redact_text(db: sqlite3.Connection, who: str, tables: set[str]) -> int:
    """The address in any other text column of the database (a failure note, say), replaced."""
    pattern = re.compile(re.escape(who), re.IGNORECASE)
    changed = 0
    for table in sorted(tables - {"subscribers", "sqlite_sequence"}):
        columns = [r[1] for r in db.execute(f'PRAGMA table_info("{table}")')
                   if "TEXT" in str(r[2]).upper() or not r[2]]
        for column in columns:
            rows = db.execute(f'SELECT rowid, "{column}" FROM "{table}" WHERE instr(lower("{column}"), ?) > 0',
                              (who,)).fetchall()
            for rowid, value in rows:
                db.execute(f'UPDATE "{table}" SET "{column}" = ? WHERE rowid = ?',
                           (pattern.sub(_REDACTED, value), rowid))
                changed += 1
    return changed


def _outbox_files(config: Config, who: str) -> list[Path]:
    """The messages in the outbox folder addressed to `who`: regular files only (never through a link), read up
    to the end of their headers."""
    top = config.root / config.email.outbox
    if not top.is_dir() or top.is_symlink():
        return []
    found = []
    for folder, dirs, files in os.walk(top, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if not (name.endswith(".eml") or (name.startswith(".") and name.endswith(".tmp"))):
                continue
            path = Path(folder, name)
            if path.is_symlink() or not path.is_file():
                continue
            if who in _recipients(path):
                found.append(path)
    return found


def _recipients(path: Path) -> set[str]:
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_LIMIT).split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    except OSError:
        return set()
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    out = set()
    for _, addr in getaddresses([str(v) for v in headers.get_all("To", [])]):
        out.add(addr.strip().lower())
    return out


def _forget_outbox(config: Config, who: str) -> int:
    count = 0
    for path in _outbox_files(config, who):
        try:
            path.unlink()
            count += 1
        except OSError as exc:
            raise PublisherError(f"cannot delete {path}: {exc.strerror}", hint="check its permissions and run "
                                 "the command again (what was removed so far stays removed)") from None
    return count


# ---- export ----


def export_person(config: Config, address: str, *, store: Store | None = None) -> dict[str, Any]:
    """All the newsletter holds about one person, as JSON-ready data; raises PublisherError for an invalid
    address, or one found nowhere."""
    who = person(address)
    own = store is None
    store = store or open_store(config)
    try:
        subscriber = store.get(who)
        soft = _soft_bounces(store, who) if subscriber else 0
    finally:
        if own and hasattr(store, "close"):
            store.close()  # type: ignore[union-attr]
    deliveries = _deliveries(config, who)
    files = [str(p.relative_to(config.root)) if p.is_relative_to(config.root) else str(p)
             for p in _outbox_files(config, who)]
    if subscriber is None and not deliveries and not files:
        raise PublisherError(f"nothing about {who} was found", hint="check the address")
    record = None
    if subscriber is not None:
        record = {"email": subscriber.email, "name": subscriber.name, "status": subscriber.status,
                  "tags": list(subscriber.tags), "created": subscriber.created, "changed": subscriber.changed,
                  "soft_bounces": soft, "paused_until": subscriber.paused_until}
    return {"email": who, "store": store.description, "subscriber": record,
            "pending_confirmation": bool(subscriber and subscriber.status == "unconfirmed"),
            "deliveries": deliveries, "outbox_files": files}


def _soft_bounces(store: Store, who: str) -> int:
    count = getattr(store, "soft_bounces", None)
    return int(count(who)) if callable(count) else 0


def _deliveries(config: Config, who: str) -> list[dict[str, Any]]:
    path = config.root / config.subscribers.database
    if not path.exists():
        return []
    db = connect(path)
    try:
        if "deliveries" not in _tables(db):
            return []
        rows = db.execute("SELECT issue, state, attempts, message_id, created_at, changed_at, last_error "
                          "FROM deliveries WHERE email = ? ORDER BY id", (who,)).fetchall()
    finally:
        db.close()
    keys = ("issue", "state", "attempts", "message_id", "created", "changed", "last_error")
    return [dict(zip(keys, row, strict=True)) for row in rows]
