"""Sending: every active subscriber gets exactly one message, through the outbox, a real SMTP server (aiosmtpd)
and SES (a moto server over HTTP); crashes, throttling and failures lose nothing and send nothing twice."""

from __future__ import annotations

import contextlib
import email
import os
import re
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from email import policy
from email.utils import parseaddr
from pathlib import Path

import boto3
import pytest
from conftest import NOW
from waiting import FakeClock, wait_for

from publisher.errors import PublisherError
from publisher.sending import RateLimiter, send_issue
from publisher.subscribers import SqliteStore, Subscriber
from publisher.tokens import verify_token
from publisher.transports import (
    OutboxTransport,
    PermanentError,
    SmtpTransport,
    TransientError,
    UncertainError,
)

SECRET = b"test-secret-" * 3


def setup(newsletter, domain="example.com", *, active=1000, extra_config="", others=True):
    """A newsletter with one issue and `active` active subscribers, plus one of every other status."""
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + f'[email]\nfrom_address = "news@{domain}"\npostal_address = "上海市 1 号"\n{extra_config}')
    newsletter.issue("2026-11-20-daily.md", "title: AI 日报：第一期\ndate: 2026-11-20\n",
                     "第一段，有[链接](https://e.com/a)。\n")
    store = SqliteStore(newsletter.root / "subscribers.db")
    store.upsert_many(Subscriber(f"reader{n}@{domain}", f"读者{n}" if n % 2 else "") for n in range(active))
    if others:
        for status in ("unsubscribed", "bounced", "complained", "unconfirmed"):
            store.upsert(Subscriber(f"{status}@{domain}", status=status))
    store.close()
    return newsletter.load_config()


def active_addresses(domain, n):
    return {f"reader{k}@{domain}" for k in range(n)}


def outbox_recipients(folder: Path) -> Counter:
    counts: Counter = Counter()
    for path in folder.glob("*.eml"):
        counts[email.message_from_bytes(path.read_bytes())["To"].rpartition("<")[2].rstrip(">")] += 1
    return counts


def ledger(newsletter, issue="daily"):
    db = sqlite3.connect(newsletter.root / "subscribers.db")
    return dict(db.execute("SELECT state, count(*) FROM deliveries WHERE issue = ? GROUP BY state", (issue,)))


def test_outbox_every_active_subscriber_exactly_once(newsletter):
    config = setup(newsletter)
    report = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert (report.audience, report.sent, report.failed) == (1000, 1000, 0)
    got = outbox_recipients(newsletter.root / "outbox" / "daily")
    assert set(got) == active_addresses("example.com", 1000) and set(got.values()) == {1}
    assert ledger(newsletter) == {"sent": 1000}
    again = send_issue(config, "daily", now=NOW, secret=SECRET)  # a finished issue sends nothing more
    assert again.sent == 0 and again.already_sent == 1000
    assert sum(outbox_recipients(newsletter.root / "outbox" / "daily").values()) == 1000


def test_smtp_every_active_subscriber_exactly_once(newsletter, smtp_server):
    port, inbox = smtp_server
    config = setup(newsletter, "smtp.test", extra_config=f'[smtp]\nhost = "127.0.0.1"\nport = {port}\n'
                   'security = "none"\n'.replace("[smtp]", "transport = \"smtp\"\n[smtp]"))
    report = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert report.sent == 1000
    recipients = Counter(r for _, rcpts, _ in inbox.messages for r in rcpts)
    assert set(recipients) == active_addresses("smtp.test", 1000) and set(recipients.values()) == {1}
    sender, _, raw = inbox.messages[0]
    assert sender == "news@smtp.test"
    check_headers(raw, "smtp.test")


def test_ses_every_active_subscriber_exactly_once(newsletter, aws, moto_ses_sent):
    domain = f"{uuid.uuid4().hex[:8]}.ses.test"
    boto3.client("sesv2").create_email_identity(EmailIdentity=f"news@{domain}")
    config = setup(newsletter, domain, active=1000, extra_config='transport = "ses"\nrate = 1000\nworkers = 8\n')
    report = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert report.sent == 1000
    sent = moto_ses_sent(domain)
    # moto lists the To header and the envelope destination: one address per message once parsed
    recipients = Counter({parseaddr(d)[1] for d in item["destinations"]}.pop() for item in sent)
    assert set(recipients) == active_addresses(domain, 1000) and set(recipients.values()) == {1}
    check_headers(sent[0]["raw_data"].encode(), domain)
    db = sqlite3.connect(newsletter.root / "subscribers.db")
    ids = [r[0] for r in db.execute("SELECT provider_id FROM deliveries WHERE issue = 'daily'")]
    assert all(ids) and len(set(ids)) == 1000  # SES's message ids are kept


def check_headers(raw: bytes, domain: str) -> None:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["Subject"] == "AI 日报：第一期"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = re.findall(r"<([^>]+)>", msg["List-Unsubscribe"])
    assert https.startswith("https://news.example.com/daily/unsubscribe?token=") and mailto.startswith("mailto:")
    token = https.split("token=")[1]
    assert verify_token(SECRET, token, "unsubscribe").email == msg["To"].addresses[0].addr_spec
    assert msg["Message-ID"].endswith(f"@{domain}>")


