"""The send loop under hostile input and broken parts: one recipient whose message cannot be built (or a
transport bug) fails that recipient only; a full outbox disk or an unreachable relay leaves the rest pending
instead of `sending` or `failed`; a crash leaves at most one uncertain row per worker."""

from __future__ import annotations

import contextlib
import email
import errno
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from aiosmtpd.controller import Controller
from conftest import NOW, Inbox, free_port
from waiting import FakeClock, wait_for

from publisher.sending import send_issue
from publisher.subscribers import SqliteStore, Subscriber
from publisher.transports import OutboxTransport

SECRET = b"test-secret-" * 3
HOSTILE = "rëader@example.com"  # not ASCII: email_validator refuses it (no SMTPUTF8), an old database may hold it


def setup(newsletter, *, active: int, extra_config: str = "", domain: str = "example.com", hostile_at=None):
    """A newsletter with one issue and `active` subscribers reader0@domain...; with `hostile_at=k`, the row
    HOSTILE is written straight into the SQLite table between reader{k-1} and reader{k}, as an old or tampered
    database holds it (the store's validation would refuse it)."""
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + f'[email]\nfrom_address = "news@{domain}"\npostal_address = "上海市 1 号"\n{extra_config}')
    newsletter.issue("2026-11-20-daily.md", "title: AI 日报：第一期\ndate: 2026-11-20\n", "第一段。\n")
    store = SqliteStore(newsletter.root / "subscribers.db")
    first = active if hostile_at is None else hostile_at
    store.upsert_many(Subscriber(f"reader{n}@{domain}") for n in range(first))
    if hostile_at is not None:
        store.db.execute("INSERT INTO subscribers (email, name, status, tags, created_at, changed_at) "
                         "VALUES (?, '', 'active', '[]', '2026-01-01', '2026-01-01')", (HOSTILE,))
        store.upsert_many(Subscriber(f"reader{n}@{domain}") for n in range(first, active))
    store.close()
    return newsletter.load_config()


def rows(newsletter, issue: str = "daily") -> dict[str, tuple[str, int, str | None]]:
    """email -> (state, attempts, last_error)."""
    with contextlib.closing(sqlite3.connect(newsletter.root / "subscribers.db", timeout=10)) as db:
        return {e: (s, a, err) for e, s, a, err in
                db.execute("SELECT email, state, attempts, last_error FROM deliveries WHERE issue = ?", (issue,))}


def states(newsletter) -> Counter:
    return Counter(state for state, _, _ in rows(newsletter).values())


def outbox_recipients(folder: Path) -> Counter:
    counts: Counter = Counter()
    for path in folder.glob("*.eml"):
        counts[email.message_from_bytes(path.read_bytes())["To"].rpartition("<")[2].rstrip(">")] += 1
    return counts


def readers(n: int, domain: str = "example.com") -> Counter:
    return Counter({f"reader{k}@{domain}": 1 for k in range(n)})


# ------------------------------------------------------------------ 1. any error fails one recipient, not the run

def test_a_message_that_cannot_be_built_fails_that_recipient_only(newsletter):
    config = setup(newsletter, active=40, hostile_at=17, extra_config="workers = 4\n")
    report = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert (report.sent, report.failed, report.stopped) == (40, 1, None)
    assert outbox_recipients(newsletter.root / "outbox" / "daily") == readers(40)  # everyone else, exactly once
    state, attempts, error = rows(newsletter)[HOSTILE]
    assert state == "failed" and attempts == 0  # never handed to the transport
    assert error.startswith("cannot build the message: ")
    assert states(newsletter) == Counter({"sent": 40, "failed": 1})  # nothing left `sending`
    again = send_issue(config, "daily", now=NOW, secret=SECRET)  # and no uncertain rows block the next run
    assert again.sent == 0 and again.already_sent == 40


class BrokenAfterSending:
    """A fake of our own for a fault no real part produces on demand: a transport bug (here a KeyError, as from
    reading a provider's answer) raised after the real outbox has taken one recipient's message."""

    def __init__(self, inner: OutboxTransport, broken: str) -> None:
        self.inner, self.broken, self.name = inner, broken, "broken"

    def send(self, message, *, recipient, **kwargs):
        provider_id = self.inner.send(message, recipient=recipient, **kwargs)
        if recipient == self.broken:
            raise KeyError("MessageId")
        return provider_id

    def default_rate(self):
        return None

    def close(self):
        pass


