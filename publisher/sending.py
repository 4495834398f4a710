"""One issue to many subscribers, exactly once each: the delivery ledger, the rate limit, retries, resume.

The ledger is a table in the newsletter's SQLite database, one row per (issue, subscriber):
`pending` -> `sending` -> `sent` (or `failed`, `skipped`). The first `send` of an issue writes a row for every
active subscriber in one transaction (the audience is a snapshot of that moment); every later run works off the
rows still pending. A row is committed as `sending` before the transport is called and as `sent`, with the
message id, after it returned. So a process killed at any point leaves every row either untouched (sent on the
next run), `sent`, or `sending`: the only rows that may have gone out without being recorded. Those are never
resent silently: `send` reports them and the user chooses `--resend-uncertain` or `--mark-uncertain-sent`.

Unlike listmonk, there is one rate limiter for all workers (the real rate never exceeds `email.rate`), and the
cursor advances per message after the provider accepted it, not per fetched batch.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from . import clock as clock_mod
from . import markdown
from .config import Config
from .content import find_issue, load_issues
from .emails import MessageFactory, Recipient, RenderedEmail, render_email, sender_of
from .errors import PublisherError
from .subscribers import SqliteStore, Store, connect, migrate, now_text, open_store, write_transaction
from .tokens import secret_from_env
from .transports import FatalError, PermanentError, TransientError, Transport, UncertainError, transport_for

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
MAX_ATTEMPTS = 8
BATCH = 256


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

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


Progress = Callable[[int, int], None]


class Ledger:
    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db = db
        self.path = path
        migrate(db, "ledger", LEDGER_VERSION, LEDGER_TABLES)

    def started(self, issue: str) -> bool:
        return self.db.execute("SELECT 1 FROM issue_sends WHERE issue = ?", (issue,)).fetchone() is not None

    def snapshot(self, issue: str, subject: str, store: Store) -> int:
        """Write a pending row for every active subscriber, atomically; returns the audience size."""
        stamp = now_text()
        with write_transaction(self.db):
            self.db.execute("INSERT INTO issue_sends (issue, subject, audience, created_at) VALUES (?, ?, 0, ?)",
                            (issue, subject, stamp))
            if isinstance(store, SqliteStore) and store.path.resolve() == self.path.resolve():
                self.db.execute(
                    "INSERT INTO deliveries (issue, email, name, state, created_at, changed_at) "
                    "SELECT ?, email, name, 'pending', ?, ? FROM subscribers WHERE status = 'active' ORDER BY id",
                    (issue, stamp, stamp))
            else:  # another store: stream it in
                rows = ((issue, s.email, s.name, stamp, stamp) for s in store.iter("active"))
                self.db.executemany("INSERT OR IGNORE INTO deliveries (issue, email, name, state, created_at, "
                                    "changed_at) VALUES (?, ?, ?, 'pending', ?, ?)", rows)
            audience = self.db.execute("SELECT count(*) FROM deliveries WHERE issue = ?", (issue,)).fetchone()[0]
            self.db.execute("UPDATE issue_sends SET audience = ? WHERE issue = ?", (audience, issue))
        return int(audience)

    def counts(self, issue: str) -> dict[str, int]:
        rows = self.db.execute("SELECT state, count(*) FROM deliveries WHERE issue = ? GROUP BY state", (issue,))
        return {state: n for state, n in rows}

    def uncertain(self, issue: str, limit: int = 5) -> list[str]:
        rows = self.db.execute("SELECT email FROM deliveries WHERE issue = ? AND state = 'sending' ORDER BY id LIMIT ?",
                               (issue, limit))
        return [r[0] for r in rows]

    def resolve_uncertain(self, issue: str, state: str, note: str) -> int:
        return self.db.execute("UPDATE deliveries SET state = ?, last_error = ?, changed_at = ? "
                               "WHERE issue = ? AND state = 'sending'", (state, note, now_text(), issue)).rowcount

    def pending(self, issue: str, after: int, join_status: bool) -> list[tuple[int, str, str, str | None, int]]:
        """The next pending rows after `after`: (id, email, name, subscriber's current status, attempts)."""
        if join_status:
            query = ("SELECT d.id, d.email, d.name, s.status, d.attempts FROM deliveries d "
                     "LEFT JOIN subscribers s ON s.email = d.email "
                     "WHERE d.issue = ? AND d.state = 'pending' AND d.id > ? ORDER BY d.id LIMIT ?")
        else:
            query = ("SELECT id, email, name, 'active', attempts FROM deliveries "
                     "WHERE issue = ? AND state = 'pending' AND id > ? ORDER BY id LIMIT ?")
        return self.db.execute(query, (issue, after, BATCH)).fetchall()

    def mark(self, row: int, state: str, **fields: object) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        extra = f", {sets}" if sets else ""
        self.db.execute(f"UPDATE deliveries SET state = ?, changed_at = ?{extra} WHERE id = ?",
                        (state, now_text(), *fields.values(), row))

    def claim(self, row: int) -> bool:
        """`sending`, committed before the transport is called. False if another process took the row first."""
        cursor = self.db.execute("UPDATE deliveries SET state = 'sending', attempts = attempts + 1, changed_at = ? "
                                 "WHERE id = ? AND state = 'pending'", (now_text(), row))
        return cursor.rowcount == 1

    def finish(self, issue: str) -> None:
        self.db.execute("UPDATE issue_sends SET finished_at = ? WHERE issue = ? AND finished_at IS NULL",
                        (now_text(), issue))


@dataclass
class _Job:
    row: int
    email: str
    name: str
    attempts: int


class SendLoop:
    """Sends one rendered issue through one transport, keeping the ledger."""

    def __init__(self, config: Config, rendered: RenderedEmail, transport: Transport, factory: MessageFactory,
                 ledger: Ledger, *, join_status: bool, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, progress: Progress | None = None,
                 stop: threading.Event | None = None) -> None:
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
        self.limiter = RateLimiter(rate, clock, sleep)
        self.sender_address = factory.sender.address

    def _send(self, job: _Job) -> str:
        recipient = Recipient(job.email, job.name)
        message = self.factory.message(recipient)
        return self.transport.send(message, sender=self.sender_address, recipient=job.email,
                                   message_id=self.factory.message_id(recipient), number=job.row)

    def run(self, report: SendReport, limit: int | None) -> None:
        workers = self.config.email.workers
        max_failures = self.config.email.max_consecutive_failures
        retries: list[tuple[float, int, _Job]] = []  # (due, row, job): rows pending again after a transient error
        inflight: dict[Future[str], _Job] = {}
        consecutive = 0
        budget = limit if limit is not None else float("inf")
        started_total = report.sent
        todo = self.ledger.counts(self.slug).get("pending", 0)
        total = min(todo, int(budget)) if limit is not None else todo
        rows: Iterator[_Job] = self._rows()
        exhausted = False
        with ThreadPoolExecutor(workers, thread_name_prefix="send") as pool:
            try:
                while True:
                    # Keep up to 2x workers messages in flight; the rate limiter spaces their start.
                    if self.stop is not None and self.stop.is_set() and report.stopped is None:
                        report.stopped = "stopped on request; the rest is sent by the next run"
                    while len(inflight) < workers * 2 and budget > 0 and report.stopped is None:
                        job = None
                        if retries and retries[0][0] <= self.clock():
                            job = heapq.heappop(retries)[2]
                        elif not exhausted:
                            job = next(rows, None)
                            if job is None:
                                exhausted = True
                        if job is None:
                            break
                        if not self.ledger.claim(job.row):
                            continue  # another `send` of this issue has it: never two copies
                        self.limiter.wait()
                        budget -= 1
                        inflight[pool.submit(self._send, job)] = job
                    if not inflight:
                        if retries and report.stopped is None and budget > 0:
                            self.sleep(max(0.0, retries[0][0] - self.clock()))
                            continue
                        break
                    done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                    for future in done:
                        job = inflight.pop(future)
                        outcome = self._record(future, job, retries, report)
                        if outcome == "sent":
                            consecutive = 0
                        elif outcome == "failed":
                            consecutive += 1
                            if consecutive >= max_failures and report.stopped is None:
                                report.stopped = (f"stopped after {consecutive} failures in a row (the last: "
                                                  f"{job.email}: {self._last_error})")
                        elif outcome == "retry":
                            budget += 1  # a retry is the same message, not a new one
                        if self.progress:
                            self.progress(report.sent - started_total + report.failed + report.skipped, total)
            except FatalError as exc:
                report.stopped = str(exc)
                for future, job in inflight.items():  # let the ones already out finish and record them
                    self._record_quietly(future, job, retries, report)
                inflight.clear()
        # Rows whose retry was still waiting stay pending in the ledger: the next run sends them.

    _last_error = ""

    def _rows(self) -> Iterator[_Job]:
        after = 0
        while True:
            batch = self.ledger.pending(self.slug, after, self.join_status)
            if not batch:
                return
            for row, email, name, status, attempts in batch:
                after = row
                if status != "active":  # unsubscribed, bounced or complained since the audience was taken
                    self.ledger.mark(row, "skipped", last_error=f"subscriber is {status or 'gone'}")
                    continue
                yield _Job(row, email, name, attempts)

    def _record(self, future: Future[str], job: _Job, retries: list[tuple[float, int, _Job]],
                report: SendReport) -> str:
        try:
            provider_id = future.result()
        except TransientError as exc:
            job.attempts += 1
            self.limiter.throttled()
            if job.attempts >= MAX_ATTEMPTS:
                self.ledger.mark(job.row, "failed", last_error=f"gave up after {job.attempts} attempts: {exc}")
                report.failed += 1
                self._last_error = str(exc)
                return "failed"
            self.ledger.mark(job.row, "pending", last_error=str(exc))
            delay = min(60.0, 0.5 * 2 ** (job.attempts - 1))
            heapq.heappush(retries, (self.clock() + delay, job.row, job))
            return "retry"
        except PermanentError as exc:
            self.ledger.mark(job.row, "failed", last_error=str(exc))
            report.failed += 1
            self._last_error = str(exc)
            return "failed"
        except UncertainError as exc:
            self.ledger.mark(job.row, "sending", last_error=str(exc))
            report.uncertain += 1
            return "uncertain"
        except FatalError as exc:
            self.ledger.mark(job.row, "pending", last_error=str(exc))  # it never went out
            raise
        self.ledger.mark(job.row, "sent", message_id=self.factory.message_id(Recipient(job.email)),
                         provider_id=provider_id, last_error=None)
        report.sent += 1
        self.limiter.succeeded()
        return "sent"

    def _record_quietly(self, future: Future[str], job: _Job, retries: list[tuple[float, int, _Job]],
                        report: SendReport) -> None:
        with contextlib.suppress(FatalError):  # _record put the row back to pending
            self._record(future, job, retries, report)


def send_issue(config: Config, slug: str, *, transport: Transport | None = None, store: Store | None = None,
               limit: int | None = None, dry_run: bool = False, test_to: str | None = None,
               resend_uncertain: bool = False, mark_uncertain_sent: bool = False, now: datetime | None = None,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
               progress: Progress | None = None, secret: bytes | None = None,
               stop: threading.Event | None = None) -> SendReport:
    """Send issue `slug` to every active subscriber who has not had it yet."""
    started = clock()
    now = now or clock_mod.now()
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
    store = store or open_store(config)
    if test_to is not None:
        from .subscribers import normalize_email

        try:
            address = normalize_email(test_to)
        except ValueError as exc:
            raise PublisherError(str(exc), field="--test") from None
        transport = transport or transport_for(config, slug)
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

    path = config.root / config.subscribers.database
    db = connect(path)
    try:
        ledger = Ledger(db, path)
        if dry_run:
            counts = ledger.counts(slug) if ledger.started(slug) else {"pending": store.count("active")}
            report.audience = sum(counts.values())
            report.remaining = counts.get("pending", 0)
            report.already_sent = counts.get("sent", 0)
            report.preview = _preview(factory, store, ledger, slug)
            report.seconds = clock() - started
            return report
        if not ledger.started(slug):
            ledger.snapshot(slug, rendered.subject, store)
        uncertain = ledger.counts(slug).get("sending", 0)
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
        transport = transport or transport_for(config, slug)
        try:
            loop = SendLoop(config, rendered, transport, factory, ledger, join_status=isinstance(store, SqliteStore),
                            clock=clock, sleep=sleep, progress=progress, stop=stop)
            loop.run(report, limit)
        finally:
            transport.close()
        after = ledger.counts(slug)
        report.skipped = after.get("skipped", 0) - before.get("skipped", 0)
        report.remaining = after.get("pending", 0)
        report.uncertain = after.get("sending", 0)
        if not report.remaining and not report.uncertain:
            ledger.finish(slug)
    finally:
        db.close()
    report.seconds = clock() - started
    return report


def _preview(factory: MessageFactory, store: Store, ledger: Ledger, slug: str, n: int = 3) -> list[str]:
    """The headers of the first messages, for --dry-run."""
    from email import message_from_bytes, policy

    if ledger.started(slug):
        rows = ledger.pending(slug, 0, False)[:n]
        people = [Recipient(email, name) for _, email, name, _, _ in rows]
    else:
        people = []
        for subscriber in store.iter("active"):
            people.append(Recipient(subscriber.email, subscriber.name))
            if len(people) >= n:
                break
    out = []
    for person in people:
        message = message_from_bytes(factory.message(person), policy=policy.default)
        out.append("\n".join(f"{k}: {v}" for k, v in message.items() if k != "Content-Type"))
    return out