def test_unsubscribed_after_the_snapshot_is_skipped(newsletter):
    config = setup(newsletter, active=20)
    send_issue(config, "daily", now=NOW, secret=SECRET, limit=5)
    store = SqliteStore(newsletter.root / "subscribers.db")
    store.set_status("reader10@example.com", "unsubscribed")
    report = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert report.sent == 14 and report.skipped == 1
    assert "reader10@example.com" not in outbox_recipients(newsletter.root / "outbox" / "daily")


def test_limit_dry_run_and_test_do_not_overreach(newsletter):
    config = setup(newsletter, active=30)
    dry = send_issue(config, "daily", now=NOW, secret=SECRET, dry_run=True)
    assert dry.audience == 30 and len(dry.preview) == 3 and "List-Unsubscribe" in dry.preview[0]
    db = sqlite3.connect(newsletter.root / "subscribers.db")
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'deliveries'").fetchone() is None \
        or db.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 0
    assert not (newsletter.root / "outbox").exists()
    test = send_issue(config, "daily", now=NOW, secret=SECRET, test_to="Editor@Example.com")
    assert test.sent == 1
    assert list(outbox_recipients(newsletter.root / "outbox" / "daily")) == ["editor@example.com"]
    assert ledger(newsletter) == {}  # --test does not touch the ledger
    warm = send_issue(config, "daily", now=NOW, secret=SECRET, limit=10)
    assert warm.sent == 10 and warm.remaining == 20


def test_refuses_drafts_future_and_send_false(newsletter):
    config = setup(newsletter, active=1)
    newsletter.issue("d.md", "title: D\ndate: 2026-11-20\ndraft: true\n")
    newsletter.issue("f.md", "title: F\ndate: 2030-01-01\n")
    newsletter.issue("w.md", "title: W\ndate: 2026-11-20\nsend: false\n")
    for slug, words in (("d", "draft"), ("f", "scheduled"), ("w", "send: false"), ("nope", "no issue")):
        with pytest.raises(PublisherError, match=words):
            send_issue(config, slug, now=NOW, secret=SECRET)


class Throttling:
    """The one fake this suite allows: a wrapper that makes a real transport throttle (SES's
    TooManyRequests) for the first `n` calls, a fault no local server produces on demand."""

    def __init__(self, inner, n: int) -> None:
        self.inner, self.left, self.name, self.calls = inner, n, "throttling", 0

    def send(self, message, **kwargs):
        self.calls += 1
        if self.left > 0:
            self.left -= 1
            raise TransientError("TooManyRequestsException: Maximum sending rate exceeded.")
        return self.inner.send(message, **kwargs)

    def default_rate(self):
        return None

    def close(self):
        self.inner.close()


def test_throttling_slows_down_and_loses_nothing(newsletter):
    config = setup(newsletter, active=200, extra_config="rate = 100\nworkers = 4\n")
    clock = FakeClock()
    transport = Throttling(OutboxTransport(newsletter.root / "outbox", "daily"), 40)
    report = send_issue(config, "daily", now=NOW, secret=SECRET, transport=transport, clock=clock,
                        sleep=clock.sleep)
    assert report.sent == 200 and report.failed == 0
    got = outbox_recipients(newsletter.root / "outbox" / "daily")
    assert set(got) == active_addresses("example.com", 200) and set(got.values()) == {1}
    assert transport.calls == 240  # every throttled message was tried again
    assert clock.t - 1000.0 > 200 / 100 * 1.5  # slower than the configured rate while it throttled
    assert ledger(newsletter) == {"sent": 200}


def test_rate_limit_is_global_and_never_exceeded():
    clock = FakeClock()
    limiter = RateLimiter(10.0, clock, clock.sleep)
    starts = []
    for _ in range(50):
        limiter.wait()
        starts.append(clock.t)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= 0.1 - 1e-9 and abs((starts[-1] - starts[0]) - 4.9) < 1e-6


class Flaky:
    """Real outbox, with some addresses refused for good (as a server would with 550) and one timeout."""

    def __init__(self, inner, refuse: set[str], uncertain: set[str]) -> None:
        self.inner, self.refuse, self.uncertain, self.name = inner, refuse, uncertain, "flaky"

    def send(self, message, *, recipient, **kwargs):
        if recipient in self.refuse:
            raise PermanentError("550 5.1.1 mailbox unavailable")
        if recipient in self.uncertain:
            self.inner.send(message, recipient=recipient, **kwargs)
            raise UncertainError("no answer after sending")
        return self.inner.send(message, recipient=recipient, **kwargs)

    def default_rate(self):
        return None

    def close(self):
        pass


