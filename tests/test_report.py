"""The per-issue report (publisher/report.py): real sends through the outbox and a real SMTP server (aiosmtpd),
SES bounce and complaint notifications through a real SQS queue (moto server), the HTML page in real headless
Chromium, and the preview's report route. Every number is checked against SQL over the ledger written here,
and the database is proved untouched by a report. Time is pinned through PUBLISHER_NOW (no sleeps)."""

from __future__ import annotations

import gc
import json
import re
import sqlite3
import urllib.error
import urllib.request

import boto3
import pytest
from aiosmtpd.controller import Controller
from browsers import chromium, served_folder
from conftest import CONFIG, NOW, free_port
from test_accessibility import audit, describe
from test_events import bounce, complaint, sns

from publisher.events import process_queue
from publisher.preview import Preview
from publisher.report import NO_TRACKING, NotSent, issue_report, render_html, report_from
from publisher.sending import send_issue
from publisher.subscribers import SqliteStore, Subscriber

SECRET = b"test-secret-" * 3
DAY = "2026-11-26T"
JSON_KEYS = {"format", "issue", "subject", "segment", "started_at", "finished_at", "recipients", "sent", "failed",
             "uncertain", "skipped", "pending", "failures", "skips", "bounced", "complained",
             "unsubscribed_since_send", "attribution", "timeline", "notes"}


def setup(newsletter, domain="example.com", extra="", active=12):
    newsletter.config(CONFIG + f'[email]\nfrom_address = "news@{domain}"\npostal_address = "上海市 1 号"\n' + extra)
    newsletter.issue("2026-11-20-daily.md", "title: AI 日报：第一期\ndate: 2026-11-20\n", "第一段。\n")
    newsletter.issue("2026-11-21-second.md", "title: 第二期\ndate: 2026-11-21\n", "第二期。\n")
    store = SqliteStore(newsletter.root / "subscribers.db")
    store.upsert_many(Subscriber(f"reader{n}@{domain}") for n in range(active))
    store.upsert(Subscriber(f"gone@{domain}", status="unsubscribed"))
    store.close()
    return newsletter.load_config()


def at(monkeypatch, clock: str) -> None:
    """Pin the time every ledger and subscriber timestamp gets (HH:MM:SS on the test day, UTC)."""
    monkeypatch.setenv("PUBLISHER_NOW", f"{DAY}{clock}+00:00")


def set_status(newsletter, email: str, status: str) -> None:
    store = SqliteStore(newsletter.root / "subscribers.db")
    try:
        assert store.set_status(email, status)
    finally:
        store.close()


def ledger_sql(newsletter, issue: str) -> dict:
    """The numbers, computed here with SQL of their own over the ledger and the subscribers."""
    db = sqlite3.connect(newsletter.root / "subscribers.db")
    try:
        one = lambda sql, *args: db.execute(sql, (issue, *args)).fetchone()[0]  # noqa: E731
        started = one("SELECT created_at FROM issue_sends WHERE issue = ?")
        return {
            "recipients": one("SELECT count(*) FROM deliveries WHERE issue = ?"),
            "audience": one("SELECT audience FROM issue_sends WHERE issue = ?"),
            **{name: one("SELECT count(*) FROM deliveries WHERE issue = ? AND state = ?", state)
               for name, state in (("sent", "sent"), ("failed", "failed"), ("uncertain", "sending"),
                                   ("skipped", "skipped"), ("pending", "pending"))},
            "failures": sorted(db.execute("SELECT last_error, count(*) FROM deliveries WHERE issue = ? AND "
                                          "state = 'failed' GROUP BY last_error", (issue,))),
            "hard": one("SELECT count(*) FROM deliveries d, subscribers s WHERE s.email = d.email AND d.issue = ? "
                        "AND d.state = 'sent' AND s.status = 'bounced'"),
            "complained": one("SELECT count(*) FROM deliveries d, subscribers s WHERE s.email = d.email AND "
                              "d.issue = ? AND d.state = 'sent' AND s.status = 'complained'"),
            "unsubscribed": one("SELECT count(*) FROM deliveries d, subscribers s WHERE s.email = d.email AND "
                                "d.issue = ? AND s.status = 'unsubscribed' AND s.changed_at >= ?", started),
        }
    finally:
        db.close()


