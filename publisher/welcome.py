"""The welcome email: `content/_welcome.md`, sent once to each subscriber right after they become active.

The file is written like an issue (frontmatter `title`, which is the subject unless `subject:` is set, and
optional `preheader`; `date` and `slug` may be left out and are ignored). It is never part of the site or the
feeds (content.py skips every file and folder whose name starts with `_`), and it is rendered, rate limited,
sent and recorded exactly as an issue is: `render_email`, the transport of `email.transport` (the outbox:
`outbox/_welcome/`), and the delivery ledger under the issue key `_welcome`.

Exactly once, crash-safe:
- queueing: the moment a subscriber becomes active (the confirm link's POST in `serve`, or an import with
  `--welcome`) a `pending` row for `_welcome` goes into the ledger's `deliveries` table, in the SAME SQLite
  transaction that changes the subscriber's status (temporary triggers on the store's own connection, see
  `queue_activations`). The row's UNIQUE (issue, email) makes every later attempt (a second click, an import
  of the same person, a resubscription) a no-op: one welcome per address, ever.
- sending: `send_pending` runs the issues' `SendLoop` over the pending rows: a row is claimed `sending` right
  before the transport is called and marked `sent` right after, so a killed process leaves at most one row per
  worker `sending`. Such a row may have gone out; unlike an issue (where the user chooses), a welcome is never
  sent twice: the next pass counts it as sent, with a logged warning.
- a welcome is queued only if `content/_welcome.md` exists at that moment: subscribers who became active before
  it existed never get one. Rows queued while it existed and not yet sent wait if the file is removed, and go
  out once it is back.

With `[subscribers] dynamodb_table` (the only store on Lambda that keeps the ledger) the rows are the DynamoDB
ledger's delivery items under the same issue key `_welcome` (publisher/stores/dynamodb_welcome.py), with the
same guarantees: the row is created only where there is none (a condition, not a UNIQUE constraint), the
confirm link's activation writes the status and the row in one TransactWriteItems, and `send_pending` runs the
same `SendLoop` over a `DynamoDBLedger`, whose claim is conditional on `pending`. The SQLite file is not used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from . import clock as clock_mod
from . import markdown
from .config import Config
from .content import Issue, decode, load_issues, parse_issue
from .emails import MessageFactory, RenderedEmail, render_email, sender_of
from .errors import PublisherError, relpath
from .sending import LEDGER_TABLES, LEDGER_VERSION, Ledger, LedgerStore, SendLoop, SendReport
from .subscribers import SqliteStore, Store, connect, migrate, now_text
from .tokens import secret_from_env
from .transports import Transport, transport_for

log = logging.getLogger(__name__)

SLUG = "_welcome"  # the ledger's issue key, the outbox folder and `publisher email _welcome`
FILE = "_welcome.md"  # in content/
# Keys of an issue that mean nothing here (said in a warning; `date:` is ignored silently: the welcome's date is
# the day it goes out, and an issue's frontmatter copied over has one).
IGNORED = ("slug", "draft", "send", "send_only", "audience")
_IGNORED_KEY = re.compile(rf"^({'|'.join(IGNORED)})\s*:", re.M)
_BOUNDARY = re.compile(r"-{3,}\s*")
_STAND_IN_DATE = "2000-01-01"  # parse_issue requires a date; the welcome's is the moment it is sent


def path(config: Config) -> Path:
    return config.content_dir / FILE


def enabled(config: Config) -> bool:
    """Whether welcomes are queued now: `content/_welcome.md` exists."""
    return path(config).is_file()


@dataclass(frozen=True)
class Welcome(Issue):
    """The welcome as an issue for the renderer. It has no page of its own (it is not on the site), so its
    page is the site's home: the email's "view in browser" link leads there."""

    @property
    def url_path(self) -> str:
        return ""


def load_welcome(config: Config, *, now: datetime | None = None) -> Welcome | None:
    """`content/_welcome.md` as an issue dated `now` (default: the clock), or None when there is none. Raises
    PublisherError (naming the file, line and key) when it cannot be parsed."""
    file = path(config)
    shown = relpath(file, config.root)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PublisherError(f"cannot be read: {exc.strerror}", file=shown) from None
    warnings: list[str] = []
    issue = parse_issue(_with_stand_in_date(raw, shown), file=config.content_dir / "welcome.md",
                        content_dir=config.content_dir, shown=shown, timezone=config.site.timezone,
                        warnings=warnings)
    for warning in warnings:
        log.warning("%s", warning)
    ignored = sorted({m.group(1) for m in _IGNORED_KEY.finditer(_frontmatter(raw, shown))})
    if ignored:
        log.warning("%s: %s ignored: the welcome is sent to each new subscriber while this file exists", shown,
                    ", ".join(f"`{key}:`" for key in ignored))
    fields = {f.name: getattr(issue, f.name) for f in dataclasses.fields(Issue)}
    fields.update(file=file, path=PurePosixPath(FILE), slug=SLUG, date=now or clock_mod.now(), draft=False,
                  send=True, send_only=False, audience=None)
    return Welcome(**fields)


def _lines(raw: bytes, shown: Path) -> tuple[list[str], int | None]:
    """The file's lines and the index of the line closing the frontmatter (None: not found)."""
    lines = decode(raw, shown).split("\n")
    if not lines or not _BOUNDARY.fullmatch(lines[0]):
        return lines, None
    closing = next((i for i in range(1, len(lines)) if _BOUNDARY.fullmatch(lines[i])), None)
    return lines, closing


