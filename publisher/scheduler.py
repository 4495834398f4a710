"""Publishing on time: `publish` (build -> deploy -> send what is due, once) and the `run` loop around it.

Each step's outcome is recorded in the newsletter's SQLite database, so a re-run is a no-op and a failed step
is retried on the next run without redoing the steps that succeeded:
- the site is deployed when the built `dist/` differs from the last `dist/` deployed (a fingerprint of every
  file's SHA-256);
- an issue is emailed through the delivery ledger (sending.py), which resumes where a run stopped; an issue
  is not emailed before its site is deployed (the email links to it), and not at all when it became public
  more than `schedule.max_lateness` ago (old news, e.g. after a long outage) unless `--force`.
Only one `publish` runs at a time for a newsletter folder: an flock on `.publisher.lock`, which the kernel
releases when the holder dies, so a crash never leaves it stuck.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import signal
import socket
import sqlite3
import threading
import time as time_module
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any

from . import build as build_mod
from . import clock, content, websub
from . import deploy as deploy_mod
from .config import Config, load_config
from .content import Issue
from .errors import PublisherError, relpath
from .sending import send_issue
from .subscribers import connect, migrate
from .websub import HubPing, Notifier

log = logging.getLogger(__name__)

LOCK_FILE = ".publisher.lock"
STATE_VERSION = 1
STATE_TABLES = (
    """CREATE TABLE publish_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        changed_at TEXT NOT NULL
    )""",
    """CREATE TABLE published_issues (
        issue TEXT PRIMARY KEY,
        published_at TEXT NOT NULL,     -- first deployed with this issue public
        sent_at TEXT,                   -- every subscriber's row settled
        send_state TEXT NOT NULL DEFAULT 'waiting'
            CHECK (send_state IN ('waiting', 'sending', 'sent', 'not_sent', 'too_late', 'failed')),
        note TEXT,
        changed_at TEXT NOT NULL
    )""",
)


class Busy(PublisherError):
    """Another `publish` holds the lock."""


@contextlib.contextmanager
def publish_lock(root: Path) -> Iterator[None]:
    """Hold the folder's publish lock, or raise `Busy` naming the holder."""
    path = root / LOCK_FILE
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held for the whole block)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                holder = json.loads(handle.read() or "{}")
            except ValueError:
                holder = {}
            raise Busy(f"another publish is running in {root} (pid {holder.get('pid', '?')} on "
                       f"{holder.get('host', '?')}, since {holder.get('since', '?')})",
                       hint="it finishes on its own; a crashed holder releases the lock automatically") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": clock.iso()}))
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the flock


def in_quiet_hours(now: datetime, quiet: tuple[time, time] | None, config: Config) -> bool:
    """Whether `now`, read on the site's clock (so daylight saving is handled), is inside the quiet hours."""
    if quiet is None:
        return False
    start, end = quiet
    local = now.astimezone(config.site.timezone).time().replace(tzinfo=None)
    return start <= local < end if start < end else (local >= start or local < end)


@dataclass
class PublishReport:
    built: int = 0  # files written by the build
    deployed: int = 0  # files uploaded
    deploy_skipped: bool = False  # dist/ as last deployed
    sent: dict[str, int] = field(default_factory=dict)  # issue -> messages sent this run
    already_sent: dict[str, int] = field(default_factory=dict)  # issue -> subscribers who had it before this run
    not_sent: list[str] = field(default_factory=list)  # public now, never emailed: `send: false`
    too_late: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # quiet hours
    failures: list[str] = field(default_factory=list)
    newly_public: list[str] = field(default_factory=list)
    hub_pings: list[HubPing] = field(default_factory=list)  # WebSub hubs told about the feeds this deploy changed
    schedules: str | None = None  # what `schedules.sync` changed, with [schedule] eventbridge_* set

    @property
    def did_something(self) -> bool:
        return bool(self.built or self.deployed or any(self.sent.values()) or self.too_late or self.newly_public
                    or self.not_sent or self.schedules)