def files_state(newsletter) -> tuple:
    """The database file (bytes and modification time) and what its WAL holds: what a write would change.
    (Opening a WAL database, even read-only, may create an empty -wal and the -shm index: no data.)"""
    gc.collect()  # a store send_issue opened and left to the garbage collector checkpoints the WAL when closed
    db = newsletter.root / "subscribers.db"
    wal = db.with_name(db.name + "-wal")
    return db.read_bytes(), db.stat().st_mtime_ns, wal.read_bytes() if wal.exists() else b""


def check_numbers(report, sql) -> None:
    got = report.as_json()
    assert (got["recipients"], got["recipients"]) == (sql["recipients"], sql["audience"])
    for key in ("sent", "failed", "uncertain", "skipped", "pending"):
        assert got[key] == sql[key], key
    assert sorted((f["reason"], f["count"]) for f in got["failures"]) == sql["failures"]
    assert (got["bounced"]["hard"], got["complained"], got["unsubscribed_since_send"]) == (
        sql["hard"], sql["complained"], sql["unsubscribed"])
    assert (got["timeline"]["sent"] or [{"total": 0}])[-1]["total"] == sql["sent"]
    assert (got["timeline"]["unsubscribed"] or [{"total": 0}])[-1]["total"] == sql["unsubscribed"]


@pytest.fixture(scope="module")
def browser():
    with chromium() as instance:
        yield instance


# ---- the numbers ----


def test_outbox_send_report_equals_the_ledger(newsletter, monkeypatch):
    config = setup(newsletter)
    at(monkeypatch, "08:00:10")
    send_issue(config, "daily", now=NOW, secret=SECRET, limit=4)  # a warm-up
    at(monkeypatch, "08:02:30")
    set_status(newsletter, "reader6@example.com", "unsubscribed")  # before its message: skipped
    set_status(newsletter, "reader1@example.com", "unsubscribed")  # after its message
    at(monkeypatch, "08:05:00")
    send_issue(config, "daily", now=NOW, secret=SECRET)
    at(monkeypatch, "09:10:00")
    set_status(newsletter, "reader2@example.com", "unsubscribed")

    report = issue_report(config, "daily")
    sql = ledger_sql(newsletter, "daily")
    check_numbers(report, sql)
    got = report.as_json()
    assert set(got) == JSON_KEYS and got["format"] == 1 and got["attribution"] == "status now"
    assert (got["recipients"], got["sent"], got["skipped"], got["unsubscribed_since_send"]) == (12, 11, 1, 3)
    assert got["skips"] == [{"reason": "subscriber is unsubscribed", "count": 1}]
    assert (got["subject"], got["segment"]) == ("AI 日报：第一期", "everyone")
    assert (got["started_at"], got["finished_at"]) == (f"{DAY}08:00:10+00:00", f"{DAY}08:05:00+00:00")
    timeline = got["timeline"]
    assert timeline["bucket"] == "minute"  # 70 minutes from the start to the last unsubscribe
    assert [(p["at"][11:16], p["count"], p["total"]) for p in timeline["sent"]] == [("08:00", 4, 4),
                                                                                   ("08:05", 7, 11)]
    assert [(p["at"][11:16], p["total"]) for p in timeline["unsubscribed"]] == [("08:02", 2), ("09:10", 3)]
    assert json.loads(json.dumps(got, ensure_ascii=False)) == got
    text = "\n".join(report.lines(config.site.timezone))
    assert "12 recipients" not in text and "recipients 12: 11 sent, 0 failed" in text
    assert "2026-11-26 16:00 CST" in text  # started, shown in site.timezone

    at(monkeypatch, "10:00:00")
    send_issue(config, "second", now=NOW, secret=SECRET)
    assert issue_report(config).issue == "second"  # the default: the most recently sent issue
    assert issue_report(config, "daily").sent == 11
    with pytest.raises(NotSent, match="nope has not been sent"):
        issue_report(config, "nope")