def test_permanent_failures_and_uncertain_sends(newsletter, run_cli):
    config = setup(newsletter, active=50)
    outbox = OutboxTransport(newsletter.root / "outbox", "daily")
    transport = Flaky(outbox, {"reader3@example.com", "reader4@example.com"}, {"reader7@example.com"})
    report = send_issue(config, "daily", now=NOW, secret=SECRET, transport=transport)
    assert (report.sent, report.failed, report.uncertain) == (47, 2, 1)
    db = sqlite3.connect(newsletter.root / "subscribers.db")
    assert db.execute("SELECT last_error FROM deliveries WHERE email = 'reader3@example.com'").fetchone()[0] \
        .startswith("550")
    os.environ["PUBLISHER_SECRET"] = SECRET.decode()
    try:
        blocked = run_cli("-C", str(newsletter.root), "send", "daily")
        assert blocked.exit_code == 1 and "1 messages of daily may or may not have gone out" in blocked.stderr
        resolved = run_cli("-C", str(newsletter.root), "send", "daily", "--mark-uncertain-sent")
        assert resolved.exit_code == 0, resolved.stderr
    finally:
        del os.environ["PUBLISHER_SECRET"]
    assert ledger(newsletter) == {"sent": 48, "failed": 2}


def test_consecutive_failures_stop_the_run(newsletter):
    config = setup(newsletter, active=100, extra_config="max_consecutive_failures = 10\nworkers = 1\n")
    refuse = {f"reader{n}@example.com" for n in range(20, 100)}
    transport = Flaky(OutboxTransport(newsletter.root / "outbox", "daily"), refuse, set())
    report = send_issue(config, "daily", now=NOW, secret=SECRET, transport=transport)
    assert report.stopped and "10 failures in a row" in report.stopped
    assert report.sent == 20 and 10 <= report.failed <= 12
    assert ledger(newsletter)["pending"] >= 60  # the rest waits for a fixed run


def sent_rows(newsletter, issue="daily"):
    with contextlib.closing(sqlite3.connect(newsletter.root / "subscribers.db", timeout=10)) as db:
        try:
            return db.execute("SELECT count(*) FROM deliveries WHERE issue = ? AND state = 'sent'",
                              (issue,)).fetchone()[0]
        except sqlite3.OperationalError:  # the first run has not created the ledger yet
            return 0


def test_crash_at_any_point_never_skips_anyone(newsletter):
    """Kill `publisher send` with SIGKILL mid-send several times; the re-runs finish the job. Each kill comes only
    once the ledger shows N more rows sent (so it is a kill mid-send, not during start-up). The only possible
    duplicates are the rows each restart reported as uncertain (and resent with --resend-uncertain)."""
    setup(newsletter, active=1000, extra_config="rate = 400\nworkers = 4\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env.update(PUBLISHER_SECRET=SECRET.decode(), PUBLISHER_NOW=NOW.isoformat())
    command = [sys.executable, "-m", "publisher", "-C", str(newsletter.root), "send", "daily"]
    reported_uncertain = 0
    for threshold in (1, 150, 400, 700):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda t=threshold: sent_rows(newsletter) >= t, what=f"{threshold} rows sent")
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL  # killed, not finished on its own
        assert sent_rows(newsletter) < 1000  # mid-send: some were still to go
        check = subprocess.run(command + ["--limit", "1"], env=env, capture_output=True, text=True, timeout=120)
        match = re.search(r"(\d+) messages of daily may or may not have gone out", check.stderr)
        if match:
            reported_uncertain += int(match.group(1))
            subprocess.run(command + ["--resend-uncertain", "--limit", "1"], env=env, capture_output=True,
                           timeout=120)
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    got = outbox_recipients(newsletter.root / "outbox" / "daily")
    assert set(got) == active_addresses("example.com", 1000)  # nobody skipped
    duplicates = sum(n - 1 for n in got.values())
    assert duplicates <= reported_uncertain
    assert ledger(newsletter) == {"sent": 1000}


def test_smtp_password_comes_from_the_environment(newsletter, monkeypatch):
    config = setup(newsletter, active=1, extra_config='transport = "smtp"\n[smtp]\nusername = "bot"\n')
    monkeypatch.delenv("PUBLISHER_SMTP_PASSWORD", raising=False)
    with pytest.raises(PublisherError, match="PUBLISHER_SMTP_PASSWORD"):
        SmtpTransport(config)


def test_smtp_rejected_recipient_is_a_permanent_failure(newsletter, smtp_server):
    port, inbox = smtp_server

    async def refuse(server, session, envelope, address, rcpt_options):
        if address.startswith("reader1@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    inbox.handle_RCPT = refuse
    config = setup(newsletter, "smtp.test", active=3, others=False,
                   extra_config=f'transport = "smtp"\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n')
    report = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert (report.sent, report.failed) == (2, 1)
    db = sqlite3.connect(newsletter.root / "subscribers.db")
    assert "550" in db.execute("SELECT last_error FROM deliveries WHERE state = 'failed'").fetchone()[0]


def test_send_needs_the_secret(newsletter, run_cli, monkeypatch):
    setup(newsletter, active=1)
    monkeypatch.delenv("PUBLISHER_SECRET", raising=False)
    result = run_cli("-C", str(newsletter.root), "send", "daily")
    assert result.exit_code == 1 and "PUBLISHER_SECRET is not set" in result.stderr