def _frontmatter(raw: bytes, shown: Path) -> str:
    lines, closing = _lines(raw, shown)
    return "\n".join(lines[1:closing]) if closing else ""


def _with_stand_in_date(raw: bytes, shown: Path) -> bytes:
    """The file with a `date:` line added at the end of its frontmatter (a `date:` of the author's comes first,
    and the last key wins in YAML), and one blank line after the frontmatter taken away so that every line of
    the body keeps its number in messages. A file without frontmatter is left as it is (parse_issue says so)."""
    lines, closing = _lines(raw, shown)
    if closing is None:
        return raw
    after = lines[closing + 1:]
    if after and not after[0].strip():
        after = after[1:]
    return "\n".join([*lines[:closing], f"date: {_STAND_IN_DATE}", lines[closing], *after]).encode("utf-8")


def render(config: Config, *, now: datetime | None = None) -> RenderedEmail:
    """The welcome's email, rendered once (what `publisher email _welcome` shows and `send_pending` sends)."""
    welcome = load_welcome(config, now=now)
    if welcome is None:
        raise PublisherError("does not exist", file=relpath(path(config), config.root),
                             hint="write it like an issue (title: is the subject) to welcome each new subscriber")
    pages = {FILE: ""}
    if welcome.md_links:  # links to issues by their Markdown file: only then are the issues read
        try:
            pages.update({str(i.path): i.url_path for i in load_issues(config)})
        except PublisherError as exc:
            log.warning("the welcome's links to issues are left as they are: the issues cannot be read (%s)", exc)
    return render_email(config, welcome, markdown.to_html(welcome.body), pages=pages)


# ---- queueing: one pending row per subscriber, in the transaction that makes them active ----


def prepare(db: sqlite3.Connection) -> None:
    """The ledger's tables (created on first use, as `Ledger` does). Outside any transaction."""
    migrate(db, "ledger", LEDGER_VERSION, LEDGER_TABLES)


def queue(db: sqlite3.Connection, email: str, name: str = "", *, stamp: str | None = None) -> bool:
    """A pending welcome for `email`, unless it has (or had) one; True when a row was added. Writes without a
    transaction of its own: call it inside the caller's, after `prepare(db)`."""
    stamp = stamp or now_text()
    db.execute("INSERT OR IGNORE INTO issue_sends (issue, subject, audience, created_at) VALUES (?, ?, 0, ?)",
               (SLUG, FILE, stamp))
    return db.execute("INSERT OR IGNORE INTO deliveries (issue, email, name, state, created_at, changed_at) "
                      "VALUES (?, ?, ?, 'pending', ?, ?)", (SLUG, email, name, stamp, stamp)).rowcount == 1


