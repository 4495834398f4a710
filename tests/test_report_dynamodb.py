"""`publisher report` on the DynamoDB ledger (`[subscribers] dynamodb_table`), against a real moto server: a real
send (some sent, a failed one, a skipped one, an uncertain one, pending ones) and real SES notifications through
a real SQS queue; the report's figures are checked against the ledger's items, and the same scenario run on the
SQLite ledger at the same pinned times gives the very same report (text and JSON). Time is pinned through
PUBLISHER_NOW (no sleeps, no dependence on today's date)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import CONFIG, NOW, Newsletter
from test_events import bounce, complaint, sns
from test_ledger_dynamodb import requests  # noqa: F401 (a fixture)
from test_report import DAY, JSON_KEYS, SECRET, at

from publisher.events import process_queue
from publisher.report import NotSent, issue_report, render_html, sends_of
from publisher.sending import send_issue
from publisher.stores.dynamodb import DynamoDBStore, create_table
from publisher.stores.dynamodb_ledger import DynamoDBLedger, row_key
from publisher.stores.dynamodb_report import issue_of
from publisher.subscribers import SqliteStore, Subscriber
from publisher.transports import OutboxTransport, PermanentError, UncertainError

DOMAIN = "news.example.com"
ACTIVE = 12
FAILED = f"reader7@{DOMAIN}"
UNCERTAIN = f"reader8@{DOMAIN}"


class Scripted:
    """The real outbox, but one recipient is refused for good and one send ends without an answer after the
    message went out (the row stays `sending`: uncertain)."""

    name = "scripted"

    def __init__(self, inner: OutboxTransport) -> None:
        self.inner = inner

    def send(self, message: bytes, *, recipient: str, **kwargs: Any) -> str:
        if recipient == FAILED:
            raise PermanentError("550 5.1.1 no such user")
        provider_id = self.inner.send(message, recipient=recipient, **kwargs)
        if recipient == UNCERTAIN:
            raise UncertainError("no answer after sending")
        return provider_id

    def default_rate(self) -> None:
        return None

    def close(self) -> None:
        pass


class Backend:
    """One newsletter folder, its ledger in DynamoDB (`table`) or in SQLite; the same issues and subscribers."""

    def __init__(self, root: Path, table: str | None) -> None:
        self.newsletter = Newsletter(root)
        self.table = table
        extra = f'[subscribers]\ndynamodb_table = "{table}"\n' if table else ""
        self.newsletter.config(CONFIG + f'[email]\nfrom_address = "news@{DOMAIN}"\npostal_address = "上海市 1 号"\n'
                               + extra)
        self.newsletter.issue("2026-11-20-daily.md", "title: AI 日报：第一期\ndate: 2026-11-20\n", "第一段。\n")
        self.newsletter.issue("2026-11-21-second.md", "title: 第二期\ndate: 2026-11-21\n", "第二期。\n")
        if table:
            assert create_table(boto3.client("dynamodb"), table) is True
        self.config = self.newsletter.load_config()
        store = self.store()
        try:
            store.upsert_many(Subscriber(f"reader{n}@{DOMAIN}") for n in range(ACTIVE))
            store.upsert(Subscriber(f"gone@{DOMAIN}", status="unsubscribed"))
        finally:
            store.close()

    def store(self) -> Any:
        return DynamoDBStore(self.config) if self.table else SqliteStore(self.newsletter.root / "subscribers.db")

    def set_status(self, email: str, status: str) -> None:
        store = self.store()
        try:
            assert store.set_status(email, status)
        finally:
            store.close()

    def send(self, slug: str, **kwargs: Any) -> Any:
        transport = Scripted(OutboxTransport(self.newsletter.root / "outbox", slug))
        return send_issue(self.config, slug, now=NOW, secret=SECRET, transport=transport, **kwargs)

    def message_ids(self) -> dict[tuple[str, str], str]:
        """(issue, email) -> the Message-ID the ledger recorded for each sent message."""
        if self.table:
            ledger = DynamoDBLedger(self.config)
            try:
                return {(slug, item["email"]["S"]): item["message_id"]["S"] for slug in ("daily", "second")
                        for items, _ in ledger._rows(slug, state="sent") for item in items}
            finally:
                ledger.close()
        import sqlite3

        with sqlite3.connect(self.newsletter.root / "subscribers.db") as db:
            return {(i, e): m for i, e, m in db.execute("SELECT issue, email, message_id FROM deliveries "
                                                        "WHERE state = 'sent'")}


def scenario(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same steps at the same pinned times, on either ledger. Rows go out in key order (by address) on
    DynamoDB and in snapshot order on SQLite: the warm-up sends reader0, reader1 and two more on both, never
    reader5..reader9, so every figure is the same on both ledgers."""
    at(monkeypatch, "08:00:10")
    backend.send("daily", limit=4)  # a warm-up
    at(monkeypatch, "08:02:30")
    backend.set_status(f"reader6@{DOMAIN}", "unsubscribed")  # before its message: skipped
    backend.set_status(f"reader1@{DOMAIN}", "unsubscribed")  # after its message: unsubscribed since the send
    at(monkeypatch, "08:05:00")
    report = backend.send("daily")  # reader7 refused (failed), reader8 uncertain
    assert (report.failed, report.uncertain, report.skipped) == (1, 1, 1)
    at(monkeypatch, "09:10:00")
    backend.set_status(f"reader2@{DOMAIN}", "unsubscribed")
    at(monkeypatch, "10:00:00")
    backend.send("second", limit=2)  # the rest stays pending


