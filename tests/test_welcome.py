"""The welcome email (content/_welcome.md): queued with the confirmation, sent once, over real HTTP and the outbox."""

from __future__ import annotations

import email
import logging
import os
import re
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from email import policy

import httpx
import pytest
import uvicorn
from conftest import NOW, REPO, free_port, serve_in_thread
from waiting import wait_for

from publisher import subscription, welcome
from publisher.errors import PublisherError
from publisher.subscribers import SqliteStore, Subscriber
from publisher.subscription import create_app

SECRET = b"welcome-endpoint-secret-" * 2
SUBJECT = "欢迎订阅 AI 日报"
WELCOME = f"""\
---
title: "{SUBJECT}"
preheader: 每天一封，五分钟读完
---

你好！每天早上，我们把最重要的 AI 新闻发给你。

[关于我们](https://news.example.com/daily/about/)
"""


def make_config(newsletter, *, with_welcome=True, extra=""):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + '[email]\nfrom_address = "news@news.example.com"\n[serve]\nrate_per_ip = 1000\n' + extra)
    if with_welcome:
        (newsletter.content / "_welcome.md").write_text(WELCOME, encoding="utf-8")
    return newsletter.load_config()


@pytest.fixture
def server():
    """Start the app for a config on a free port; yields a function(config, **kwargs) -> (base URL, Endpoint)."""
    started = []

    def start(config, **kwargs):
        port = free_port()
        app = create_app(config, secret=SECRET, **kwargs)
        started.append(serve_in_thread(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")))
        return f"http://127.0.0.1:{port}", app.state.endpoint

    yield start
    for instance, thread in started:
        instance.should_exit = True
        thread.join(timeout=10)


def messages_in(newsletter, folder):
    path = newsletter.root / "outbox" / folder
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(path.glob("*.eml"))] \
        if path.exists() else []


def welcomes(newsletter):
    return messages_in(newsletter, "_welcome")


def rows(newsletter):
    with sqlite3.connect(newsletter.root / "subscribers.db") as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'deliveries'").fetchone():
            return []
        return db.execute("SELECT email, state FROM deliveries WHERE issue = '_welcome' ORDER BY id").fetchall()


def sign_up(newsletter, base, address, name=""):
    """Subscribe; returns the path (and query) of the confirmation link."""
    httpx.post(f"{base}/subscribe", data={"email": address, "name": name}).raise_for_status()
    message = wait_for(lambda: [m for m in messages_in(newsletter, "confirmations") if m["To"] == address],
                       what="the confirmation")[0]
    text = message.get_body(("plain",)).get_content()
    return re.search(r"https://news\.example\.com/daily(/confirm\?token=\S+)", text).group(1)


def test_confirming_sends_one_welcome_like_an_issue(newsletter, server):
    base, endpoint = server(make_config(newsletter))
    link = sign_up(newsletter, base, "new@example.com", "张三")
    assert httpx.get(base + link).status_code == 200  # the page with a button: nothing queued yet
    assert endpoint.worker.drain(10) and rows(newsletter) == []
    assert httpx.post(base + link).status_code == 200
    (message,) = wait_for(lambda: welcomes(newsletter), what="the welcome")
    assert message["Subject"] == SUBJECT and message["To"] == "张三 <new@example.com>"
    unsubscribe = message["List-Unsubscribe"]
    assert re.search(r"<https://news\.example\.com/daily/unsubscribe\?token=[^>]+>", unsubscribe)
    assert "<mailto:news@news.example.com?subject=unsubscribe" in unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"].startswith("<_welcome.")
    text = message.get_body(("plain",)).get_content()
    assert "你好，张三" in text and "每天早上" in text and "new@example.com" in text
    html = message.get_body(("html",)).get_content()
    assert "每天一封，五分钟读完" in html and "/issues/_welcome" not in html  # no page of its own
    assert endpoint.worker.drain(10) and rows(newsletter) == [("new@example.com", "sent")]


def test_the_confirm_link_opened_again_and_again_sends_one_welcome(newsletter, server):
    base, endpoint = server(make_config(newsletter))
    link = sign_up(newsletter, base, "twice@example.com")
    assert httpx.get(base + link).status_code == 200
    assert httpx.post(base + link).status_code == 200
    wait_for(lambda: welcomes(newsletter), what="the welcome")
    with ThreadPoolExecutor(8) as pool:  # clicked again, at once, from many tabs
        codes = list(pool.map(lambda _: httpx.post(base + link).status_code, range(8)))
    assert codes == [200] * 8 and httpx.get(base + link).status_code == 200
    assert endpoint.worker.drain(10)
    assert len(welcomes(newsletter)) == 1 and rows(newsletter) == [("twice@example.com", "sent")]


def test_confirmations_at_once_each_get_one_welcome(newsletter, server):
    base, endpoint = server(make_config(newsletter))
    links = [sign_up(newsletter, base, f"c{n}@example.com") for n in range(6)]
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda link: httpx.post(base + link).status_code, links * 2))
    assert codes == [200] * 12
    wait_for(lambda: len(welcomes(newsletter)) == 6, what="6 welcomes")
    assert endpoint.worker.drain(10)
    assert sorted(m["To"] for m in welcomes(newsletter)) == sorted(f"c{n}@example.com" for n in range(6))


