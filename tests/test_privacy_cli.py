"""The CLI of segments and privacy (needs /tmp/helper-c-cli.patch applied to publisher/cli.py): `send --segment`,
`send --dry-run`'s audience line, `subscribers forget ADDRESS`, `subscribers export ADDRESS|FILE`."""

from __future__ import annotations

import json

from publisher.subscribers import SqliteStore, Subscriber

SECRET = "cli-privacy-secret-0123456789abcdef"


def setup(newsletter, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(newsletter.root)
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + '[email]\nfrom_address = "news@example.com"\npostal_address = "上海市 1 号"\n')
    newsletter.issue("2026-11-20-daily.md", "title: AI 日报\ndate: 2026-11-20\n", "第一段。\n")
    store = SqliteStore(newsletter.root / "subscribers.db")
    store.upsert_many([Subscriber("zh@example.com", "甲", tags=("zh",)),
                       Subscriber("en@example.com", "B", tags=("en",)),
                       Subscriber("paused@example.com", "C", tags=("zh", "paused"))])
    store.close()


def test_send_segment_and_dry_run(newsletter, run_cli, monkeypatch):  # type: ignore[no-untyped-def]
    setup(newsletter, monkeypatch)
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    dry = run_cli("send", "daily", "--dry-run", "--segment", "{any: [zh, en], not: [paused]}")
    assert dry.exit_code == 0, dry.output
    assert "audience: any of zh, en, none of paused: 2 of 3 active subscribers" in dry.output
    sent = run_cli("send", "daily", "--segment", "zh")
    assert sent.exit_code == 0 and "2 sent" in sent.output
    other = run_cli("send", "daily", "--segment", "en")
    assert other.exit_code == 1 and "started with the audience any of zh" in other.output
    bad = run_cli("send", "daily", "--segment", "{any: []}")
    assert bad.exit_code == 1 and "--segment" in bad.output and "Traceback" not in bad.output


def test_forget_and_export_person(newsletter, run_cli, monkeypatch):  # type: ignore[no-untyped-def]
    setup(newsletter, monkeypatch)
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET)
    assert run_cli("send", "daily").exit_code == 0
    shown = run_cli("subscribers", "export", "ZH@example.com")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["subscriber"]["name"] == "甲" and data["deliveries"][0]["state"] == "sent"
    csv = run_cli("subscribers", "export", "all.csv")  # the CSV export still works
    assert csv.exit_code == 0 and (newsletter.root / "all.csv").read_text().count("@example.com") == 3
    done = run_cli("subscribers", "forget", "zh@example.com")
    assert done.exit_code == 0 and "Forgot zh@example.com" in done.output and "outbox files: 1" in done.output
    again = run_cli("subscribers", "forget", "zh@example.com")
    assert again.exit_code == 1 and "nothing about zh@example.com was found" in again.output
    hostile = run_cli("subscribers", "forget", "zh@example.com\r\nBcc: x@example.com")
    assert hostile.exit_code == 1 and "Traceback" not in hostile.output
    assert "--status" in run_cli("subscribers", "export", "en@example.com", "--status", "active").output