class State:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        migrate(db, "publish", STATE_VERSION, STATE_TABLES)

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM publish_state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set(self, key: str, value: str, now: datetime) -> None:
        self.db.execute("INSERT INTO publish_state VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = "
                        "excluded.value, changed_at = excluded.changed_at", (key, value, now.isoformat()))

    def issue(self, slug: str) -> tuple[str, str] | None:
        row = self.db.execute("SELECT send_state, published_at FROM published_issues WHERE issue = ?",
                              (slug,)).fetchone()
        return (row[0], row[1]) if row else None

    def published(self, slug: str, now: datetime) -> bool:
        """Record an issue as public on the deployed site; True the first time."""
        cursor = self.db.execute("INSERT OR IGNORE INTO published_issues (issue, published_at, changed_at) "
                                 "VALUES (?, ?, ?)", (slug, now.isoformat(), now.isoformat()))
        return cursor.rowcount == 1

    def send_state(self, slug: str, state: str, now: datetime, note: str | None = None) -> None:
        sent_at = now.isoformat() if state == "sent" else None
        self.db.execute("UPDATE published_issues SET send_state = ?, note = ?, changed_at = ?, "
                        "sent_at = coalesce(?, sent_at) WHERE issue = ?", (state, note, now.isoformat(), sent_at,
                                                                            slug))


def dist_fingerprint(files: Mapping[str, deploy_mod.LocalFile]) -> str:
    """One hash of what `deploy_mod.local_files` found in dist/: paths and contents."""
    digest = hashlib.sha256()
    for key, file in sorted(files.items()):
        digest.update(f"{key}\0{file.sha256}\n".encode())
    return digest.hexdigest()


def publish(config: Config, *, now: datetime, due: bool = False, force: bool = False,
            transport_factory: Callable[[str], object] | None = None, stop: threading.Event | None = None,
            secret: bytes | None = None, notifier: Notifier | None = None) -> PublishReport:
    """Build, deploy if the site changed, and email every due issue that has not been emailed. A deploy that
    changed feeds pings the WebSub hubs of `feeds.hubs` (through `notifier`); a hub that cannot be told is a
    warning, never a failure: it does not stop the emails, and the next publish does not ask it again."""
    report = PublishReport()
    with publish_lock(config.root), _table_lease(config):
        result = build_mod.build(config, now=now)
        report.built = result.written + result.removed
        state, close_state = _open_state(config)
        try:
            files = deploy_mod.local_files(result.output)  # hashed once, for the fingerprint and the deploy
            fingerprint = dist_fingerprint(files)
            if state.get("deployed_fingerprint") == fingerprint:
                report.deploy_skipped = True
            else:
                # A failure raises: nothing is emailed before the site is up.
                deployed = deploy_mod.deploy(config, files=files, notifier=notifier)
                report.deployed = deployed.uploaded + deployed.deleted
                report.hub_pings = deployed.hub_pings
                state.set("deployed_fingerprint", fingerprint, now)
            for issue in result.issues:
                if state.published(issue.slug, now):
                    report.newly_public.append(issue.slug)
            quiet = due and in_quiet_hours(now, config.schedule.quiet_hours, config)
            for issue in sorted(result.issues, key=lambda i: (i.date, i.slug)):
                _email(config, issue, state, report, now=now, force=force, quiet=quiet, stop=stop,
                       transport_factory=transport_factory, secret=secret)
                if stop is not None and stop.is_set():
                    break
            if not (stop is not None and stop.is_set()) and not quiet:
                _welcomes(config, report, now=now, stop=stop, transport_factory=transport_factory, secret=secret)
        finally:
            close_state()
        _schedules(config, report, now=now)
    return report


def _table_lease(config: Config) -> contextlib.AbstractContextManager[None]:
    """With the ledger in DynamoDB, publishers on other machines share it: they take turns through a lease in the
    table (the folder's lock only covers this machine)."""
    if not config.subscribers.dynamodb_table:
        return contextlib.nullcontext()
    from .stores.dynamodb_state import publish_lease

    return publish_lease(config)


