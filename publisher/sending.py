"""One issue to many subscribers, exactly once each: the delivery ledger, the rate limit, retries, resume.

The ledger is a table in the newsletter's SQLite database, one row per (issue, subscriber):
`pending` -> `sending` -> `sent` (or `failed`, `skipped`). The first `send` of an issue writes a row for every
active subscriber in one transaction (the audience is a snapshot of that moment); every later run works off the
rows still pending. A worker builds a recipient's message, commits the row as `sending` right before it calls the
transport and as `sent`, with the message id, right after it returned. So a process killed at any point leaves
every row either untouched (sent on the next run), `sent`, or `sending`: the only rows that may have gone out
without being recorded, at most one per worker. Those are never resent silently: `send` reports them and the
user chooses `--resend-uncertain` or `--mark-uncertain-sent`.

Any error with one recipient's message is that recipient's, not the run's: one that cannot be built is `failed`;
a transport error is retried, failed or held as uncertain by its kind (see transports.py). A transport that is
unavailable (no connection, a full disk) is nobody's failure: the whole loop pauses, and stops with the rest
pending if it stays down.

An issue's audience may be a segment of the list (frontmatter `audience:`, or `send --segment`; see audience.py):
the snapshot then takes only the active subscribers whose tags match, in SQL for the SQLite store and through
the same model's Python matcher for another store. The audience is recorded with the snapshot, and a later run
with another audience is refused rather than mixing two lists in one send.

A person forgotten since (privacy.py) has anonymous rows; a recipient whose address hashes to one of the
issue's forgotten rows is skipped, so subscribing again never brings an issue twice.

Unlike listmonk, there is one rate limiter for all workers (the real rate never exceeds `email.rate`), and the
cursor advances per message after the provider accepted it, not per fetched batch.
"""

from __future__ import annotations

import heapq
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from . import clock as clock_mod
from . import markdown, privacy
from .audience import Audience, describe, key_of, parse_segment
from .config import Config
from .content import find_issue, load_issues
from .emails import MessageFactory, Recipient, RenderedEmail, as_test_copy, render_email, sender_of
from .errors import PublisherError
from .subscribers import SqliteStore, Store, connect, migrate, now_text, open_store, write_transaction
from .tokens import secret_from_env
from .transports import (
    FatalError,
    OutboxTransport,
    PermanentError,
    TransientError,
    Transport,
    UnavailableError,
    UncertainError,
    transport_for,
)

log = logging.getLogger(__name__)

LEDGER_VERSION = 1
LEDGER_TABLES = (
    """CREATE TABLE issue_sends (
        issue TEXT PRIMARY KEY,
        subject TEXT NOT NULL,
        audience INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        finished_at TEXT
    )""",
    """CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        issue TEXT NOT NULL REFERENCES issue_sends (issue),
        email TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        message_id TEXT,
        provider_id TEXT,
        last_error TEXT,
        created_at TEXT NOT NULL,
        changed_at TEXT NOT NULL,
        UNIQUE (issue, email)
    )""",
    "CREATE INDEX deliveries_work ON deliveries (issue, state, id)",
)
# The audience of each send, in a table of its own (not a column of issue_sends): a ledger made before segments
# needs no migration, and a send without a row here was to everyone.
SEGMENTS_VERSION = 1
SEGMENT_TABLES = (
    """CREATE TABLE issue_audiences (
        issue TEXT PRIMARY KEY REFERENCES issue_sends (issue),
        audience TEXT NOT NULL  -- Audience.key(); '' for everyone
    )""",
)
MAX_ATTEMPTS = 8
BATCH = 256
# While the transport is unavailable (no connection, a full outbox disk), the loop probes with one message after
# a pause that doubles up to OUTAGE_MAX_PAUSE, and stops with the rest pending once it has been down this long.
OUTAGE_FIRST_PAUSE = 1.0
OUTAGE_MAX_PAUSE = 30.0
OUTAGE_LIMIT = 300.0
IDLE_SLICE = 1.0