def dynamodb_store(config: Config, store: Store):  # type: ignore[no-untyped-def]
    """The store when it is the DynamoDB table the welcome rows live in (`subscribers.dynamodb_table`), else
    None. Imported only then: boto3 is an optional dependency."""
    if not config.subscribers.dynamodb_table:
        return None
    from .stores.dynamodb import DynamoDBStore

    if isinstance(store, DynamoDBStore) and store.table == config.subscribers.dynamodb_table:
        return store
    return None


def _dynamodb_queue_many(config: Config, people: list[tuple[str, str]], store: Store | None = None) -> int:
    from .stores import dynamodb_welcome
    from .stores.dynamodb import DynamoDBStore

    table = dynamodb_store(config, store) if store is not None else None
    own = table is None
    table = table or DynamoDBStore(config)
    try:
        return dynamodb_welcome.queue_many(table, people)
    finally:
        if own:
            table.close()


def ledger_db(config: Config, store: Store) -> sqlite3.Connection | None:
    """The store's own connection when the store is the SQLite database the ledger lives in, else None."""
    if isinstance(store, SqliteStore) and \
            store.path.resolve() == (config.root / config.subscribers.database).resolve():
        return store.db
    return None


_TRIGGERS = ("publisher_welcome_added", "publisher_welcome_activated")


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@contextlib.contextmanager
def queue_activations(config: Config, store: Store, *, welcome: bool = True) -> Iterator[None]:
    """Within this block, every subscriber whom `store` adds as active or makes active gets a pending welcome
    (if `content/_welcome.md` exists and `welcome` is true). E.g. `subscribers import --welcome`:

        with welcome.queue_activations(config, store):
            store.upsert_many(subscribers)
        welcome.send_pending(config)

    SQLite (the ledger's database): two TEMP triggers on the store's own connection write the row in the very
    transaction that writes the status, whatever transaction the store uses: committed together or not at all.
    Another store (the SES contact list, the DynamoDB table: their batch writes share no transaction with the
    rows): the active addresses are listed before and the rows written after the block; a crash between the
    store's write and the rows loses those welcomes (never sends one twice: the row insert is idempotent). The
    DynamoDB table's status index is eventually consistent: an address made active a moment before the block
    may be missing from the first list, and is then welcomed if it never had a welcome."""
    if not (welcome and enabled(config)):
        yield
        return
    db = ledger_db(config, store)
    if db is None:
        before = {s.email for s in store.iter("active")}
        try:
            yield
        finally:  # also after an error: what the store made active before it stays active (no transaction)
            fresh = [(s.email, s.name) for s in store.iter("active") if s.email not in before]
            if fresh:
                queue_many(config, fresh, store)
        return
    prepare(db)
    stamp = _sql_text(now_text())  # a trigger takes no parameters; the stamp is ours (ISO 8601), quoted anyway
    rows = (f"INSERT OR IGNORE INTO issue_sends (issue, subject, audience, created_at) "
            f"VALUES ({_sql_text(SLUG)}, {_sql_text(FILE)}, 0, {stamp}); "
            f"INSERT OR IGNORE INTO deliveries (issue, email, name, state, created_at, changed_at) "
            f"VALUES ({_sql_text(SLUG)}, NEW.email, NEW.name, 'pending', {stamp}, {stamp});")
    added, activated = _TRIGGERS
    db.execute(f"CREATE TEMP TRIGGER IF NOT EXISTS {added} AFTER INSERT ON main.subscribers "
               f"WHEN NEW.status = 'active' BEGIN {rows} END")
    db.execute(f"CREATE TEMP TRIGGER IF NOT EXISTS {activated} AFTER UPDATE OF status ON main.subscribers "
               f"WHEN NEW.status = 'active' AND OLD.status != 'active' BEGIN {rows} END")
    try:
        yield
    finally:
        for trigger in _TRIGGERS:
            with contextlib.suppress(sqlite3.Error):  # the connection may be closed or broken by now
                db.execute(f"DROP TRIGGER IF EXISTS temp.{trigger}")


