"""`publisher subscribers migrate --to dynamodb`: copy the SQLite subscribers into DynamoDB, then verify.

Every record goes over as it is (email, name, status, tags, created, changed, paused_until, soft_bounces), and
every change of address (the `moved` table) too. Each item is written with `attribute_not_exists(PK)`, so a run
never overwrites what is in the table already (a re-run, or a record changed in DynamoDB since): such items are
counted as "already there". Then every SQLite row is read back from the table (strongly consistent) and compared
field by field; any difference is reported, and the migration is not ok.

A row that `validate_subscriber` refuses (a name with a line break, from before publisher validated names) is
not copied: it is reported, and the migration is not ok until it is fixed in SQLite.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..errors import PublisherError, relpath
from ..subscribers import SqliteStore, Subscriber, database_errors, validate_subscriber
from .dynamodb import (
    BATCH,
    FIELD,
    DynamoDBStore,
    _Conflict,
    _n,
    item_subscriber,
    moved_item,
    moved_key,
    subscriber_item,
)

Progress = Callable[[str, int, int], None]  # (stage: "copy" or "verify", done, total)


@dataclass
class MigrateReport:
    table: str
    source: str
    total: int = 0  # subscribers in SQLite
    copied: int = 0
    already: int = 0  # in the table before this run (not overwritten)
    moved_total: int = 0  # changes of address in SQLite
    moved_copied: int = 0
    moved_already: int = 0
    verified: int = 0  # subscribers and changes of address read back equal
    refused: list[str] = field(default_factory=list)  # rows validate_subscriber refuses: not copied
    mismatches: list[str] = field(default_factory=list)  # "address: field: sqlite value != dynamodb value"

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.refused

    def lines(self) -> list[str]:
        return [f"subscribers: {self.total} in {self.source}, {self.copied} copied, {self.already} already there",
                f"changes of address: {self.moved_total}, {self.moved_copied} copied, "
                f"{self.moved_already} already there",
                f"verified: {self.verified} of {self.total + self.moved_total} equal in {self.table}",
                *(f"refused: {r}" for r in self.refused), *(f"mismatch: {m}" for m in self.mismatches)]


@dataclass(frozen=True)
class _Row:
    subscriber: Subscriber
    soft_bounces: int


def _rows(db: sqlite3.Connection) -> Iterator[_Row]:
    last = 0
    while True:
        rows = db.execute("SELECT id, email, name, status, tags, created_at, changed_at, paused_until, soft_bounces "
                          "FROM subscribers WHERE id > ? ORDER BY id LIMIT 1000", (last,)).fetchall()
        if not rows:
            return
        for row in rows:
            yield _Row(Subscriber(row[1], row[2], row[3], tuple(json.loads(row[4])), row[5], row[6], row[7] or ""),
                       int(row[8]))
        last = rows[-1][0]


def _refusal(subscriber: Subscriber) -> str | None:
    try:
        validate_subscriber(subscriber, test_domains=True)
    except PublisherError as exc:
        return f"{subscriber.email!r}: {exc}"
    return None


def migrate_to_dynamodb(config: Config, *, table: str | None = None, progress: Progress | None = None,
                        client: Any = None) -> MigrateReport:
    """Copy the SQLite store of `config` into the DynamoDB table `table` (default: subscribers.dynamodb_table) and
    verify it row for row. Raises PublisherError when there is no SQLite store or no table name."""
    name = table or config.subscribers.dynamodb_table
    if not name:
        raise PublisherError("no DynamoDB table to migrate to", file=config.file.name, field=FIELD,
                             hint='set subscribers.dynamodb_table = "newsletter", or pass --table NAME')
    path = config.root / config.subscribers.database
    shown = str(relpath(path, config.root))
    if not path.is_file():
        raise PublisherError(f"there is no SQLite store {shown} to migrate", file=config.file.name,
                             field="subscribers.database")
    source = SqliteStore(path, shown)  # brings an older schema up to date first
    try:
        store = DynamoDBStore(config, client, table=name)
    except BaseException:
        source.close()
        raise
    report = MigrateReport(store.description, shown)
    db = source.db
    try:
        with database_errors(path, shown):
            report.total = int(db.execute("SELECT count(*) FROM subscribers").fetchone()[0])
            moved = db.execute("SELECT old, new, moved_at FROM moved ORDER BY old").fetchall()
            report.moved_total = len(moved)
            refused = _copy(store, db, moved, report, progress)
            _verify(store, db, moved, report, progress, refused)
    finally:
        source.close()
        store.close()
    return report


def _put_new(store: DynamoDBStore, item: dict[str, Any]) -> bool:
    """True when written, False when the key was there already."""
    try:
        store._conditional("put_item", Item=item, ConditionExpression="attribute_not_exists(PK)")
    except _Conflict:
        return False
    return True


def _copy(store: DynamoDBStore, db: sqlite3.Connection, moved: list[tuple[str, str, str]], report: MigrateReport,
          progress: Progress | None) -> set[str]:
    """Writes what is not there yet; returns the addresses of the refused rows."""
    refused: set[str] = set()
    done = 0
    with ThreadPoolExecutor(store.workers) as pool:
        chunk: list[_Row] = []

        def flush() -> None:
            nonlocal done
            good = []
            for row in chunk:
                refusal = _refusal(row.subscriber)
                if refusal:
                    report.refused.append(refusal)
                    refused.add(row.subscriber.email)
                else:
                    good.append(row)
            for written in pool.map(lambda r: _put_new(store, subscriber_item(r.subscriber,
                                                                                soft_bounces=r.soft_bounces)), good):
                if written:
                    report.copied += 1
                else:
                    report.already += 1
            done += len(chunk)
            chunk.clear()
            if progress:
                progress("copy", done, report.total)

        for row in _rows(db):
            chunk.append(row)
            if len(chunk) >= BATCH:
                flush()
        flush()
        for written in pool.map(lambda m: _put_new(store, moved_item(*m)), moved):
            if written:
                report.moved_copied += 1
            else:
                report.moved_already += 1
    return refused


def _verify(store: DynamoDBStore, db: sqlite3.Connection, moved: list[tuple[str, str, str]], report: MigrateReport,
            progress: Progress | None, refused: set[str]) -> None:
    done = 0
    chunk: list[_Row] = []

    def check() -> None:
        nonlocal done
        items = store._items([r.subscriber.email for r in chunk])
        for row in chunk:
            expected = row.subscriber
            if expected.email in refused:
                continue
            item = items.get(expected.email)
            if item is None:
                report.mismatches.append(f"{expected.email}: missing from {store.description}")
                continue
            found = item_subscriber(item)
            wrong = [f"{expected.email}: {name}: {getattr(expected, name)!r} != {getattr(found, name)!r}"
                     for name in ("name", "status", "tags", "created", "changed", "paused_until")
                     if getattr(expected, name) != getattr(found, name)]
            if _n(item, "soft_bounces") != row.soft_bounces:
                wrong.append(f"{expected.email}: soft_bounces: {row.soft_bounces} != {_n(item, 'soft_bounces')}")
            report.mismatches.extend(wrong)
            report.verified += not wrong
        done += len(chunk)
        chunk.clear()
        if progress:
            progress("verify", done, report.total)

    for row in _rows(db):  # addresses are unique in SQLite: a chunk never holds one twice
        chunk.append(row)
        if len(chunk) >= BATCH:
            check()
    if chunk:
        check()
    for old, new, _ in moved:
        item = store._call("get_item", Key=moved_key(old), ConsistentRead=True).get("Item")
        found = item.get("new", {}).get("S") if item else None
        if found != new:
            report.mismatches.append(f"{old}: moved to: {new!r} != {found!r}")
        else:
            report.verified += 1