class RateLimiter:
    """One token bucket for the whole run (burst of one: messages are spaced evenly), slowed down by half on
    throttling and sped back up slowly (AIMD) while sends succeed."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limit = rate
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self.next = clock()

    def wait(self) -> None:
        if not self.rate:
            return
        now = self.clock()
        if self.next > now:
            self.sleep(self.next - now)
            now = self.next
        self.next = max(now, self.next) + 1.0 / self.rate

    def throttled(self) -> None:
        base = self.rate or 50.0  # an unlimited transport that throttles gets a limit
        self.rate = max(base / 2, 0.1)

    def succeeded(self) -> None:
        if self.rate and (self.limit is None or self.rate < self.limit):
            grown = self.rate * 1.01 + 0.01
            self.rate = grown if self.limit is None else min(self.limit, grown)
            if self.limit is None and self.rate > 10_000:
                self.rate = None


@dataclass
class SendReport:
    issue: str
    audience: int = 0
    sent: int = 0  # in this run
    failed: int = 0
    skipped: int = 0
    uncertain: int = 0  # rows left in `sending` (a read timeout): may have gone out
    already_sent: int = 0  # by earlier runs
    remaining: int = 0  # still pending when the run ended (limit, stop)
    seconds: float = 0.0
    stopped: str | None = None
    dry_run: bool = False
    preview: list[str] = field(default_factory=list)
    segment: str = "everyone"  # who the audience is, in words (audience.describe)
    selected: int = 0  # --dry-run: the active subscribers the audience selects now
    active: int = 0  # --dry-run: all active subscribers now
    queue: str | None = None  # a fan-out send: the SQS queue its batches went to (fanout.py)
    queued: int = 0  # recipients this run queued there
    batches: int = 0  # in that many messages

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    @property
    def segment_line(self) -> str:
        """E.g. "audience: any of zh, en, none of paused: 4,120 of 10,000 active subscribers"."""
        return f"audience: {self.segment}: {self.selected:,} of {self.active:,} active subscribers"


Progress = Callable[[int, int], None]


class LedgerStore(Protocol):
    """What SendLoop and send_issue need of a delivery ledger: `Ledger` (SQLite, below) or, with
    `[subscribers] dynamodb_table`, `publisher.stores.dynamodb_ledger.DynamoDBLedger`. A row is an integer handle
    that `pending` hands out (ordered as the ledger reads them) and the other row methods take back."""

    def started(self, issue: str) -> bool: ...
    def audience_key(self, issue: str) -> str: ...
    def snapshot(self, issue: str, subject: str, store: Store, audience: Audience | None = None, *,
                 now: datetime | None = None) -> int: ...
    def counts(self, issue: str) -> dict[str, int]: ...
    def uncertain(self, issue: str, limit: int = 5) -> list[str]: ...
    def resolve_uncertain(self, issue: str, state: str, note: str) -> int: ...
    def pending(self, issue: str, after: int, join_status: bool) -> list[tuple[int, str, str, str | None, int]]: ...
    def mark(self, row: int, state: str, **fields: object) -> None: ...
    def claim(self, row: int) -> bool: ...
    def release(self, row: int, error: str) -> None: ...
    def fail_unclaimed(self, row: int, error: str) -> bool: ...
    def forgotten(self, issue: str) -> set[str]: ...
    def finish(self, issue: str, sent: int | None = None) -> None: ...


class Ledger:
    """The delivery rows of the newsletter's database. The send loop's workers write their own rows, so every
    statement goes through one lock (one connection, shared by the threads)."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db = db
        self.path = path
        self.lock = threading.Lock()
        migrate(db, "ledger", LEDGER_VERSION, LEDGER_TABLES)
        migrate(db, "segments", SEGMENTS_VERSION, SEGMENT_TABLES)

    def _execute(self, sql: str, args: tuple[object, ...] = ()) -> int:
        """A write; returns the number of rows it changed."""
        with self.lock:
            return self.db.execute(sql, args).rowcount

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        # Fetched under the lock: a half-read SELECT would hold the other threads' writes in its transaction.
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def started(self, issue: str) -> bool:
        return bool(self._query("SELECT 1 FROM issue_sends WHERE issue = ?", (issue,)))

    def audience_key(self, issue: str) -> str:
        """The audience a started send was snapshot with (Audience.key(); '' for everyone)."""
        rows = self._query("SELECT audience FROM issue_audiences WHERE issue = ?", (issue,))
        return str(rows[0][0]) if rows else ""

    def snapshot(self, issue: str, subject: str, store: Store, audience: Audience | None = None, *,
                 now: datetime | None = None) -> int:
        """Write a pending row for every active subscriber in `audience` (None: everyone) who is not paused at
        `now` (the send's time; default the clock's), atomically; returns the audience size."""
        stamp = now_text()
        at = iso_time(now or clock_mod.now())
        with self.lock, write_transaction(self.db):
            self.db.execute("INSERT INTO issue_sends (issue, subject, audience, created_at) VALUES (?, ?, 0, ?)",
                            (issue, subject, stamp))
            self.db.execute("INSERT INTO issue_audiences (issue, audience) VALUES (?, ?)", (issue, key_of(audience)))
            if isinstance(store, SqliteStore) and store.path.resolve() == self.path.resolve():
                where, args = audience.sql("subscribers.tags") if audience else ("1", [])
                self.db.execute(
                    "INSERT INTO deliveries (issue, email, name, state, created_at, changed_at) "
                    f"SELECT ?, email, name, 'pending', ?, ? FROM subscribers WHERE status = 'active' AND ({where}) "
                    "AND paused_until <= ? ORDER BY id", (issue, stamp, stamp, *args, at))
            else:  # another store: stream it in, through the same audience's Python matcher
                rows = ((issue, s.email, s.name, stamp, stamp) for s in store.iter("active")
                        if (audience is None or audience.matches(s.tags)) and not s.paused_at(at))
                self.db.executemany("INSERT OR IGNORE INTO deliveries (issue, email, name, state, created_at, "
                                    "changed_at) VALUES (?, ?, ?, 'pending', ?, ?)", rows)
            audience = self.db.execute("SELECT count(*) FROM deliveries WHERE issue = ?", (issue,)).fetchone()[0]
            self.db.execute("UPDATE issue_sends SET audience = ? WHERE issue = ?", (audience, issue))
        return int(audience)

    def counts(self, issue: str) -> dict[str, int]:
        rows = self._query("SELECT state, count(*) FROM deliveries WHERE issue = ? GROUP BY state", (issue,))
        return {state: n for state, n in rows}

    def uncertain(self, issue: str, limit: int = 5) -> list[str]:
        rows = self._query("SELECT email FROM deliveries WHERE issue = ? AND state = 'sending' ORDER BY id LIMIT ?",
                           (issue, limit))
        return [r[0] for r in rows]

    def resolve_uncertain(self, issue: str, state: str, note: str) -> int:
        return self._execute("UPDATE deliveries SET state = ?, last_error = ?, changed_at = ? "
                             "WHERE issue = ? AND state = 'sending'", (state, note, now_text(), issue))

    def pending(self, issue: str, after: int, join_status: bool) -> list[tuple[int, str, str, str | None, int]]:
        """The next pending rows after `after`: (id, email, name, subscriber's current status, attempts)."""
        if join_status:
            query = ("SELECT d.id, d.email, d.name, s.status, d.attempts FROM deliveries d "
                     "LEFT JOIN subscribers s ON s.email = d.email "
                     "WHERE d.issue = ? AND d.state = 'pending' AND d.id > ? ORDER BY d.id LIMIT ?")
        else:
            query = ("SELECT id, email, name, 'active', attempts FROM deliveries "
                     "WHERE issue = ? AND state = 'pending' AND id > ? ORDER BY id LIMIT ?")
        return self._query(query, (issue, after, BATCH))

    def mark(self, row: int, state: str, **fields: object) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        extra = f", {sets}" if sets else ""
        self._execute(f"UPDATE deliveries SET state = ?, changed_at = ?{extra} WHERE id = ?",
                      (state, now_text(), *fields.values(), row))

    def claim(self, row: int) -> bool:
        """`sending`, committed right before the transport is called. False if another process took the row
        first: the WHERE makes two concurrent senders' claims of one row hit it once."""
        return self._execute("UPDATE deliveries SET state = 'sending', attempts = attempts + 1, changed_at = ? "
                             "WHERE id = ? AND state = 'pending'", (now_text(), row)) == 1

    def release(self, row: int, error: str) -> None:
        """Back to pending without counting the attempt: the message never went out, through no fault of the
        recipient's (the service was unavailable, or the run is stopping)."""
        self._execute("UPDATE deliveries SET state = 'pending', attempts = max(attempts - 1, 0), last_error = ?, "
                      "changed_at = ? WHERE id = ? AND state = 'sending'", (error, now_text(), row))

    def fail_unclaimed(self, row: int, error: str) -> bool:
        """`failed` for a row never handed to the transport (its message could not be built); False if another
        process took the row meanwhile."""
        return self._execute("UPDATE deliveries SET state = 'failed', last_error = ?, changed_at = ? "
                             "WHERE id = ? AND state = 'pending'", (error, now_text(), row)) == 1

    def forgotten(self, issue: str) -> set[str]:
        with self.lock:
            return privacy.forgotten_rows(self.db, issue)

    def finish(self, issue: str, sent: int | None = None) -> None:  # the count is in the rows already
        self._execute("UPDATE issue_sends SET finished_at = ? WHERE issue = ? AND finished_at IS NULL",
                      (now_text(), issue))


