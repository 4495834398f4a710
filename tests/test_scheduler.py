"""Publishing on time: publish --due with fixed clocks, the lock, catch-up and lateness, DST, the run loop."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from waiting import Lines, wait_for

from publisher.errors import PublisherError
from publisher.scheduler import LOCK_FILE, Busy, in_quiet_hours, publish, publish_lock
from publisher.subscribers import SqliteStore, Subscriber
from publisher.transports import FatalError, OutboxTransport

SECRET = b"scheduler-secret-" * 2
SHANGHAI = ZoneInfo("Asia/Shanghai")


def setup(newsletter, *, timezone="Asia/Shanghai", subscribers=5, extra=""):
    text = newsletter.root.joinpath("publisher.toml").read_text().replace("Asia/Shanghai", timezone)
    newsletter.config(text + '[email]\nfrom_address = "news@example.com"\n' + extra)
    store = SqliteStore(newsletter.root / "subscribers.db")
    store.upsert_many(Subscriber(f"r{n}@example.com") for n in range(subscribers))
    store.close()
    return newsletter.load_config()


def emailed(newsletter, slug):
    folder = newsletter.root / "outbox" / slug
    return len(list(folder.glob("*.eml"))) if folder.exists() else 0


def test_future_issue_waits_for_its_time_then_goes_out_once(newsletter):
    config = setup(newsletter)
    newsletter.issue("2026-12-01-next.md", "title: 下一期\ndate: 2026-12-01 08:00\n")
    before = datetime(2026, 12, 1, 7, 59, tzinfo=SHANGHAI)
    early = publish(config, now=before, due=True, secret=SECRET)
    assert not (newsletter.root / "dist" / "issues" / "next").exists()
    assert "next" not in early.newly_public and emailed(newsletter, "next") == 0
    on_time = publish(config, now=before + timedelta(minutes=1), due=True, secret=SECRET)
    assert (newsletter.root / "public" / "issues" / "next" / "index.html").exists()  # deployed
    assert on_time.newly_public == ["next"] and on_time.sent == {"next": 5}
    again = publish(config, now=before + timedelta(minutes=6), due=True, secret=SECRET)
    assert not again.did_something and again.deploy_skipped and emailed(newsletter, "next") == 5


def test_a_failed_send_is_retried_next_run_without_redeploying(newsletter):
    config = setup(newsletter)
    newsletter.issue("2026-12-01-x.md", "title: X\ndate: 2026-12-01 08:00\n")
    when = datetime(2026, 12, 1, 8, 5, tzinfo=SHANGHAI)

    class Down:
        name = "down"

        def send(self, *a, **k):
            raise FatalError("SES refused to send: AccountSuspendedException")

        def default_rate(self):
            return None

        def close(self):
            pass

    first = publish(config, now=when, due=True, secret=SECRET, transport_factory=lambda slug: Down())
    assert first.failures and "AccountSuspended" in first.failures[0] and first.deployed > 0
    second = publish(config, now=when + timedelta(minutes=5), due=True, secret=SECRET)
    assert second.deploy_skipped and second.deployed == 0  # the deploy that succeeded is not repeated
    assert second.sent == {"x": 5} and emailed(newsletter, "x") == 5
    db = sqlite3.connect(newsletter.root / "subscribers.db")
    assert db.execute("SELECT send_state FROM published_issues WHERE issue = 'x'").fetchone() == ("sent",)


def test_a_failed_deploy_emails_nothing_and_is_retried(newsletter):
    config = setup(newsletter, extra='[deploy]\ntarget = "blocked/public"\n')
    (newsletter.root / "blocked").write_text("a file where the target folder should be")
    newsletter.issue("2026-12-01-x.md", "title: X\ndate: 2026-12-01 08:00\n")
    when = datetime(2026, 12, 1, 8, 5, tzinfo=SHANGHAI)
    with pytest.raises(OSError):
        publish(config, now=when, due=True, secret=SECRET)
    assert emailed(newsletter, "x") == 0  # the email links to a page that is not up yet
    (newsletter.root / "blocked").unlink()
    report = publish(config, now=when + timedelta(minutes=5), due=True, secret=SECRET)
    assert report.deployed > 0 and report.sent == {"x": 5}


def test_catch_up_and_max_lateness(newsletter):
    config = setup(newsletter)
    newsletter.issue("2026-12-01-recent.md", "title: 近\ndate: 2026-12-01 08:00\n")
    newsletter.issue("2026-11-20-old.md", "title: 旧\ndate: 2026-11-20 08:00\n")
    when = datetime(2026, 12, 1, 20, 0, tzinfo=SHANGHAI)  # the scheduler was down for 12 hours
    report = publish(config, now=when, due=True, secret=SECRET)
    assert report.sent == {"recent": 5}  # caught up
    assert report.too_late == ["old"] and emailed(newsletter, "old") == 0
    assert (newsletter.root / "public" / "issues" / "old" / "index.html").exists()  # still on the site
    assert "旧" in (newsletter.root / "public" / "rss.xml").read_text()  # and in the feeds
    assert publish(config, now=when, due=True, secret=SECRET).too_late == []  # said once, not every run
    forced = publish(config, now=when, force=True, secret=SECRET)
    assert forced.sent == {"old": 5}


def test_drafts_and_send_false_are_never_emailed(newsletter):
    config = setup(newsletter)
    newsletter.issue("a.md", "title: A\ndate: 2026-12-01 08:00\ndraft: true\n")
    newsletter.issue("b.md", "title: B\ndate: 2026-12-01 08:00\nsend: false\n")
    report = publish(config, now=datetime(2026, 12, 1, 9, tzinfo=SHANGHAI), due=True, secret=SECRET)
    assert report.sent == {} and report.newly_public == ["b"]
    assert emailed(newsletter, "a") == 0 and emailed(newsletter, "b") == 0


@pytest.mark.parametrize(("timezone", "written", "due_utc"), [
    ("Asia/Shanghai", "2026-03-08 09:00", datetime(2026, 3, 8, 1, 0, tzinfo=UTC)),
    ("UTC", "2026-03-08 09:00", datetime(2026, 3, 8, 9, 0, tzinfo=UTC)),
    ("America/New_York", "2026-03-07 09:00", datetime(2026, 3, 7, 14, 0, tzinfo=UTC)),  # EST, before the change
    ("America/New_York", "2026-03-08 09:00", datetime(2026, 3, 8, 13, 0, tzinfo=UTC)),  # EDT, after it
    ("America/New_York", "2026-11-01 09:00", datetime(2026, 11, 1, 14, 0, tzinfo=UTC)),  # EST again
])
def test_naive_times_become_due_at_the_right_instant_across_dst(newsletter, timezone, written, due_utc):
    config = setup(newsletter, timezone=timezone, subscribers=1)
    newsletter.issue("x.md", f"title: X\ndate: {written}\n")
    assert publish(config, now=due_utc - timedelta(seconds=1), due=True, secret=SECRET).sent == {}
    assert publish(config, now=due_utc, due=True, secret=SECRET).sent == {"x": 1}


@pytest.mark.parametrize(("timezone", "quiet", "utc", "expected"), [
    ("Asia/Shanghai", "22:00-07:00", datetime(2026, 12, 1, 15, 30, tzinfo=UTC), True),  # 23:30 in Shanghai
    ("Asia/Shanghai", "22:00-07:00", datetime(2026, 12, 1, 23, 30, tzinfo=UTC), False),  # 07:30
    ("UTC", "12:00-13:00", datetime(2026, 12, 1, 12, 59, tzinfo=UTC), True),
    ("UTC", "12:00-13:00", datetime(2026, 12, 1, 13, 0, tzinfo=UTC), False),
    # New York, 06:30 local on each side of the spring change: EST (11:30Z) and EDT (10:30Z)
    ("America/New_York", "22:00-07:00", datetime(2026, 3, 7, 11, 30, tzinfo=UTC), True),
    ("America/New_York", "22:00-07:00", datetime(2026, 3, 8, 10, 30, tzinfo=UTC), True),
    ("America/New_York", "22:00-07:00", datetime(2026, 3, 8, 11, 30, tzinfo=UTC), False),  # 07:30 EDT
])
def test_quiet_hours_follow_the_site_clock(newsletter, timezone, quiet, utc, expected):
    config = setup(newsletter, timezone=timezone, subscribers=1, extra=f'[schedule]\nquiet_hours = "{quiet}"\n')
    assert in_quiet_hours(utc, config.schedule.quiet_hours, config) is expected


def test_quiet_hours_defer_emails_but_not_the_site(newsletter):
    config = setup(newsletter, extra='[schedule]\nquiet_hours = "22:00-07:00"\n')
    newsletter.issue("2026-12-01-x.md", "title: X\ndate: 2026-12-01 23:00\n")
    night = publish(config, now=datetime(2026, 12, 1, 23, 5, tzinfo=SHANGHAI), due=True, secret=SECRET)
    assert night.deferred == ["x"] and night.newly_public == ["x"] and emailed(newsletter, "x") == 0
    morning = publish(config, now=datetime(2026, 12, 2, 7, 0, tzinfo=SHANGHAI), due=True, secret=SECRET)
    assert morning.sent == {"x": 5}


def test_lock_names_its_holder_and_a_dead_holder_does_not_block(newsletter):
    setup(newsletter)
    with publish_lock(newsletter.root), pytest.raises(Busy, match=f"pid {os.getpid()}"), \
            publish_lock(newsletter.root):
        pass
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys; from pathlib import Path; from publisher.scheduler import publish_lock\n"
        f"with publish_lock(Path({str(newsletter.root)!r})):\n    print('held', flush=True); sys.stdin.read()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(Busy), publish_lock(newsletter.root):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with publish_lock(newsletter.root):  # the kernel released the dead holder's lock
        pass


def cli_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env["PUBLISHER_SECRET"] = SECRET.decode()
    return env


def lock_named(root):
    """The pid the publish lock file names (its holder, or its last holder), read without locking it: a probe
    that took the lock could itself make a publisher find the folder busy."""
    try:
        return json.loads((root / LOCK_FILE).read_text(encoding="utf-8")).get("pid")
    except (OSError, ValueError):  # not there yet, or being written
        return None


def lock_is_held(root):
    with open(root / LOCK_FILE, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def test_two_concurrent_publishes_never_both_send(newsletter):
    """The second publish starts while the first provably holds the lock: the first is frozen (SIGSTOP) once
    the lock names it, so the overlap does not depend on how fast either process is."""
    setup(newsletter, subscribers=300, extra="rate = 300\n")
    newsletter.issue("2026-12-01-x.md", "title: X\ndate: 2026-12-01 08:00\n")
    env = cli_env() | {"PUBLISHER_NOW": "2026-12-01T08:05:00+08:00"}
    command = [sys.executable, "-m", "publisher", "-C", str(newsletter.root), "publish", "--due"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: lock_named(newsletter.root) == first.pid, what="the first publish to take the lock")
        first.send_signal(signal.SIGSTOP)
        assert lock_is_held(newsletter.root)  # frozen while holding it (safe to probe: it cannot take it now)
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    finally:
        first.send_signal(signal.SIGCONT)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, (err, second.stderr)
    assert "another publish is running" in second.stdout + second.stderr
    assert f"pid {first.pid}" in second.stdout + second.stderr
    assert "emailed x to 300" in out and "emailed" not in second.stdout
    recipients = Counter(p.name for p in (newsletter.root / "outbox" / "x").glob("*.eml"))
    assert len(recipients) == 300 and all(name.count(".") == 1 for name in recipients)  # no n.2.eml copies


def test_publish_command_reports_and_fails_on_send_failures(newsletter, run_cli, monkeypatch):
    setup(newsletter)
    newsletter.issue("2026-11-26-x.md", "title: X\ndate: 2026-11-26 08:00\n")
    monkeypatch.delenv("PUBLISHER_SECRET", raising=False)
    result = run_cli("-C", str(newsletter.root), "publish")
    assert result.exit_code == 1 and "PUBLISHER_SECRET is not set" in result.stderr
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET.decode())
    ok = run_cli("-C", str(newsletter.root), "publish", "--due")
    assert ok.exit_code == 0 and "emailed x to 5" in ok.stdout
    assert run_cli("-C", str(newsletter.root), "publish", "--due").stdout.strip() == "Nothing due."


def test_run_loop_survives_failures_and_stops_cleanly_on_sigterm(newsletter):
    setup(newsletter, extra='[schedule]\nevery = "1s"\n')
    newsletter.issue("2026-11-26-x.md", raw=b"---\ntitle: [broken\n---\n")  # every run fails
    # The run loop reads time through the one clock: pinned an hour after the issue, whatever today is.
    env = cli_env() | {"PUBLISHER_NOW": "2026-11-26T09:00:00+08:00"}
    process = subprocess.Popen([sys.executable, "-m", "publisher", "-C", str(newsletter.root), "run"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = Lines(process.stderr)
    try:
        wait_for(lambda: err.count("publish failed") >= 2, what="two failed runs")
        assert process.poll() is None  # still running after failed runs
        (newsletter.content / "2026-11-26-x.md").write_text("---\ntitle: X\ndate: 2026-11-26 08:00\n---\n正文\n")
        wait_for(lambda: "emailed x to 5" in err.text, what="the run after the fix to send the issue")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    text = err.close()
    assert process.returncode == 0, text
    assert "time is fixed at 2026-11-26T09:00:00+08:00 by PUBLISHER_NOW" in text
    assert "SIGTERM received" in text and "publisher run: stopped" in text
    assert emailed(newsletter, "x") == 5  # once fixed, the next run published and sent it, once


def test_schedule_config_validation(newsletter):
    for line, words in (('every = "soon"', "duration"), ('quiet_hours = "22-7"', "two different times"),
                        ('max_lateness = "0h"', "duration")):
        newsletter.config(newsletter.root.joinpath("publisher.toml").read_text().split("[schedule]")[0]
                          + f"[schedule]\n{line}\n")
        with pytest.raises(PublisherError, match=words):
            newsletter.load_config()


def test_outbox_transport_factory_is_used(newsletter):
    config = setup(newsletter, subscribers=2)
    newsletter.issue("2026-12-01-x.md", "title: X\ndate: 2026-12-01 08:00\n")
    made = []

    def factory(slug):
        made.append(slug)
        return OutboxTransport(newsletter.root / "elsewhere", slug)

    publish(config, now=datetime(2026, 12, 1, 8, 1, tzinfo=SHANGHAI), due=True, secret=SECRET,
            transport_factory=factory)
    assert made == ["x"] and len(list((newsletter.root / "elsewhere" / "x").glob("*.eml"))) == 2


def test_publish_reads_and_hashes_dist_once(newsletter, monkeypatch):
    """The fingerprint that decides whether to deploy and the deploy itself share one scan of dist/ (a spy on
    the scan: counting is all it does, the real function runs)."""
    from publisher import deploy as deploy_mod

    config = setup(newsletter)
    newsletter.issue("2026-12-01-x.md", "title: X\ndate: 2026-12-01 08:00\n")
    scanned = []
    real = deploy_mod.local_files

    def counting(folder):
        scanned.append(folder.resolve())
        return real(folder)

    monkeypatch.setattr(deploy_mod, "local_files", counting)
    report = publish(config, now=datetime(2026, 12, 1, 8, 5, tzinfo=SHANGHAI), due=True, secret=SECRET)
    assert report.deployed > 0 and report.sent == {"x": 5}
    assert scanned.count(config.output_dir.resolve()) == 1