def _open_state(config: Config) -> tuple[Any, Callable[[], None]]:
    """The publish state and how to close it: in the DynamoDB table with `subscribers.dynamodb_table` (so that a
    publish on Lambda or a CI runner needs no file between runs), else in the SQLite database."""
    if config.subscribers.dynamodb_table:
        from .stores.dynamodb_state import DynamoDBState

        table = DynamoDBState(config)
        return table, table.close
    db = connect(config.root / config.subscribers.database)
    try:
        return State(db), db.close
    except BaseException:
        db.close()
        raise


def _schedules(config: Config, report: PublishReport, *, now: datetime) -> None:
    """Keep one EventBridge Scheduler schedule per future issue (schedules.py), last: after the emails, and a
    failure is one of the report's failures, never an exception."""
    from . import schedules

    if not schedules.enabled(config):
        return
    try:
        synced = schedules.sync(config, now=now)
    except PublisherError as exc:
        report.failures.append(f"schedules: {exc}")
        return
    if synced.changed or synced.conflicts:
        report.schedules = synced.summary()
    if synced.conflicts:
        report.failures.append(f"schedules: {synced.summary()}")


def _welcomes(config: Config, report: PublishReport, *, now: datetime, stop: threading.Event | None,
              transport_factory: Callable[[str], object] | None, secret: bytes | None) -> None:
    """Send the welcomes `serve` or an import left pending; a problem with them never holds up the issues."""
    from . import welcome

    if not welcome.enabled(config):
        return
    try:
        transport = transport_factory(welcome.SLUG) if transport_factory else None
        sent = welcome.send_pending(config, transport, now=now, stop=stop, secret=secret)  # type: ignore[arg-type]
    except PublisherError as exc:
        report.failures.append(f"{welcome.SLUG}: {exc}")
        return
    if sent.sent:
        report.sent[welcome.SLUG] = sent.sent


def _email(config: Config, issue: Issue, state: State, report: PublishReport, *, now: datetime, force: bool,
           quiet: bool, stop: threading.Event | None, transport_factory: Callable[[str], object] | None,
           secret: bytes | None) -> None:
    recorded = state.issue(issue.slug)
    send_state = recorded[0] if recorded else "waiting"
    if send_state in ("sent", "not_sent") or (send_state == "too_late" and not force):
        return
    if not issue.send:
        state.send_state(issue.slug, "not_sent", now, "send: false")
        report.not_sent.append(issue.slug)
        return
    started = send_state in ("sending", "failed")
    late = now - issue.date
    if late > config.schedule.max_lateness and not force and not started:
        state.send_state(issue.slug, "too_late", now, f"{late} late; publish --force sends it")
        report.too_late.append(issue.slug)
        log.warning("%s became due %s ago (more than schedule.max_lateness): it is on the site and in the feeds, "
                    "but not emailed; `publisher publish --force` sends it", issue.slug, _ago(late))
        return
    if quiet:
        report.deferred.append(issue.slug)
        return
    state.send_state(issue.slug, "sending", now)
    try:
        transport = transport_factory(issue.slug) if transport_factory else None
        sent = send_issue(config, issue.slug, now=now, transport=transport, stop=stop,  # type: ignore[arg-type]
                          secret=secret)
    except PublisherError as exc:
        state.send_state(issue.slug, "failed", now, str(exc))
        report.failures.append(f"{issue.slug}: {exc}")
        return
    if sent.queue:  # a fan-out: queued for the workers, whose progress the ledger (publisher report) shows
        report.sent[issue.slug] = sent.queued
        state.send_state(issue.slug, "sent", now, f"queued {sent.queued} recipients for the workers ({sent.queue})")
        return
    report.sent[issue.slug] = sent.sent
    if sent.already_sent:
        report.already_sent[issue.slug] = sent.already_sent
    if sent.stopped or sent.remaining or sent.uncertain:
        why = sent.stopped or (f"{sent.uncertain} uncertain" if sent.uncertain else f"{sent.remaining} pending")
        state.send_state(issue.slug, "failed", now, why)
        report.failures.append(f"{issue.slug}: {why}")
    else:
        state.send_state(issue.slug, "sent", now)


def _ago(delta: object) -> str:
    return str(delta).split(".")[0]


# ---- what each issue's state is: `publisher list` ----