def test_a_welcome_queued_by_a_process_that_died_is_sent_once_by_a_new_process(newsletter, server):
    config = make_config(newsletter)
    base, endpoint = server(config, send_welcome=False)  # confirms and queues, never sends: as if killed there
    for address in ("a@example.com", "b@example.com"):
        assert httpx.post(base + sign_up(newsletter, base, address)).status_code == 200
    assert endpoint.worker.drain(10)
    assert welcomes(newsletter) == [] and rows(newsletter) == [("a@example.com", "pending"),
                                                                ("b@example.com", "pending")]
    code = ("import sys; from publisher.config import load_config; from publisher import welcome\n"
            "report = welcome.send_pending(load_config(sys.argv[1], environ={}))\n"
            "print(report.sent, report.remaining)")
    env = dict(os.environ, PUBLISHER_SECRET=SECRET.decode(), PUBLISHER_NOW=NOW.isoformat(), PYTHONPATH=str(REPO))
    for expected in ("2 0", "0 0"):  # the second run finds nothing left to send
        done = subprocess.run([sys.executable, "-c", code, str(newsletter.root)], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == expected.split()
    assert sorted(m["To"] for m in welcomes(newsletter)) == ["a@example.com", "b@example.com"]
    assert [state for _, state in rows(newsletter)] == ["sent", "sent"]


def test_serve_sends_what_a_killed_process_left_when_it_starts(newsletter, server, monkeypatch):
    config = make_config(newsletter)
    base, endpoint = server(config, send_welcome=False)
    left = [f"left{n}@example.com" for n in range(3)]
    for address in left:
        assert httpx.post(base + sign_up(newsletter, base, address)).status_code == 200
    assert endpoint.worker.drain(10) and [state for _, state in rows(newsletter)] == ["pending"] * 3
    monkeypatch.setattr(subscription, "WELCOME_BATCH", 1)  # a backlog goes out in passes, one message each
    server(config)  # the next start sends them, with no confirmation to prompt it
    wait_for(lambda: len(welcomes(newsletter)) == 3, what="3 welcomes")
    assert sorted(m["To"] for m in welcomes(newsletter)) == left


def test_a_welcome_left_sending_by_a_killed_send_is_counted_sent_not_sent_again(newsletter, caplog):
    config = make_config(newsletter)
    store = SqliteStore(newsletter.root / "subscribers.db")
    with welcome.queue_activations(config, store):
        store.upsert_many([Subscriber("sent-maybe@example.com"), Subscriber("waiting@example.com")])
    with sqlite3.connect(newsletter.root / "subscribers.db") as db:  # killed after the claim, before the record
        db.execute("UPDATE deliveries SET state = 'sending', attempts = 1 WHERE email = 'sent-maybe@example.com'")
    with caplog.at_level(logging.WARNING, logger="publisher.welcome"):
        report = welcome.send_pending(config, now=NOW, secret=SECRET)
    assert report.sent == 1 and [m["To"] for m in welcomes(newsletter)] == ["waiting@example.com"]
    assert "1 welcome emails may or may not have gone out" in caplog.text
    assert rows(newsletter) == [("sent-maybe@example.com", "sent"), ("waiting@example.com", "sent")]


def test_imported_subscribers_get_a_welcome_only_with_the_option(newsletter):
    config = make_config(newsletter)
    store = SqliteStore(newsletter.root / "subscribers.db")
    with welcome.queue_activations(config, store, welcome=False):  # `subscribers import` without --welcome
        store.upsert_many([Subscriber("old@example.com")])
    assert welcome.send_pending(config, now=NOW, secret=SECRET).sent == 0 and rows(newsletter) == []
    with welcome.queue_activations(config, store):  # with --welcome
        store.upsert_many([Subscriber("old@example.com"),  # active already: not new, no welcome
                           Subscriber("new@example.com", "李四"),
                           Subscriber("later@example.com", status="unconfirmed"),
                           Subscriber("gone@example.com", status="unsubscribed")])
    assert welcome.send_pending(config, now=NOW, secret=SECRET).sent == 1
    assert [m["To"] for m in welcomes(newsletter)] == ["李四 <new@example.com>"]
    with welcome.queue_activations(config, store):  # imported again, and one made active: only that one
        store.upsert_many([Subscriber("new@example.com"), Subscriber("later@example.com")])
    assert welcome.send_pending(config, now=NOW, secret=SECRET).sent == 1
    assert sorted(m["To"] for m in welcomes(newsletter)) == ["later@example.com", "李四 <new@example.com>"]
    store.set_status("new@example.com", "unsubscribed")
    with welcome.queue_activations(config, store):  # back again: a welcome is once per address, ever
        store.upsert_many([Subscriber("new@example.com")], reactivate=True)
    assert welcome.send_pending(config, now=NOW, secret=SECRET).sent == 0 and len(welcomes(newsletter)) == 2


def test_a_failed_import_queues_no_welcome(newsletter):
    config = make_config(newsletter)
    store = SqliteStore(newsletter.root / "subscribers.db")
    with pytest.raises(PublisherError), welcome.queue_activations(config, store):
        # the second row is refused: the transaction (subscriber rows and welcome rows together) is undone
        store.upsert_many([Subscriber("fine@example.com"), Subscriber("bad@example.com", "x" * 500)])
    assert store.get("fine@example.com") is None and rows(newsletter) == []


def test_without_a_welcome_file_nothing_is_queued_or_sent(newsletter, server):
    config = make_config(newsletter, with_welcome=False)
    base, endpoint = server(config)
    assert httpx.post(base + sign_up(newsletter, base, "plain@example.com")).status_code == 200
    assert endpoint.worker.drain(10)
    assert SqliteStore(newsletter.root / "subscribers.db").get("plain@example.com").status == "active"
    assert rows(newsletter) == [] and welcomes(newsletter) == []
    (newsletter.content / "_welcome.md").write_text(WELCOME, encoding="utf-8")  # written afterwards
    assert welcome.send_pending(config, now=NOW, secret=SECRET).sent == 0  # queued only while it exists
    assert welcomes(newsletter) == []


def test_queued_welcomes_wait_while_the_file_is_missing(newsletter, caplog):
    config = make_config(newsletter)
    store = SqliteStore(newsletter.root / "subscribers.db")
    with welcome.queue_activations(config, store):
        store.upsert(Subscriber("patient@example.com"))
    (newsletter.content / "_welcome.md").rename(newsletter.root / "welcome-draft.md")
    with caplog.at_level(logging.WARNING, logger="publisher.welcome"):
        assert welcome.send_pending(config, now=NOW, secret=SECRET).remaining == 1
    assert "1 welcome emails wait for content/_welcome.md" in caplog.text and welcomes(newsletter) == []
    (newsletter.root / "welcome-draft.md").rename(newsletter.content / "_welcome.md")
    assert welcome.send_pending(config, now=NOW, secret=SECRET).sent == 1


def test_the_welcome_renders_for_a_preview_and_names_its_errors(newsletter, caplog):
    config = make_config(newsletter)
    rendered = welcome.render(config, now=NOW)  # what `publisher email _welcome` shows
    assert rendered.subject == SUBJECT and rendered.preheader == "每天一封，五分钟读完"
    assert "每天早上" in rendered.text and "https://news.example.com/daily/about/" in rendered.html
    (newsletter.content / "_welcome.md").write_text("---\ntitle: 欢迎\ndate: 2099-01-01\ndraft: true\n---\n\n正文\n",
                                                    encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="publisher.welcome"):
        assert welcome.render(config, now=NOW).subject == "欢迎"  # a date in the future does not hold it back
    assert "`draft:` ignored" in caplog.text and "`date:`" not in caplog.text
    (newsletter.content / "_welcome.md").write_text("---\ntitle: 欢迎\ndate: 2099-01-01\ntags: 5\n---\n\n正文\n",
                                                    encoding="utf-8")
    with pytest.raises(PublisherError) as raised:
        welcome.render(config, now=NOW)
    (problem,) = raised.value.problems
    assert (str(problem.file), problem.line, problem.field) == ("content/_welcome.md", 4, "tags")
    (newsletter.content / "_welcome.md").unlink()
    with pytest.raises(PublisherError, match="does not exist"):
        welcome.render(config, now=NOW)


def test_the_welcome_is_not_on_the_site_nor_in_the_feeds(newsletter):
    from publisher.build import build

    config = make_config(newsletter)
    newsletter.issue("2026-11-20-first.md", 'title: "第一期"\ndate: 2026-11-20\n')
    build(config, now=NOW)
    dist = newsletter.root / "dist"
    files = [p for p in dist.rglob("*") if p.is_file()]
    assert (dist / "issues" / "first" / "index.html").exists()
    assert not [p for p in files if "welcome" in str(p.relative_to(dist))]
    for name in ("index.html", "rss.xml", "atom.xml", "feed.json", "sitemap.xml"):
        text = (dist / name).read_text(encoding="utf-8")
        assert SUBJECT not in text and "每天早上" not in text, name


def test_with_the_ses_contact_list_the_row_follows_the_status_and_a_second_click_repairs_a_crash(newsletter, aws):
    from publisher.ses_contacts import SesContactStore

    config = make_config(newsletter, extra=f'[subscribers]\nses_contact_list = "news-{os.getpid()}-welcome"\n')
    store = SesContactStore(config)
    store.upsert_many([Subscriber("ses@example.com", "王五", status="unconfirmed"),
                       Subscriber("crashed@example.com", status="unconfirmed")])
    assert welcome.activate(config, store, "ses@example.com")
    store.set_status("crashed@example.com", "active")  # killed after the status, before the row
    assert rows(newsletter) == [("ses@example.com", "pending")]
    assert welcome.requeue(config, store, "crashed@example.com")  # its second click of the link writes it
    assert not welcome.requeue(config, store, "ses@example.com") and not welcome.activate(config, store,
                                                                                            "ses@example.com")
    assert welcome.send_pending(config, now=NOW, secret=SECRET).sent == 2
    assert sorted(m["To"] for m in welcomes(newsletter)) == ["crashed@example.com", "王五 <ses@example.com>"]
    assert not welcome.requeue(config, store, "ses@example.com")
    assert welcome.send_pending(config, now=NOW, secret=SECRET).sent == 0
    with welcome.queue_activations(config, store):  # an import with --welcome: the new active addresses only
        store.upsert_many([Subscriber("ses@example.com"), Subscriber("imported@example.com")])
    assert welcome.send_pending(config, now=NOW, secret=SECRET).sent == 1
    assert sorted(m["To"] for m in welcomes(newsletter)) == ["crashed@example.com", "imported@example.com",
                                                             "王五 <ses@example.com>"]