@dataclass
class _Job:
    row: int
    email: str
    name: str
    attempts: int


@dataclass
class _Outcome:
    """What a worker did with one job (it has written the row already): sent, retry, failed, uncertain,
    unavailable, fatal, or untouched (not claimed: the run is stopping or another `send` has the row)."""

    kind: str
    error: str = ""
    failure: bool = False  # counts toward email.max_consecutive_failures
    reached: bool = True  # the transport answered (so it is not unavailable)


@dataclass
class _Outage:
    since: float
    pause: float
    resume_at: float


class SendLoop:
    """Sends one rendered issue through one transport, keeping the ledger."""

    def __init__(self, config: Config, rendered: RenderedEmail, transport: Transport, factory: MessageFactory,
                 ledger: LedgerStore, *, join_status: bool, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, progress: Progress | None = None,
                 stop: threading.Event | None = None, limiter: Any = None) -> None:
        self.config = config
        self.stop = stop
        self.slug = rendered.issue.slug
        self.transport = transport
        self.factory = factory
        self.ledger = ledger
        self.join_status = join_status
        self.clock = clock
        self.sleep = sleep
        self.progress = progress
        rate = config.email.rate or transport.default_rate()
        # A worker of a fan-out passes its own: one rate across its batches, or shared with other workers.
        self.limiter = limiter or RateLimiter(rate, clock, sleep)
        self.sender_address = factory.sender.address
        self._halt = threading.Event()  # set when the run stops: workers claim nothing more
        self._outage: _Outage | None = None
        self._consecutive = 0

    def _attempt(self, job: _Job) -> _Outcome:
        """One recipient, on a worker thread: build the message, claim the row, hand the message over, record
        the outcome. A row is `sending` only between its claim and its record (one per worker at most), so a
        crash leaves uncertain only what may really have gone out."""
        if self._halt.is_set():
            return _Outcome("untouched")
        recipient = Recipient(job.email, job.name)
        try:
            message = self.factory.message(recipient)
            message_id = self.factory.message_id(recipient)
        except Exception as exc:
            # Whatever breaks while building one recipient's message (an address it cannot encode, from an old
            # or tampered database; a fill-in that fails) breaks again on a retry: that recipient failed, the run
            # goes on. Nothing was handed over, so it is certain that nothing went out.
            error = f"cannot build the message: {type(exc).__name__}: {exc}"
            if not self.ledger.fail_unclaimed(job.row, error):
                return _Outcome("untouched")
            return _Outcome("failed", error, failure=True, reached=False)
        if self._halt.is_set() or not self.ledger.claim(job.row):
            return _Outcome("untouched")  # another `send` of this issue took the row: never two copies
        try:
            provider_id = self.transport.send(message, sender=self.sender_address, recipient=job.email,
                                              message_id=message_id, number=job.row)
        except UnavailableError as exc:  # not this recipient's attempt: the loop pauses instead
            self.ledger.release(job.row, str(exc))
            return _Outcome("unavailable", str(exc), reached=False)
        except TransientError as exc:
            job.attempts += 1
            if job.attempts >= MAX_ATTEMPTS:
                self.ledger.mark(job.row, "failed", last_error=f"gave up after {job.attempts} attempts: {exc}")
                return _Outcome("failed", str(exc), failure=True)
            self.ledger.mark(job.row, "pending", last_error=str(exc))
            return _Outcome("retry", str(exc))
        except PermanentError as exc:
            self.ledger.mark(job.row, "failed", last_error=str(exc))
            return _Outcome("failed", str(exc), failure=True)
        except UncertainError as exc:
            self.ledger.mark(job.row, "sending", last_error=str(exc))
            return _Outcome("uncertain", str(exc))
        except FatalError as exc:
            self._halt.set()  # no message can go: the other workers start none
            self.ledger.release(job.row, str(exc))
            return _Outcome("fatal", str(exc), reached=False)
        except Exception as exc:
            # A transport maps every failure it understands to the errors above, and raises TransientError only
            # when the message was not handed over. Anything else is a bug at an unknown point, possibly after
            # the provider took the message (while reading its answer, say): uncertain, like a read timeout, so
            # the row stays `sending` for the user to resolve and is never resent silently. It counts as a
            # failure too: a transport that breaks on every message stops the run after
            # max_consecutive_failures instead of making the whole list uncertain.
            error = f"unexpected error in the {self.transport.name} transport: {type(exc).__name__}: {exc}"
            self.ledger.mark(job.row, "sending", last_error=error)
            return _Outcome("uncertain", error, failure=True)
        self.ledger.mark(job.row, "sent", message_id=message_id, provider_id=provider_id, last_error=None)
        return _Outcome("sent")

    def run(self, report: SendReport, limit: int | None) -> None:
        workers = self.config.email.workers
        retries: list[tuple[float, int, _Job]] = []  # (due, row, job): pending rows to try again after `due`
        inflight: dict[Future[_Outcome], _Job] = {}
        budget = limit if limit is not None else float("inf")
        started_total = report.sent
        todo = self.ledger.counts(self.slug).get("pending", 0)
        total = min(todo, int(budget)) if limit is not None else todo
        rows: Iterator[_Job] = self._rows()
        exhausted = False
        pool = ThreadPoolExecutor(workers, thread_name_prefix="send")
        try:
            while True:
                if self.stop is not None and self.stop.is_set() and report.stopped is None:
                    report.stopped = "stopped on request; the rest is sent by the next run"
                if report.stopped is not None:
                    self._halt.set()
                # Up to 2x workers jobs queued or running, so no worker waits for its next one; the rate limiter
                # spaces their start. A queued job's row is still `pending`: its worker claims it.
                while len(inflight) < workers * 2 and budget > 0 and report.stopped is None:
                    if self._outage is not None and (inflight or self.clock() < self._outage.resume_at):
                        break  # the transport is unavailable: one probe at a time, after the pause
                    job = None
                    if retries and retries[0][0] <= self.clock():
                        job = heapq.heappop(retries)[2]
                    elif not exhausted:
                        job = next(rows, None)
                        exhausted = job is None
                    if job is None:
                        break
                    self.limiter.wait()
                    budget -= 1
                    inflight[pool.submit(self._attempt, job)] = job
                if not inflight:
                    wake = self._outage.resume_at if self._outage else (retries[0][0] if retries else None)
                    if wake is None or report.stopped is not None or budget <= 0:
                        break
                    # In slices, so a stop request is seen within a second even during a long back-off.
                    self.sleep(min(IDLE_SLICE, max(0.0, wake - self.clock())))
                    continue
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for future in done:
                    job = inflight.pop(future)
                    budget += self._count(future.result(), job, retries, report)
                    if self.progress:
                        self.progress(report.sent - started_total + report.failed + report.skipped, total)
        except BaseException:
            # The ledger cannot be written, or an interrupt: start nothing more. Each worker has recorded (or
            # records) its own row, so no row known to be sent stays `sending`; queued rows stay `pending`.
            self._halt.set()
            for future in inflight:
                future.cancel()
            raise
        finally:
            pool.shutdown(wait=True)
        # Rows whose retry was still waiting stay pending in the ledger: the next run sends them.

    def _count(self, outcome: _Outcome, job: _Job, retries: list[tuple[float, int, _Job]],
               report: SendReport) -> int:
        """Accounts for one finished job; returns the budget it gives back (a message that did not go out)."""
        kind = outcome.kind
        if outcome.reached and kind != "untouched":
            self._outage = None  # the transport answered: it is up again
        if kind == "sent":
            report.sent += 1
            self._consecutive = 0
            self.limiter.succeeded()
            return 0
        if kind == "retry":
            self.limiter.throttled()
            delay = min(60.0, 0.5 * 2 ** (job.attempts - 1))
            heapq.heappush(retries, (self.clock() + delay, job.row, job))
            return 1  # a retry is the same message, not a new one
        if kind == "unavailable":
            now = self.clock()
            if self._outage is None:
                self._outage = _Outage(now, OUTAGE_FIRST_PAUSE, now + OUTAGE_FIRST_PAUSE)
            elif now >= self._outage.resume_at:  # a probe failed (not one of the jobs already out when it began)
                self._outage.pause = min(OUTAGE_MAX_PAUSE, self._outage.pause * 2)
                self._outage.resume_at = now + self._outage.pause
            heapq.heappush(retries, (now, job.row, job))
            down = now - self._outage.since
            if down >= OUTAGE_LIMIT and report.stopped is None:
                report.stopped = (f"the {self.transport.name} transport has been unavailable for {down:.0f} s "
                                  f"({outcome.error}); the rest is sent by the next run")
            return 1
        if kind in ("fatal", "untouched"):
            if kind == "fatal" and report.stopped is None:
                report.stopped = outcome.error
            return 1
        if kind == "failed":
            report.failed += 1
        elif kind == "uncertain":
            report.uncertain += 1
        if outcome.failure:
            self._consecutive += 1
            if self._consecutive >= self.config.email.max_consecutive_failures and report.stopped is None:
                report.stopped = (f"stopped after {self._consecutive} failures in a row (the last: {job.email}: "
                                  f"{outcome.error})")
        return 0

    def _rows(self) -> Iterator[_Job]:
        after = 0
        # Hashes are computed only when the issue has forgotten rows (nearly never): see privacy.py.
        forgotten = self.ledger.forgotten(self.slug)
        while True:
            batch = self.ledger.pending(self.slug, after, self.join_status)
            if not batch:
                return
            for row, email, name, status, attempts in batch:
                after = row
                if status != "active":  # unsubscribed, bounced or complained since the audience was taken
                    self.ledger.mark(row, "skipped", last_error=f"subscriber is {status or 'gone'}")
                    continue
                if privacy.was_forgotten(email, forgotten, self.factory.secret):
                    self.ledger.mark(row, "skipped", last_error="had this issue before being forgotten")
                    continue
                yield _Job(row, email, name, attempts)