def notify(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """SES notifications about the issues' own messages (our Message-ID in commonHeaders, as SES sends it),
    through a real SQS queue; the complaint twice, as SQS may redeliver."""
    ids = backend.message_ids()

    def about(notification: dict[str, Any], issue: str, address: str) -> dict[str, Any]:
        notification["mail"]["commonHeaders"]["messageId"] = ids[(issue, address)].strip("<>")
        return notification

    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName=f"ses-events-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    twice = about(complaint(f"reader0@{DOMAIN}"), "second", f"reader0@{DOMAIN}")
    for notification in (about(bounce("Permanent", f"reader3@{DOMAIN}"), "daily", f"reader3@{DOMAIN}"),
                         about(bounce("Transient", f"reader4@{DOMAIN}"), "daily", f"reader4@{DOMAIN}"),
                         twice, twice, bounce("Permanent", f"gone@{DOMAIN}")):  # the last: no message of ours
        sqs.send_message(QueueUrl=queue, MessageBody=sns(notification))
    at(monkeypatch, "11:00:00")
    process_queue(backend.config, queue)


def ledger_figures(config: Any, issue: str) -> dict[str, Any]:
    """The figures, computed here from the ledger's delivery items and the subscriber items directly."""
    ledger = DynamoDBLedger(config)
    store = DynamoDBStore(config)
    try:
        items = [item for items, _ in ledger._rows(issue) for item in items]
        states = Counter(item["state"]["S"] for item in items)
        sent = [item["email"]["S"] for item in items if item["state"]["S"] == "sent"]
        status = {email: (s.status if (s := store.get(email)) else None) for email in (i["email"]["S"] for i in items)}
        return {
            "recipients": len(items), "sent": states["sent"], "failed": states["failed"],
            "uncertain": states["sending"], "skipped": states["skipped"], "pending": states["pending"],
            "failures": sorted(Counter(i.get("last_error", {}).get("S", "") for i in items
                                       if i["state"]["S"] == "failed").items()),
            "skips": sorted(Counter(i.get("last_error", {}).get("S", "") for i in items
                                    if i["state"]["S"] == "skipped").items()),
            "hard now": sum(status[e] == "bounced" for e in sent),
            "complained now": sum(status[e] == "complained" for e in sent),
            "unsubscribed": sum(v == "unsubscribed" for v in status.values()),
            "events": {i["email"]["S"]: set(i["events"]["SS"]) for i in items if "events" in i},
        }
    finally:
        ledger.close()
        store.close()


@pytest.fixture
def both(tmp_path, aws, monkeypatch):  # type: ignore[no-untyped-def]
    ddb = Backend(tmp_path / "ddb", f"news-{uuid.uuid4().hex[:12]}")
    sql = Backend(tmp_path / "sqlite", None)
    return ddb, sql


def test_report_on_dynamodb_equals_the_ledger_and_the_sqlite_report(both, monkeypatch, requests):  # noqa: F811
    ddb, sql = both
    for backend in (ddb, sql):
        scenario(backend, monkeypatch)
    at(monkeypatch, "10:30:00")
    assert not (ddb.newsletter.root / "subscribers.db").exists()  # nothing in SQLite

    requests.calls.clear()
    report = issue_report(ddb.config, "daily")
    assert requests.writes() == 0 and not any(op == "Scan" for op, _ in requests.calls)  # read-only, no scan
    figures = ledger_figures(ddb.config, "daily")
    got = report.as_json()
    assert set(got) == JSON_KEYS
    for key in ("recipients", "sent", "failed", "uncertain", "skipped", "pending"):
        assert got[key] == figures[key], key
    assert sorted((f["reason"], f["count"]) for f in got["failures"]) == figures["failures"]
    assert sorted((f["reason"], f["count"]) for f in got["skips"]) == figures["skips"]
    assert (got["recipients"], got["sent"], got["failed"], got["uncertain"], got["skipped"], got["pending"]) == (
        12, 9, 1, 1, 1, 0)
    assert got["failures"] == [{"reason": "550 5.1.1 no such user", "count": 1}]
    assert got["skips"] == [{"reason": "subscriber is unsubscribed", "count": 1}]
    assert (got["subject"], got["segment"], got["attribution"]) == ("AI 日报：第一期", "everyone", "status now")
    assert (got["started_at"], got["finished_at"]) == (f"{DAY}08:00:10+00:00", None)  # uncertain: not finished
    assert (got["bounced"]["hard"], got["complained"]) == (figures["hard now"], figures["complained now"])
    assert got["unsubscribed_since_send"] == figures["unsubscribed"] == 3
    assert [(p["at"][11:16], p["count"], p["total"]) for p in got["timeline"]["sent"]] == [("08:00", 4, 4),
                                                                                          ("08:05", 5, 9)]
    assert [(p["at"][11:16], p["total"]) for p in got["timeline"]["unsubscribed"]] == [("08:02", 2), ("09:10", 3)]

    second = issue_report(ddb.config, "second").as_json()
    assert (second["recipients"], second["sent"], second["pending"]) == (9, 2, 7)
    figures2 = ledger_figures(ddb.config, "second")
    assert all(second[key] == figures2[key] for key in ("recipients", "sent", "failed", "uncertain", "skipped",
                                                          "pending"))
    assert issue_report(ddb.config).issue == "second"  # the default: the most recently started send
    assert sends_of(ddb.config) == sends_of(sql.config) == ["second", "daily"]
    with pytest.raises(NotSent, match="nope has not been sent"):
        issue_report(ddb.config, "nope")

    # The same scenario on SQLite: the very same report, text and JSON, times included (they are pinned).
    tz = ddb.config.site.timezone
    for slug in ("daily", "second"):
        assert issue_report(ddb.config, slug).as_json() == issue_report(sql.config, slug).as_json(), slug
        assert issue_report(ddb.config, slug).lines(tz) == issue_report(sql.config, slug).lines(tz), slug
    assert render_html(issue_report(ddb.config, "daily")) == render_html(issue_report(sql.config, "daily"))


def test_bounces_and_complaints_are_counted_per_message_on_dynamodb(both, monkeypatch):
    ddb, sql = both
    for backend in (ddb, sql):
        scenario(backend, monkeypatch)
        notify(backend, monkeypatch)
    assert not (ddb.newsletter.root / "subscribers.db").exists()  # the events went to DynamoDB, not SQLite
    daily, second = (ledger_figures(ddb.config, slug)["events"] for slug in ("daily", "second"))
    assert daily == {f"reader3@{DOMAIN}": {"bounce-hard"}, f"reader4@{DOMAIN}": {"bounce-soft"}}
    assert second == {f"reader0@{DOMAIN}": {"complaint"}}  # once, though SQS delivered it twice
    item = boto3.client("dynamodb").get_item(TableName=ddb.table, Key=row_key("daily", f"reader3@{DOMAIN}"))["Item"]
    assert "@" not in json.dumps(item["events"])  # no address added: the item already names its recipient

    got = issue_report(ddb.config, "daily").as_json()
    assert got["attribution"] == "per message"
    assert (got["bounced"], got["complained"]) == ({"hard": 1, "soft": 1}, 0)
    other = issue_report(ddb.config, "second").as_json()
    assert (other["attribution"], other["bounced"], other["complained"]) == (
        "per message", {"hard": 0, "soft": 0}, 1)
    tz = ddb.config.site.timezone
    for slug in ("daily", "second"):
        assert issue_report(ddb.config, slug).as_json() == issue_report(sql.config, slug).as_json(), slug
        assert issue_report(ddb.config, slug).lines(tz) == issue_report(sql.config, slug).lines(tz), slug


def test_message_ids_name_their_issue():
    assert issue_of("<2026-11-20-daily.0123456789abcdef01234567@news.example.com>") == "2026-11-20-daily"
    assert issue_of("<daily.0123456789abcdef01234567@news.example.com>") == "daily"
    for other in ("", "<0100019abc@email.amazonses.com>", "<daily.xyz@news.example.com>", "daily.0123"):
        assert issue_of(other) is None


def test_cli_reports_a_dynamodb_send(both, monkeypatch, run_cli):
    ddb, _ = both
    at(monkeypatch, "08:00:00")
    ddb.send("daily")
    root = str(ddb.newsletter.root)
    monkeypatch.setenv("PUBLISHER_NOW", NOW.isoformat())
    text = run_cli("-C", root, "report")
    assert text.exit_code == 0, text.stderr
    assert "daily: AI 日报：第一期" in text.stdout and "recipients 12: 10 sent, 1 failed, 1 uncertain" in text.stdout
    as_json = run_cli("-C", root, "report", "daily", "--json")
    assert as_json.exit_code == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert set(data) == JSON_KEYS and data["started_at"] == f"{DAY}08:00:00+00:00" and data["sent"] == 10
    unknown = run_cli("-C", root, "report", "second")
    assert unknown.exit_code == 1 and "second has not been sent" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_nothing_sent_on_dynamodb(both):
    ddb, _ = both
    with pytest.raises(NotSent, match="no issue has been sent yet"):
        issue_report(ddb.config)
    assert sends_of(ddb.config) == []


def test_preview_serves_the_report_of_a_dynamodb_send(both, monkeypatch):
    import urllib.error
    import urllib.request

    from publisher.preview import Preview

    ddb, _ = both
    at(monkeypatch, "08:00:00")
    ddb.send("daily")
    running = Preview(ddb.newsletter.root, port=0, clock=lambda: NOW).start(watch=False)
    try:
        with urllib.request.urlopen(running.url + "__preview/report/daily") as response:
            page = response.read().decode()
        assert '<th scope="row">Sent</th><td class="n">10</td>' in page and 'id="sent-chart"' in page
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(running.url + "__preview/report/second")
        assert missing.value.code == 404
    finally:
        running.stop()