def test_a_transport_bug_after_the_handover_is_uncertain_for_that_recipient_only(newsletter):
    config = setup(newsletter, active=30, extra_config="workers = 4\n")
    transport = BrokenAfterSending(OutboxTransport(newsletter.root / "outbox", "daily"), "reader11@example.com")
    report = send_issue(config, "daily", now=NOW, secret=SECRET, transport=transport)
    assert (report.sent, report.uncertain, report.stopped) == (29, 1, None)
    state, _, error = rows(newsletter)["reader11@example.com"]
    assert state == "sending" and "KeyError" in error  # it went out: resending silently would duplicate it
    assert states(newsletter) == Counter({"sent": 29, "sending": 1})
    assert outbox_recipients(newsletter.root / "outbox" / "daily") == readers(30)


# ----------------------------------------------------------------------------------- 2. full outbox disk, claims

class FullDisk(OutboxTransport):
    """The real outbox on a disk that fills up after `room` messages and, with `freed_after`, gets space back
    after that many refused writes. A fake of our own: no real part here can fill a disk (a small tmpfs needs
    root). A refused write leaves what a full disk leaves, the first part of the file."""

    def __init__(self, folder: Path, slug: str, room: int, freed_after: int | None = None) -> None:
        super().__init__(folder, slug)
        self.room, self.freed_after, self.refused = room, freed_after, 0
        self.lock = threading.Lock()

    def _write(self, path: Path, data: bytes) -> None:
        with self.lock:
            full = self.room <= 0 and (self.freed_after is None or self.refused < self.freed_after)
            if full:
                self.refused += 1
            else:
                self.room -= 1
        if full:
            path.write_bytes(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        super()._write(path, data)


def complete_emls(folder: Path) -> bool:
    """Only whole messages in the outbox: no partial .eml, no temp file left behind."""
    names = [p.name for p in folder.iterdir()]
    return all(re.fullmatch(r"\d+\.eml", n) for n in names) and all(
        p.read_bytes().rstrip().endswith(b"==--") for p in folder.glob("*.eml"))


def test_full_outbox_disk_leaves_the_rest_pending_then_a_rerun_sends_each_once(newsletter):
    config = setup(newsletter, active=60, extra_config="workers = 4\n")
    folder = newsletter.root / "outbox" / "daily"
    clock = FakeClock()
    report = send_issue(config, "daily", now=NOW, secret=SECRET, transport=FullDisk(folder.parent, "daily", 20),
                        clock=clock, sleep=clock.sleep)
    assert report.sent == 20 and report.failed == 0 and report.remaining == 40
    assert report.stopped and "No space left" in report.stopped
    assert states(newsletter) == Counter({"sent": 20, "pending": 40})  # none `sending`: none went out
    assert {a for s, a, _ in rows(newsletter).values() if s == "pending"} == {0}  # a full disk is no one's fault
    assert complete_emls(folder) and sum(outbox_recipients(folder).values()) == 20
    assert clock.t - 1000.0 >= 60  # it waited more than a minute for space before giving up
    again = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert again.sent == 40 and again.stopped is None
    assert outbox_recipients(folder) == readers(60) and complete_emls(folder)
    assert states(newsletter) == Counter({"sent": 60})


def test_disk_full_for_a_while_costs_no_attempts_and_fails_no_one(newsletter):
    config = setup(newsletter, active=50, extra_config="workers = 4\n")
    folder = newsletter.root / "outbox" / "daily"
    clock = FakeClock()
    disk = FullDisk(folder.parent, "daily", room=10, freed_after=12)
    report = send_issue(config, "daily", now=NOW, secret=SECRET, transport=disk, clock=clock, sleep=clock.sleep)
    assert disk.refused == 12  # the disk was full for a dozen writes
    assert (report.sent, report.failed, report.stopped) == (50, 0, None)
    assert outbox_recipients(folder) == readers(50) and complete_emls(folder)
    assert {(s, a) for s, a, _ in rows(newsletter).values()} == {("sent", 1)}  # one counted attempt each


def test_a_vanished_outbox_folder_stops_the_run_with_everyone_pending(newsletter):
    """A real fault: the outbox folder is deleted under a running send. Not any recipient's failure: the run
    stops at once, no row is `failed` or `sending`, and the next run (which makes the folder again) sends all."""
    config = setup(newsletter, active=20)
    transport = OutboxTransport(newsletter.root / "outbox", "daily")
    transport.folder.rmdir()
    report = send_issue(config, "daily", now=NOW, secret=SECRET, transport=transport)
    assert report.stopped and "cannot write to the outbox" in report.stopped
    assert (report.sent, report.failed) == (0, 0) and states(newsletter) == Counter({"pending": 20})
    again = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert again.sent == 20 and outbox_recipients(newsletter.root / "outbox" / "daily") == readers(20)


def ledger_counts(root: Path) -> Counter:
    try:
        with contextlib.closing(sqlite3.connect(root / "subscribers.db", timeout=10)) as db:
            return Counter(dict(db.execute("SELECT state, count(*) FROM deliveries GROUP BY state")))
    except sqlite3.OperationalError:  # the first run has not created the ledger yet
        return Counter()


def test_a_killed_send_leaves_at_most_one_uncertain_row_per_worker(newsletter):
    """SIGKILL a real `publisher send` once the ledger shows N rows sent. A row is `sending` only between its
    claim and its record, one per worker: not every row queued for the workers. No rate limit, so the queue is
    always full."""
    workers = 4
    setup(newsletter, active=3000, extra_config=f"workers = {workers}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env.update(PUBLISHER_SECRET=SECRET.decode(), PUBLISHER_NOW=NOW.isoformat())
    command = [sys.executable, "-m", "publisher", "-C", str(newsletter.root), "send", "daily"]
    reported = 0
    for threshold in (100, 900, 1700):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda t=threshold: ledger_counts(newsletter.root)["sent"] >= t, what=f"{threshold} rows sent")
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL
        counts = ledger_counts(newsletter.root)
        assert counts["sent"] < 3000  # killed mid-send
        assert counts["sending"] <= workers, counts
        reported += counts["sending"]
        subprocess.run(command + ["--resend-uncertain", "--limit", "1"], env=env, capture_output=True, timeout=120)
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    got = outbox_recipients(newsletter.root / "outbox" / "daily")
    assert set(got) == set(readers(3000)) and sum(n - 1 for n in got.values()) <= reported
    assert ledger_counts(newsletter.root) == Counter({"sent": 3000})


# ---------------------------------------------------------------------- 3. an unreachable service fails no one


def test_smtp_relay_down_leaves_everyone_pending_then_a_rerun_sends_each_once(newsletter):
    port, inbox = free_port(), Inbox()
    relay = Controller(inbox, hostname="127.0.0.1", port=port)
    relay.start()
    relay.stop()  # the relay is down for the whole first run
    config = setup(newsletter, active=30, domain="example.org", extra_config=f'transport = "smtp"\n[smtp]\n'
                   f'host = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = 2\n')
    clock = FakeClock()
    report = send_issue(config, "daily", now=NOW, secret=SECRET, clock=clock, sleep=clock.sleep)
    assert report.stopped and "cannot connect" in report.stopped
    assert (report.sent, report.failed, report.remaining) == (0, 0, 30)
    assert {(s, a) for s, a, _ in rows(newsletter).values()} == {("pending", 0)}  # no attempt burnt, no one failed
    assert clock.t - 1000.0 >= 60  # a relay down for a minute is ridden out
    relay = Controller(inbox, hostname="127.0.0.1", port=port)
    relay.start()
    try:
        again = send_issue(config, "daily", now=NOW, secret=SECRET, clock=clock, sleep=clock.sleep)
    finally:
        relay.stop()
    assert again.sent == 30 and again.stopped is None
    assert Counter(r for _, rcpts, _ in inbox.messages for r in rcpts) == readers(30, "example.org")
    assert states(newsletter) == Counter({"sent": 30})