def send_issue(config: Config, slug: str, *, transport: Transport | None = None, store: Store | None = None,
               limit: int | None = None, dry_run: bool = False, test_to: str | None = None,
               resend_uncertain: bool = False, mark_uncertain_sent: bool = False, now: datetime | None = None,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
               progress: Progress | None = None, secret: bytes | None = None,
               stop: threading.Event | None = None, segment: str | Audience | None = None,
               fanout: str | None = None, queue: str | None = None, requeue: bool = False) -> SendReport:
    """Send issue `slug` to every active subscriber in its audience who has not had it yet.

    `segment` (an Audience, or its YAML flow text as `send --segment` takes it) overrides the issue's
    `audience:` for this send. A send that has started keeps the audience it started with: another one is
    refused.

    `fanout="sqs"` (default: `email.fanout`) queues the recipients for workers instead of sending them here
    (fanout.py); `queue` overrides `email.queue_url`, and `requeue` queues again every row still pending."""
    started = clock()
    now = now or clock_mod.now()
    fanout = fanout or config.email.fanout
    if fanout == "sqs" and test_to is None:
        queue = _fanout_queue(config, queue, limit)
    issues = load_issues(config)
    issue = find_issue(issues, slug)
    if test_to is None:
        if issue.draft:
            raise PublisherError(f"{slug} is a draft", hint="remove `draft: true` first, or use --test ADDR")
        if issue.is_future(now):
            raise PublisherError(f"{slug} is scheduled for {issue.date.isoformat()}",
                                 hint="it is sent when its time comes (publisher publish --due), or use --test ADDR")
        if not issue.send:
            raise PublisherError(f"{slug} has `send: false` in its frontmatter", hint="it is published, not emailed")
    rendered = render_email(config, issue, markdown.to_html(issue.body),
                            pages={str(i.path): i.url_path for i in issues})
    factory = MessageFactory(rendered, sender_of(config), secret or secret_from_env(), date=now)
    report = SendReport(issue=slug, dry_run=dry_run)
    audience = parse_segment(segment) if isinstance(segment, str) else segment if segment else issue.segment
    report.segment = describe(audience)
    own_store = store is None  # a store opened here is closed here
    store = store or open_store(config)
    try:
        if test_to is not None:
            from .subscribers import normalize_email

            try:
                address = normalize_email(test_to)
            except ValueError as exc:
                raise PublisherError(str(exc), field="--test") from None
            if transport is None:
                outbox = config.email.transport == "outbox"
                transport = OutboxTransport(config.root / config.email.outbox, slug, test=True) if outbox \
                    else transport_for(config, slug)
            factory = MessageFactory(as_test_copy(config, rendered), factory.sender, factory.secret, date=now,
                                     id_salt=f"test {now.isoformat()}")
            try:
                transport.send(factory.message(Recipient(address)), sender=factory.sender.address, recipient=address,
                               message_id=factory.message_id(Recipient(address)), number=0)
            except (TransientError, PermanentError, UncertainError, FatalError) as exc:
                raise PublisherError(f"the test message to {address} failed: {exc}") from None
            finally:
                transport.close()
            report.sent = 1
            report.seconds = clock() - started
            return report

        ledger, close_ledger = _open_ledger(config)
        try:
            if ledger.started(slug):
                _same_audience(ledger, slug, audience)
            if dry_run:
                report.selected, report.active = count_audience(store, audience, now=now)
                counts = ledger.counts(slug) if ledger.started(slug) else {"pending": report.selected}
                report.audience = sum(counts.values())
                report.remaining = counts.get("pending", 0)
                report.already_sent = counts.get("sent", 0)
                report.preview = _preview(factory, store, ledger, slug, audience, now=now)
                report.seconds = clock() - started
                return report
            if not ledger.started(slug):
                ledger.snapshot(slug, rendered.subject, store, audience, now=now)
            uncertain = ledger.counts(slug).get("sending", 0)
            if uncertain and fanout == "sqs" and test_to is None:
                uncertain = _fanout_uncertain(queue, uncertain, resend_uncertain or mark_uncertain_sent)  # type: ignore[arg-type]
            if uncertain:
                if resend_uncertain:
                    ledger.resolve_uncertain(slug, "pending", "resent by --resend-uncertain")
                elif mark_uncertain_sent:
                    ledger.resolve_uncertain(slug, "sent", "marked sent by --mark-uncertain-sent")
                else:
                    sample = ", ".join(ledger.uncertain(slug))
                    raise PublisherError(
                        f"{uncertain} messages of {slug} may or may not have gone out (an earlier run stopped while "
                        f"sending them: {sample}{', ...' if uncertain > 5 else ''})",
                        hint="run again with --mark-uncertain-sent (no one gets two copies, some may get none) or "
                        "--resend-uncertain (everyone gets one, some may get two)")
            before = ledger.counts(slug)
            report.audience = sum(before.values())
            report.already_sent = before.get("sent", 0)
            if fanout == "sqs" and test_to is None:
                from .fanout import enqueue

                report.queue = queue
                report.queued, report.batches = enqueue(ledger, slug, queue, requeue=requeue,  # type: ignore[arg-type]
                                                        sleep=sleep)
                report.remaining = before.get("pending", 0)
                if not report.remaining and not before.get("sending", 0):
                    ledger.finish(slug, sent=before.get("sent", 0))
                report.seconds = clock() - started
                return report
            transport = transport or transport_for(config, slug)
            try:
                loop = SendLoop(config, rendered, transport, factory, ledger,
                                join_status=isinstance(store, SqliteStore) or _same_table(ledger, store),
                                clock=clock, sleep=sleep,
                                progress=progress, stop=stop)
                loop.run(report, limit)
            finally:
                transport.close()
            after = ledger.counts(slug)
            report.skipped = after.get("skipped", 0) - before.get("skipped", 0)
            report.remaining = after.get("pending", 0)
            report.uncertain = after.get("sending", 0)
            if not report.remaining and not report.uncertain:
                ledger.finish(slug, sent=after.get("sent", 0))
        finally:
            close_ledger()
        report.seconds = clock() - started
        return report
    finally:
        if own_store:
            store.close()


