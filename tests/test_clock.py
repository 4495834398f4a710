"""One clock: every command reads time through `publisher.clock`, and `PUBLISHER_NOW` fixes it everywhere."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import REPO

from publisher import clock
from publisher.errors import PublisherError
from publisher.subscribers import SqliteStore, Subscriber
from publisher.tokens import InvalidToken, make_token, verify_token

FAR = datetime(2041, 3, 4, 5, 6, 7, tzinfo=UTC)  # a moment no test run will ever live in

# Calls that read the wall clock: (module or class, attribute).
WALL_CLOCK = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
              ("time", "time"), ("time", "time_ns"), ("time", "localtime"), ("time", "gmtime"),
              ("time", "ctime"), ("time", "asctime"), ("utils", "formatdate"), ("email.utils", "formatdate")}


def wall_clock_reads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute):  # a call, or a reference passed on (`clock=time.time`)
            owner = node.value
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if (name, node.attr) in WALL_CLOCK:
                found.append(f"{path.name}:{node.lineno} {name}.{node.attr}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "formatdate":
            found.append(f"{path.name}:{node.lineno} formatdate()")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                "'now'" in node.value.lower() or "current_timestamp" in node.value.lower()):
            found.append(f"{path.name}:{node.lineno} SQL reads the clock")
        if isinstance(node, ast.ImportFrom) and node.module in ("time", "datetime") and any(
                alias.name in ("time", "time_ns", "localtime", "gmtime") and node.module == "time"
                for alias in node.names):
            found.append(f"{path.name}:{node.lineno} imports the wall clock from time")
    return found


def test_nothing_but_the_clock_module_reads_the_wall_clock():
    package = REPO / "publisher"
    offenders = [hit for path in sorted(package.rglob("*.py")) if path.name != "clock.py"
                 for hit in wall_clock_reads(path)]
    offenders += [hit for path in sorted((REPO / "deploy").rglob("*.py")) for hit in wall_clock_reads(path)]
    assert offenders == []


def test_the_scan_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import time\nfrom datetime import datetime\nfrom email.utils import formatdate\n"
                      "a = datetime.now()\nb = time.time()\nc = formatdate()\n"
                      "d = \"UPDATE t SET at = datetime('now')\"\n"
                      "def f(clock=time.time): pass\n")
    assert len(wall_clock_reads(sample)) == 5


def test_publisher_now_fixes_the_time(monkeypatch):
    monkeypatch.setenv(clock.ENV, "2041-03-04T13:06:07+08:00")
    assert clock.now() == FAR and clock.now().utcoffset() == timedelta(hours=8)
    assert clock.timestamp() == FAR.timestamp() and clock.iso() == "2041-03-04T05:06:07+00:00"
    monkeypatch.setenv(clock.ENV, "2041-03-04T05:06:07")  # naive: UTC
    assert clock.now() == FAR
    monkeypatch.delenv(clock.ENV)
    assert clock.fixed() is None and abs(clock.now() - datetime.now(UTC)) < timedelta(minutes=1)


def test_a_bad_publisher_now_names_the_variable(monkeypatch, run_cli, newsletter):
    monkeypatch.setenv(clock.ENV, "next tuesday")
    with pytest.raises(PublisherError, match="PUBLISHER_NOW='next tuesday' is not an ISO 8601 time"):
        clock.now()
    newsletter.issue("2026-11-20-a.md")
    result = run_cli("-C", str(newsletter.root), "build")
    assert result.exit_code == 1 and "PUBLISHER_NOW" in result.stderr and "Traceback" not in result.stderr


def test_build_and_check_see_the_fixed_time(monkeypatch, run_cli, newsletter):
    newsletter.issue("2041-03-05-later.md", "title: 以后\ndate: 2041-03-05\n")
    root = str(newsletter.root)
    monkeypatch.setenv(clock.ENV, FAR.isoformat())
    assert "1 scheduled issue" in run_cli("-C", root, "build").stdout
    assert not (newsletter.root / "dist" / "issues" / "later").exists()
    monkeypatch.setenv(clock.ENV, (FAR + timedelta(days=2)).isoformat())
    assert run_cli("-C", root, "build").exit_code == 0
    assert (newsletter.root / "dist" / "issues" / "later" / "index.html").exists()


def test_send_refuses_an_issue_that_is_not_yet_due_at_the_fixed_time(monkeypatch, run_cli, newsletter):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + '[email]\nfrom_address = "news@example.com"\n')
    newsletter.issue("2041-03-05-later.md", "title: 以后\ndate: 2041-03-05\n")
    monkeypatch.setenv("PUBLISHER_SECRET", "clock-secret-" * 2)
    monkeypatch.setenv(clock.ENV, FAR.isoformat())
    result = run_cli("-C", str(newsletter.root), "send", "later")
    assert result.exit_code == 1 and "later is scheduled for 2041-03-05" in result.stderr


def test_token_expiry_and_stored_timestamps_follow_the_clock(monkeypatch, tmp_path):
    secret = b"clock-secret-" * 2
    token = make_token(secret, "confirm", "a@example.com", "list", expires=int(FAR.timestamp()) + 60)
    monkeypatch.setenv(clock.ENV, FAR.isoformat())
    assert verify_token(secret, token, "confirm").email == "a@example.com"
    monkeypatch.setenv(clock.ENV, (FAR + timedelta(minutes=2)).isoformat())
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(secret, token, "confirm")
    store = SqliteStore(tmp_path / "subscribers.db")
    store.upsert(Subscriber("a@example.com"))
    (subscriber,) = store.iter()
    assert subscriber.created == (FAR + timedelta(minutes=2)).isoformat()
    store.close()


def test_the_preview_marks_scheduled_issues_by_the_clock(monkeypatch, tmp_path):
    import shutil

    from publisher.preview import Preview

    root = tmp_path / "news"
    shutil.copytree(REPO / "content", root / "content")
    shutil.copy(REPO / "publisher.toml", root / "publisher.toml")
    for moment, scheduled in ((datetime(2027, 5, 31, tzinfo=UTC), True), (datetime(2027, 6, 2, tzinfo=UTC), False)):
        monkeypatch.setenv(clock.ENV, moment.isoformat())
        preview = Preview(root, port=0)  # the default clock: publisher.clock
        try:
            future = [i.slug for i in preview.snapshot.issues if i.is_future(preview.clock())]
            assert bool(future) is scheduled, (moment, future)
        finally:
            preview.server.server_close()


def test_a_fixed_offset_is_kept(monkeypatch):
    monkeypatch.setenv(clock.ENV, "2041-03-04T00:00:00-05:00")
    assert clock.now().tzinfo == timezone(timedelta(hours=-5))