def test_a_long_send_is_charted_by_hour(newsletter, monkeypatch):
    config = setup(newsletter, active=6)
    at(monkeypatch, "01:00:00")
    send_issue(config, "daily", now=NOW, secret=SECRET, limit=2)
    at(monkeypatch, "07:30:00")
    send_issue(config, "daily", now=NOW, secret=SECRET)
    timeline = issue_report(config).as_json()["timeline"]
    assert timeline["bucket"] == "hour" and timeline["end"] == f"{DAY}08:00:00+00:00"
    assert [(p["at"][11:16], p["total"]) for p in timeline["sent"]] == [("01:00", 2), ("07:00", 6)]


class Refusing:
    """A real SMTP server's handler (aiosmtpd) that refuses some recipients at RCPT TO or after the message, and
    drops the connection without an answer after one recipient's message (which may then have arrived)."""

    def __init__(self, rcpt: dict[str, str], data: dict[str, str], drop: str) -> None:
        self.rcpt, self.data, self.drop = rcpt, data, drop

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd hook)
        if address in self.rcpt:
            return self.rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        (to,) = envelope.rcpt_tos
        if to == self.drop:
            server.transport.abort()
        return self.data.get(to, "250 Message accepted for delivery")


@pytest.fixture
def refusing():
    domain = "smtp.test"
    handler = Refusing({f"reader1@{domain}": "550 5.1.1 no such user", f"reader4@{domain}": "550 5.1.1 no such user"},
                       {f"reader6@{domain}": "552 5.2.2 mailbox full"}, drop=f"reader8@{domain}")
    port = free_port()  # Controller cannot take port 0
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


def test_failed_deliveries_show_their_reasons_grouped(newsletter, monkeypatch, refusing):
    config = setup(newsletter, "smtp.test", f'transport = "smtp"\n[smtp]\nhost = "127.0.0.1"\nport = {refusing}\n'
                   'security = "none"\ntimeout = 5\n', active=10)
    at(monkeypatch, "08:00:00")
    sent = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert (sent.sent, sent.failed, sent.uncertain) == (6, 3, 1)
    report = issue_report(config, "daily")
    check_numbers(report, ledger_sql(newsletter, "daily"))
    assert report.failures == [("550 5.1.1 no such user (at RCPT TO)", 2),
                               ("552 5.2.2 mailbox full (at the answer to the message)", 1)]
    assert (report.failed, report.uncertain, report.sent, report.finished_at) == (3, 1, 6, None)
    page = render_html(report)
    assert "550 5.1.1 no such user (at RCPT TO)" in page and "not finished" in page


def test_bounces_and_complaints_from_sqs_appear(newsletter, monkeypatch, aws):
    config = setup(newsletter, "news.example.com", active=8)
    at(monkeypatch, "08:00:00")
    send_issue(config, "daily", now=NOW, secret=SECRET)
    at(monkeypatch, "08:20:00")
    set_status(newsletter, "reader5@news.example.com", "unsubscribed")
    store = SqliteStore(newsletter.root / "subscribers.db")
    store.upsert(Subscriber("later@news.example.com"))  # not a recipient: its bounce is not this issue's
    store.close()
    queue = boto3.client("sqs").create_queue(QueueName="ses-events-report")["QueueUrl"]
    for notification in (bounce("Permanent", "reader0@news.example.com"),
                         bounce("Transient", "reader1@news.example.com", sub_type="MailboxFull"),
                         complaint("reader2@news.example.com"), bounce("Permanent", "later@news.example.com"),
                         bounce("Permanent", "reader3@news.example.com", event=True)):
        boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=sns(notification))
    at(monkeypatch, "09:00:00")
    events = process_queue(config, queue)
    assert (events.hard_bounces, events.soft_bounces, events.complaints) == (3, 1, 1)

    report = issue_report(config)
    check_numbers(report, ledger_sql(newsletter, "daily"))
    got = report.as_json()
    assert (got["bounced"], got["complained"], got["unsubscribed_since_send"]) == ({"hard": 2, "soft": 1}, 1, 1)
    assert got["sent"] == 8 and any("status now" in note for note in got["notes"])
    assert "Hard bounced" in render_html(report)