def iso_time(when: datetime) -> str:
    """`when` as the stores write times (`clock.iso()`): UTC to the second, comparable as text."""
    return when.astimezone(UTC).isoformat(timespec="seconds")


def _open_ledger(config: Config) -> tuple[LedgerStore, Callable[[], None]]:
    """The ledger send_issue keeps, and how to close it: in the DynamoDB table with `subscribers.dynamodb_table`,
    else in the SQLite database (welcome.py and report.py stay on SQLite)."""
    if config.subscribers.dynamodb_table:
        from .stores.dynamodb_ledger import DynamoDBLedger

        table = DynamoDBLedger(config)
        return table, table.close
    path = config.root / config.subscribers.database
    db = connect(path)
    try:
        return Ledger(db, path), db.close
    except BaseException:
        db.close()
        raise


def _fanout_queue(config: Config, queue: str | None, limit: int | None) -> str:
    """The queue of a fan-out send, checked before anything is written."""
    from .fanout import queue_of

    if not config.subscribers.dynamodb_table:
        raise PublisherError("sending through SQS workers needs the delivery ledger in DynamoDB, which every "
                             "worker shares", file=config.file.name, field="subscribers.dynamodb_table",
                             hint="set [subscribers] dynamodb_table (`publisher subscribers migrate --to dynamodb`), "
                                  "or send from this process (no --workers sqs)")
    if limit is not None:
        raise PublisherError("--limit is for a send from this process; workers send every queued batch",
                             field="--limit", hint="leave out --limit, or --workers sqs")
    return queue_of(config, queue)