@dataclass(frozen=True)
class IssueStatus:
    slug: str
    title: str
    date: datetime
    status: str  # draft | scheduled | published | sent
    sent: int  # messages delivered, from the ledger
    tags: tuple[str, ...]
    file: str  # relative to content/
    note: str | None = None  # why a public issue was not emailed (send: false, too late, failed)

    @property
    def label(self) -> str:
        if self.status == "sent":
            return f"sent to {self.sent}"
        return f"{self.status} ({self.note})" if self.note else self.status

    def as_json(self) -> dict[str, object]:
        return {"slug": self.slug, "title": self.title, "date": self.date.isoformat(), "status": self.status,
                "sent": self.sent, "tags": list(self.tags), "file": self.file, "note": self.note}


_NOTES = {"not_sent": "not emailed: send: false", "too_late": "not emailed: too late, publish --force sends it",
          "failed": "emailing failed, the next publish retries", "sending": "emailing in progress"}


def issue_statuses(config: Config, *, now: datetime) -> list[IssueStatus]:
    """Every issue under content/ (drafts and scheduled ones too), newest first, with what the ledger in
    `subscribers.database` says was sent. Reads the database only (never creates or migrates it)."""
    issues = content.load_issues(config)
    sent, states = _table_ledger(config) if config.subscribers.dynamodb_table else \
        _ledger(config.root / config.subscribers.database)
    statuses = []
    for issue in issues:
        note = None
        if issue.draft:
            status = "draft"
        elif issue.is_future(now):
            status = "scheduled"
        elif sent.get(issue.slug):
            status = "sent"
        else:
            status = "published"
            note = "not emailed: send: false" if not issue.send else _NOTES.get(states.get(issue.slug, ""))
        statuses.append(IssueStatus(issue.slug, issue.title, issue.date, status, sent.get(issue.slug, 0),
                                    issue.tags, str(issue.path), note))
    return sorted(statuses, key=lambda s: (s.date, s.slug), reverse=True)


def _table_ledger(config: Config) -> tuple[dict[str, int], dict[str, str]]:
    """_ledger's answer from the DynamoDB table: a finished send's count of sent messages is on its send item (no
    read of its rows); only a send still under way is counted row by row."""
    from .stores.dynamodb_ledger import DynamoDBLedger
    from .stores.dynamodb_state import DynamoDBState

    state = DynamoDBState(config)
    try:
        states = state.states()
    finally:
        state.close()
    ledger = DynamoDBLedger(config)
    try:
        return ledger.sent_counts(), states
    finally:
        ledger.close()


def _ledger(path: Path) -> tuple[dict[str, int], dict[str, str]]:
    """(issue -> messages sent, issue -> publish send_state) from the database, if there is one."""
    if not path.is_file():
        return {}, {}
    sent: dict[str, int] = {}
    states: dict[str, str] = {}
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return {}, {}
    try:
        with contextlib.suppress(sqlite3.OperationalError):  # a table not made yet: nothing sent
            sent = dict(db.execute("SELECT issue, count(*) FROM deliveries WHERE state = 'sent' GROUP BY issue"))
        with contextlib.suppress(sqlite3.OperationalError):
            states = dict(db.execute("SELECT issue, send_state FROM published_issues"))
    except sqlite3.DatabaseError as exc:
        raise PublisherError(f"cannot read the delivery ledger: {exc}", file=path.name,
                             hint="is it a publisher database? `publisher subscribers count` checks it") from None
    finally:
        db.close()
    return sent, states


# ---- the run loop ----