def queue_many(config: Config, people: list[tuple[str, str]], store: Store | None = None) -> int:
    """Pending welcomes for (email, name) pairs, in one transaction of the ledger's database (with
    `subscribers.dynamodb_table`: conditional puts in the table, through `store` if it is that table); returns
    how many were new. For a store that is not the ledger's database (after its own write: see
    `queue_activations`)."""
    from .subscribers import write_transaction

    if config.subscribers.dynamodb_table:
        return _dynamodb_queue_many(config, people, store)

    db = connect(config.root / config.subscribers.database)
    try:
        prepare(db)
        stamp = now_text()
        with write_transaction(db):
            return sum(queue(db, email, name, stamp=stamp) for email, name in people)
    finally:
        db.close()


def activate(config: Config, store: Store, email: str) -> bool:
    """Make `email` active (the confirm link's POST) and queue its welcome in the same transaction; True when
    the status changed."""
    if ledger_db(config, store) is not None:
        with queue_activations(config, store):
            return store.set_status(email, "active")
    table = dynamodb_store(config, store)
    if table is not None:
        if not enabled(config):
            return store.set_status(email, "active")
        from .stores import dynamodb_welcome

        return dynamodb_welcome.activate(table, email)  # the status and the row in one transaction
    # Another store (the SES contact list) shares no transaction with the ledger: the row is written right
    # after the status. Still never two welcomes: the row insert is idempotent (UNIQUE (issue, email)), so a
    # repeat (a retried request, a second click: `requeue`) adds nothing. A crash between the two writes leaves
    # the address active without a row: its next click of the link writes it (`requeue`), else it gets none.
    changed = store.set_status(email, "active")
    if enabled(config):
        found = store.get(email)
        if found is not None and found.status == "active":
            queue_many(config, [(found.email, found.name)])
    return changed


def requeue(config: Config, store: Store, email: str) -> bool:
    """For a store that is not the ledger's database only: the welcome of an address that is active already (a
    second click of the confirm link), in case a crash came between its activation and the row. Idempotent: an
    address that had its row keeps it and gets nothing more. Nothing for the SQLite store, where the row is
    written with the activation or not at all (so an address made active before `_welcome.md` existed, or by an
    import without --welcome, is not welcomed by a stray click). Nothing for the DynamoDB store either: its
    activation writes the row in the same transaction."""
    if ledger_db(config, store) is not None or dynamodb_store(config, store) is not None or not enabled(config):
        return False
    found = store.get(email)
    if found is None or found.status != "active":
        return False
    return queue_many(config, [(found.email, found.name)]) == 1


# ---- sending ----