def _fanout_uncertain(queue: str, sending: int, resolving: bool) -> int:
    """The rows of a fan-out send that are really uncertain: none while workers hold batches of the queue (a row
    they are sending is `sending` too, for a moment), else all `sending` ones."""
    from .fanout import in_flight

    busy = in_flight(queue)
    if not busy:
        return sending
    if resolving:
        raise PublisherError(f"workers are sending {busy} batches from {queue} right now: the {sending} rows in "
                             "`sending` may be theirs, not uncertain", field="--resend-uncertain",
                             hint="wait until the queue is empty (publisher report shows the counts), then run again")
    return 0


def _same_table(ledger: LedgerStore, store: Store) -> bool:
    """A DynamoDB ledger in the table of a DynamoDB store: the loop reads each row's current status from it."""
    from .stores.dynamodb import DynamoDBStore

    return isinstance(store, DynamoDBStore) and getattr(ledger, "table", None) == store.table


def _same_audience(ledger: LedgerStore, slug: str, audience: Audience | None) -> None:
    """Refuses to go on with a started send under another audience: its snapshot is the one list it sends to."""
    started_with = ledger.audience_key(slug)
    if started_with == key_of(audience):
        return
    before = Audience.from_key(started_with) if started_with else None
    again = f"--segment '{started_with}'" if started_with else "the audience removed (no --segment, no audience:)"
    raise PublisherError(f"the send of {slug} started with the audience {describe(before)}, and this run asks for "
                         f"{describe(audience)}", field="audience",
                         hint=f"finish that send first: run it again with {again}; a started send never mixes "
                              "two audiences")