def run_forever(root: Path, *, once: Callable[[], None] | None = None, stop: threading.Event | None = None,
                install_signals: bool = True) -> None:
    """Run `publish --due` now and then every `schedule.every`, one job at a time, until SIGTERM or SIGINT.

    A failed run is logged and the loop goes on. A signal stops the loop between jobs; a send in progress stops
    between two messages (the ledger keeps the rest for the next start).
    """
    import schedule

    stop = stop or threading.Event()
    if install_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda number, _frame: _stopping(stop, number))
    config = load_config(root)
    job = once or (lambda: _run_once(root, stop))
    scheduler = schedule.Scheduler()
    scheduler.every(max(1, int(config.schedule.every.total_seconds()))).seconds.do(_guarded, job)
    log.info("publisher run: publishing what is due every %s in %s", config.schedule.every, root)
    fixed = clock.fixed()
    if fixed is not None:
        log.warning("time is fixed at %s by %s: every run sees that moment, so nothing becomes due later "
                    "(unset %s to follow the real clock)", fixed.isoformat(), clock.ENV, clock.ENV)
    _guarded(job)
    while not stop.is_set():
        scheduler.run_pending()
        clock.nap(stop, max(0.05, min(1.0, scheduler.idle_seconds or 1.0)))
    log.info("publisher run: stopped")


def _stopping(stop: threading.Event, number: int) -> None:
    log.info("publisher run: %s received, stopping after the current step", signal.Signals(number).name)
    stop.set()


def _guarded(job: Callable[[], None]) -> None:
    started = time_module.monotonic()
    try:
        job()
    except PublisherError as exc:
        log.error("publish failed: %s", exc)
    except Exception:  # a bug must not end the service: log it whole and try again next time
        log.exception("publish failed unexpectedly")
    else:
        log.debug("publish took %.1f s", time_module.monotonic() - started)


def _run_once(root: Path, stop: threading.Event) -> None:
    config = load_config(root)  # read again every time: an edited publisher.toml applies without a restart
    try:
        report = publish(config, now=clock.now(), due=True, stop=stop)
    except Busy as exc:
        log.info("%s", exc.problems[0].message)
        return
    log.info("%s", summary(report))
    if report.failures:
        raise PublisherError("; ".join(report.failures))


def locations(config: Config, report: PublishReport, *, cwd: Path | None = None) -> list[str]:
    """Where a publish put things: the site, the deploy target, the emails and the ledger (paths relative to
    `cwd` when inside it)."""
    def shown(path: Path) -> str:
        return str(relpath(path, cwd or Path.cwd()))

    target = config.deploy.target
    if not target.startswith("s3://"):
        folder = Path(target)
        target = shown((folder if folder.is_absolute() else config.root / folder).resolve()) + "/"
    deployed = "unchanged since the last deploy" if report.deploy_skipped else "deployed"
    lines = [f"Site: {shown(config.output_dir)}/ ({deployed}: {target})"]
    if config.email.transport == "outbox":
        outbox = shown(config.root / config.email.outbox)
        lines.append(f"Emails: {outbox}/<issue>/*.eml (the outbox transport: one file per message, nothing "
                     "left this machine)")
    else:
        lines.append(f"Emails: sent through {config.email.transport}")
    lines.append(f"Ledger: {shown(config.root / config.subscribers.database)} (who got which issue; "
                 "`publisher list` shows it)")
    return lines


def summary(report: PublishReport) -> str:
    if not report.did_something and not report.failures and not report.deferred:
        return "nothing due"
    parts = [f"built {report.built} files"]
    parts.append("site unchanged" if report.deploy_skipped else f"deployed {report.deployed} files")
    if report.newly_public:
        parts.append(f"published {', '.join(report.newly_public)}")
    if report.hub_pings:
        parts.append(websub.summary(report.hub_pings))
    if report.schedules:
        parts.append(report.schedules)
    for slug, n in report.sent.items():
        before = report.already_sent.get(slug, 0)
        if n == 0 and before:
            parts.append(f"{slug} was already emailed to all {before} subscribers (nothing new to send)")
        elif before:
            parts.append(f"emailed {slug} to {n} ({before} had it already)")
        else:
            parts.append(f"emailed {slug} to {n}")
    if report.not_sent:
        parts.append(f"not emailing {', '.join(report.not_sent)} (send: false: web and feeds only)")
    if report.too_late:
        parts.append(f"too late to email {', '.join(report.too_late)} (--force sends)")
    if report.deferred:
        parts.append(f"quiet hours: {', '.join(report.deferred)} waits")
    if report.failures:
        parts.append(f"failed: {'; '.join(report.failures)}")
    return "; ".join(parts)