def _waiting(db: sqlite3.Connection) -> dict[str, int]:
    """The welcome rows by state, without creating anything (an empty dict when there is no ledger yet)."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'").fetchone() is None:
        return {}
    rows = db.execute("SELECT state, count(*) FROM deliveries WHERE issue = ? GROUP BY state", (SLUG,)).fetchall()
    return {state: n for state, n in rows}


def send_pending(config: Config, transport: Transport | None = None, *, now: datetime | None = None,
                 secret: bytes | None = None, limit: int | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 stop: threading.Event | None = None, only: list[str] | None = None) -> SendReport:
    """Send every pending welcome (through `transport`, default `email.transport`: `outbox/_welcome/`), with
    the issues' send loop: rate limit, retries, ledger. Safe to run at any time and in several processes at once
    (`serve` after each confirmation and at its start, `publish --due`, `run`): a row is claimed before it is
    sent, so each goes out once. A transport given is not closed (it may be shared); one made here is.

    A row left `sending` by a killed process may have gone out: it is counted as sent, with a warning, never
    sent again. Without `content/_welcome.md`, the pending rows wait (`report.remaining`). With
    `subscribers.dynamodb_table` the rows are the DynamoDB ledger's (see the module's docstring).

    `only` (DynamoDB): send the welcomes of these addresses alone, reading their rows with one BatchGetItem per
    100 instead of the whole `_welcome` partition, which grows with every subscriber ever welcomed (the endpoint
    after a confirmation; the sweep at its start and `publish --due` still read it all)."""
    started = clock()
    report = SendReport(issue=SLUG)
    run = dict(transport=transport, now=now, secret=secret, limit=limit, clock=clock, sleep=sleep, stop=stop)
    if config.subscribers.dynamodb_table:
        from .stores import dynamodb_welcome
        from .stores.dynamodb_ledger import DynamoDBLedger

        table = DynamoDBLedger(config)
        try:
            if only is not None:
                for i in range(0, len(only), 100):
                    rows = [row for row in table.rows_of(SLUG, only[i:i + 100]) if row[3] == "pending"]
                    if rows:  # the send item's figures are the sweep's to keep: no record() here
                        _send(config, table.view(SLUG, rows), {"pending": len(rows)}, report, join_status=True,
                              **run)
            else:
                subject_audience = _send(config, table, table.counts(SLUG), report, join_status=True, **run)
                if subject_audience is not None:
                    dynamodb_welcome.record(table._store, *subject_audience)
        finally:
            table.close()
    else:
        database = config.root / config.subscribers.database
        if not database.exists():
            return report
        db = connect(database)
        try:
            waiting = _waiting(db)
            if not (waiting.get("pending") or waiting.get("sending")):  # the common case: no ledger write at all
                report.already_sent = waiting.get("sent", 0)
            else:
                ledger = Ledger(db, database)
                subject_audience = _send(config, ledger, waiting, report, join_status=config.subscribers.in_sqlite,
                                         **run)
                if subject_audience is not None:
                    with ledger.lock:
                        db.execute("UPDATE issue_sends SET subject = ?, audience = ? WHERE issue = ?",
                                   (*subject_audience, SLUG))
        finally:
            db.close()
    report.seconds = clock() - started
    if report.sent or report.failed:
        log.info("welcome: %d sent, %d failed, %d pending", report.sent, report.failed, report.remaining)
    return report


def _send(config: Config, ledger: LedgerStore, waiting: dict[str, int], report: SendReport, *, join_status: bool,
          transport: Transport | None, now: datetime | None, secret: bytes | None, limit: int | None,
          clock: Callable[[], float], sleep: Callable[[float], None],
          stop: threading.Event | None) -> tuple[str, int] | None:
    """One pass over the welcome rows of `ledger` (`waiting`: their counts by state); the (subject, rows) to
    record on the welcome's send, or None when nothing was sent because nothing could be."""
    if not (waiting.get("pending") or waiting.get("sending")):
        report.already_sent = waiting.get("sent", 0)
        return None
    now = now or clock_mod.now()
    rendered = render(config, now=now) if enabled(config) else None
    if rendered is None:
        report.remaining = waiting.get("pending", 0)
        log.warning("%d welcome emails wait for %s, which does not exist", report.remaining,
                    relpath(path(config), config.root))
        return None
    for warning in rendered.warnings:
        log.warning("%s", warning)
    resolved = ledger.resolve_uncertain(SLUG, "sent", "an interrupted send may have sent it: counted as sent "
                                        "(a welcome is never sent twice)")
    if resolved:
        log.warning("%d welcome emails may or may not have gone out (a send was interrupted while sending "
                    "them); they are counted as sent, so no one gets two", resolved)
    before = ledger.counts(SLUG)
    report.audience = sum(before.values())
    report.already_sent = before.get("sent", 0)
    if before.get("pending"):
        factory = MessageFactory(rendered, sender_of(config), secret or secret_from_env(), date=now)
        own = transport is None
        transport = transport or transport_for(config, SLUG)
        try:
            loop = SendLoop(config, rendered, transport, factory, ledger, join_status=join_status, clock=clock,
                            sleep=sleep, stop=stop)
            loop.run(report, limit)
        finally:
            if own:
                transport.close()
    after = ledger.counts(SLUG)
    report.skipped = after.get("skipped", 0) - before.get("skipped", 0)
    report.remaining = after.get("pending", 0)
    report.uncertain = after.get("sending", 0)
    return rendered.subject, sum(after.values())