def test_report_is_read_only(newsletter, monkeypatch):
    config = setup(newsletter, active=5)
    path = newsletter.root / "subscribers.db"
    with pytest.raises(NotSent, match="no issue has been sent yet"):
        issue_report(config)  # the subscribers table alone: no ledger made, nothing created
    assert "deliveries" not in {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    at(monkeypatch, "08:00:00")
    send_issue(config, "daily", now=NOW, secret=SECRET)
    before = files_state(newsletter)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a send holding the write lock does not block a report
    try:
        report = issue_report(config, "daily")
        render_html(report, title="x", tz=config.site.timezone, language="zh-CN")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert report.sent == 5 and files_state(newsletter) == before
    missing = newsletter.root / "elsewhere.db"
    with pytest.raises(NotSent):
        report_from(missing)
    assert not missing.exists()


def test_a_segment_send_names_its_audience(newsletter, monkeypatch):
    config = setup(newsletter, active=3)
    store = SqliteStore(newsletter.root / "subscribers.db")
    store.upsert_many([Subscriber("zh1@example.com", tags=("中文",)),
                       Subscriber("zh2@example.com", tags=("中文", "ai"))])
    store.close()
    at(monkeypatch, "08:00:00")
    send_issue(config, "daily", now=NOW, secret=SECRET)
    assert issue_report(config, "daily").segment == "everyone"
    send_issue(config, "second", now=NOW, secret=SECRET, segment="[中文]")
    report = issue_report(config, "second")
    assert (report.segment, report.sent) == ("any of 中文", 2) and "sent to any of 中文" in render_html(report)


def test_bounces_and_complaints_are_counted_per_message_when_ses_names_them(newsletter, monkeypatch, aws):
    config = setup(newsletter, "news.example.com", active=6)
    at(monkeypatch, "08:00:00")
    send_issue(config, "daily", now=NOW, secret=SECRET)
    send_issue(config, "second", now=NOW, secret=SECRET)
    with sqlite3.connect(newsletter.root / "subscribers.db") as db:
        ids = dict(db.execute("SELECT issue || ' ' || email, message_id FROM deliveries"))

    def about(notification, issue, address):  # as SES sends it: our Message-ID in commonHeaders
        notification["mail"]["commonHeaders"]["messageId"] = ids[f"{issue} {address}"].strip("<>")
        return notification

    queue = boto3.client("sqs").create_queue(QueueName="ses-events-per-message")["QueueUrl"]
    twice = about(complaint("reader2@news.example.com"), "second", "reader2@news.example.com")  # SQS redelivers
    for notification in (about(bounce("Permanent", "reader0@news.example.com"), "second", "reader0@news.example.com"),
                         about(bounce("Transient", "reader1@news.example.com"), "daily", "reader1@news.example.com"),
                         twice, twice):
        boto3.client("sqs").send_message(QueueUrl=queue, MessageBody=sns(notification))
    at(monkeypatch, "09:00:00")
    process_queue(config, queue)
    with sqlite3.connect(newsletter.root / "subscribers.db") as db:
        kept = db.execute("SELECT * FROM message_events").fetchall()
    assert len(kept) == 3 and not any("@" in str(v) and "news.example.com>" not in str(v)
                                      for row in kept for v in row)  # message ids only, no address
    daily, second = issue_report(config, "daily").as_json(), issue_report(config, "second").as_json()
    assert daily["attribution"] == second["attribution"] == "per message"
    # reader0 bounced for good and reader2 complained about the second issue, not the first
    assert (daily["bounced"], daily["complained"]) == ({"hard": 0, "soft": 1}, 0)
    assert (second["bounced"], second["complained"]) == ({"hard": 1, "soft": 0}, 1)


# ---- the page ----


def test_html_report_in_chromium_shows_the_chart_and_the_numbers(newsletter, monkeypatch, browser, tmp_path):
    config = setup(newsletter, active=9)
    at(monkeypatch, "08:00:00")
    send_issue(config, "daily", now=NOW, secret=SECRET, limit=3)
    at(monkeypatch, "08:01:00")
    set_status(newsletter, "reader5@example.com", "unsubscribed")
    at(monkeypatch, "08:04:00")
    send_issue(config, "daily", now=NOW, secret=SECRET)
    report = issue_report(config)
    page_text = render_html(report, title=config.site.title, tz=config.site.timezone, language="zh-CN")
    assert "<script" not in page_text and "http://" not in page_text.replace("http://www.w3.org/2000/svg", "")
    assert page_text.count(NO_TRACKING) == 1
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "report.html").write_text(page_text, encoding="utf-8")
    colors = {}
    with served_folder(folder) as base:
        for scheme in ("light", "dark"):
            context = browser.new_context(color_scheme=scheme, viewport={"width": 800, "height": 900})
            page = context.new_page()
            requests: list[str] = []
            page.on("request", lambda r, seen=requests: seen.append(r.url))
            page.goto(base + "report.html")
            assert requests == [base + "report.html"]  # self-contained: nothing else is fetched
            for chart in ("#sent-chart", "#unsubscribed-chart"):
                box = page.locator(chart).bounding_box()
                assert box and box["width"] > 300 and box["height"] > 100
                labels = page.locator(chart).get_attribute("aria-labelledby").split()
                assert all(page.locator(f"#{label}").count() == 1 for label in labels)
                assert page.locator(f"{chart} polyline").bounding_box()["width"] > 100
            desc = page.locator("#sent-chart-desc").text_content()
            assert "3 by 2026-11-26 16:00 CST" in desc and "8 by 2026-11-26 16:04 CST" in desc
            table = page.locator("#deliveries")
            assert page.locator("#deliveries caption").inner_text() == "Deliveries (9 recipients)"
            assert page.locator("#deliveries th[scope=row]").count() == 5
            rows = dict(zip(table.locator("tbody th").all_inner_texts(), table.locator("tbody td").all_inner_texts(),
                            strict=True))
            assert (rows["Sent"], rows["Skipped"], rows["Failed"]) == ("8", "1", "0")
            assert page.locator("html").get_attribute("lang") == "en"
            assert page.locator("h1").get_attribute("lang") == "zh-CN"
            colors[scheme] = page.evaluate("getComputedStyle(document.body).backgroundColor")
            violations = audit(page)  # axe-core: WCAG 2.1 A and AA, contrast included, in both schemes
            assert violations == [], describe(violations)
            context.close()
    assert colors["light"] != colors["dark"]