def count_audience(store: Store, audience: Audience | None, *, now: datetime | None = None) -> tuple[int, int]:
    """(active subscribers the audience selects, all active subscribers): counted in SQL for the SQLite store,
    with the audience's Python matcher for another. With `now`, the selected leave out those paused then."""
    active = store.count("active")
    if audience is None and now is None:
        return active, active
    at = iso_time(now) if now is not None else ""
    if isinstance(store, SqliteStore):
        where, args = audience.sql("subscribers.tags") if audience else ("1", [])
        paused = " AND paused_until <= ?" if at else ""
        row = store.db.execute(f"SELECT count(*) FROM subscribers WHERE status = 'active' AND ({where}){paused}",
                               (*args, at) if at else args).fetchone()
        return int(row[0]), active
    return sum(1 for s in store.iter("active") if (audience is None or audience.matches(s.tags))
               and not (at and s.paused_at(at))), active


def _preview(factory: MessageFactory, store: Store, ledger: LedgerStore, slug: str, audience: Audience | None = None,
             n: int = 3, *, now: datetime | None = None) -> list[str]:
    """The headers of the first messages, for --dry-run."""
    from email import message_from_bytes, policy

    if ledger.started(slug):
        rows = ledger.pending(slug, 0, False)[:n]
        people = [Recipient(email, name) for _, email, name, _, _ in rows]
    else:
        people = []
        for subscriber in store.iter("active"):
            if audience is not None and not audience.matches(subscriber.tags):
                continue
            if now is not None and subscriber.paused_at(iso_time(now)):
                continue
            people.append(Recipient(subscriber.email, subscriber.name))
            if len(people) >= n:
                break
    out = []
    for person in people:
        message = message_from_bytes(factory.message(person), policy=policy.default)
        out.append("\n".join(f"{k}: {v}" for k, v in message.items() if k != "Content-Type"))
    return out