def fetch(url: str, method: str = "GET") -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method)) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_preview_serves_the_report_and_changes_nothing(newsletter, monkeypatch, browser):
    config = setup(newsletter, active=7)
    at(monkeypatch, "08:00:00")
    send_issue(config, "daily", now=NOW, secret=SECRET)
    before = files_state(newsletter)
    running = Preview(newsletter.root, port=0, clock=lambda: NOW).start(watch=False)
    try:
        url = running.url + "__preview/report/"
        status, body = fetch(url + "daily")
        assert status == 200 and b'id="sent-chart"' in body
        page = body.decode()
        assert re.search(r'<th scope="row">Sent</th><td class="n">7</td>', page)
        head_status, head_body = fetch(url + "daily", "HEAD")
        assert (head_status, head_body) == (200, b"")
        assert fetch(url + "second")[0] == 404  # an issue not sent yet
        assert fetch(url + "no-such-issue")[0] == 404
        assert fetch(url + "no-such-issue", "HEAD")[0] == 404
        index = fetch(running.url + "__preview/")[1].decode()
        assert 'href="/__preview/report/daily"' in index and "/__preview/report/second" not in index
        context = browser.new_context()
        tab = context.new_page()
        tab.goto(url + "daily")
        assert tab.locator("#sent-chart").bounding_box()["height"] > 100
        assert "7" in tab.locator("#deliveries").inner_text()
        context.close()
    finally:
        running.stop()
    assert files_state(newsletter) == before


def test_without_the_subscriber_list_what_happened_since_is_unknown(newsletter, monkeypatch):
    config = setup(newsletter, active=3)
    at(monkeypatch, "08:00:00")
    send_issue(config, "daily", now=NOW, secret=SECRET)
    report = report_from(newsletter.root / "subscribers.db", subscribers=False)  # as with an SES contact list
    got = report.as_json()
    assert (got["sent"], got["bounced"], got["complained"], got["unsubscribed_since_send"]) == (
        3, {"hard": None, "soft": None}, None, None)
    assert "unknown" in "\n".join(report.lines()) and ">unknown<" in render_html(report)
