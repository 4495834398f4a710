"""The subscribe / confirm / unsubscribe endpoint, over real HTTP (uvicorn on a free port, httpx)."""

from __future__ import annotations

import email
import re
import time
from concurrent.futures import ThreadPoolExecutor
from email import policy

import httpx
import pytest
import uvicorn
from conftest import NOW, free_port, serve_in_thread
from waiting import wait_for

from publisher.sending import send_issue
from publisher.subscribers import SqliteStore, Subscriber
from publisher.subscription import SECURITY_HEADERS, create_app
from publisher.tokens import make_token

SECRET = b"endpoint-secret-" * 2
LIST_ID = "newsletter.news.example.com"


def make_config(newsletter, extra=""):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + '[email]\nfrom_address = "news@news.example.com"\n[serve]\nrate_per_ip = 1000\n' + extra)
    return newsletter.load_config()


@pytest.fixture
def server(newsletter):
    """Start the app for a config on a free port; yields a function(config) -> base URL."""
    started = []

    def start(config):
        port = free_port()
        started.append(serve_in_thread(uvicorn.Config(create_app(config, secret=SECRET), host="127.0.0.1",
                                                      port=port, log_level="warning")))
        return f"http://127.0.0.1:{port}"

    yield start
    for instance, thread in started:
        instance.should_exit = True
        thread.join(timeout=10)


def confirmations(newsletter):
    folder = newsletter.root / "outbox" / "confirmations"
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(folder.glob("*.eml"))] \
        if folder.exists() else []


def status(newsletter, address):
    found = SqliteStore(newsletter.root / "subscribers.db").get(address)
    return found.status if found else None


def test_subscribe_confirm_and_the_confirmation_email(newsletter, server):
    base = server(make_config(newsletter))
    answer = httpx.post(f"{base}/subscribe", data={"email": "New.Reader@Example.com", "name": "张三"})
    assert answer.status_code == 200 and "请查收确认邮件" in answer.text
    (message,) = wait_for(lambda: confirmations(newsletter), what="the confirmation")  # sent by the worker
    assert status(newsletter, "new.reader@example.com") == "unconfirmed"
    assert message["To"] == "new.reader@example.com" and "请确认订阅" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    assert "你好，张三" in text and "Someone (we hope you)" not in text  # in the site's language only
    link = re.search(r"https://news\.example\.com/daily/confirm\?token=\S+", text).group(0)
    path = link.split("/daily", 1)[1]
    page = httpx.get(base + path)  # a page with a button: opening the link changes nothing (mail scanners)
    assert page.status_code == 200 and page.text.count("<button") == 1
    assert status(newsletter, "new.reader@example.com") == "unconfirmed"
    confirmed = httpx.post(base + path)  # the button
    assert confirmed.status_code == 200 and "订阅成功" in confirmed.text
    assert status(newsletter, "new.reader@example.com") == "active"
    assert httpx.post(base + path).status_code == 200  # idempotent


def test_the_answer_does_not_tell_whether_an_address_is_known(newsletter, server):
    base = server(make_config(newsletter))
    store = SqliteStore(newsletter.root / "subscribers.db")
    store.upsert(Subscriber("known@example.com"))
    known = httpx.post(f"{base}/subscribe", data={"email": "known@example.com"})
    unknown = httpx.post(f"{base}/subscribe", data={"email": "unknown@example.com"})
    assert (known.status_code, known.text) == (unknown.status_code, unknown.text)
    # one worker, in order: once the unknown address's confirmation is out, the known one was handled before it
    wait_for(lambda: confirmations(newsletter), what="the confirmation")
    assert [m["To"] for m in confirmations(newsletter)] == ["unknown@example.com"]  # active: nothing to confirm


def test_json_subscribe_and_cors_only_for_the_site(newsletter, server):
    base = server(make_config(newsletter))
    ours = httpx.post(f"{base}/subscribe", json={"email": "j@example.com"},
                      headers={"Origin": "https://news.example.com"})
    assert ours.status_code == 200 and ours.json()["ok"] is True
    assert ours.headers["access-control-allow-origin"] == "https://news.example.com"
    theirs = httpx.post(f"{base}/subscribe", json={"email": "k@example.com"}, headers={"Origin": "https://evil.test"})
    assert "access-control-allow-origin" not in theirs.headers
    preflight = httpx.options(f"{base}/subscribe", headers={"Origin": "https://news.example.com",
                                                             "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204 and "POST" in preflight.headers["access-control-allow-methods"]


def test_one_click_unsubscribe_and_the_next_send_skips_the_address(newsletter, server):
    config = make_config(newsletter)
    base = server(config)
    store = SqliteStore(newsletter.root / "subscribers.db")
    store.upsert_many(Subscriber(f"r{n}@example.com") for n in range(3))
    newsletter.issue("2026-11-20-one.md", "title: 一\ndate: 2026-11-20\n")
    newsletter.issue("2026-11-21-two.md", "title: 二\ndate: 2026-11-21\n")
    send_issue(config, "one", now=NOW, secret=SECRET)
    first = next(p for p in (newsletter.root / "outbox" / "one").glob("*.eml")
                 if b"r1@example.com" in p.read_bytes())
    header = email.message_from_bytes(first.read_bytes(), policy=policy.default)["List-Unsubscribe"]
    url = re.search(r"<(https://[^>]+)>", header).group(1)
    clicked = httpx.post(base + url.split("/daily", 1)[1], content=b"List-Unsubscribe=One-Click",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert clicked.status_code == 200 and status(newsletter, "r1@example.com") == "unsubscribed"
    second = send_issue(config, "two", now=NOW, secret=SECRET)
    assert second.sent == 2
    assert not any(b"r1@example.com" in p.read_bytes() for p in (newsletter.root / "outbox" / "two").glob("*.eml"))


def test_unsubscribe_page_has_one_button(newsletter, server):
    base = server(make_config(newsletter))
    SqliteStore(newsletter.root / "subscribers.db").upsert(Subscriber("p@example.com"))
    token = make_token(SECRET, "unsubscribe", "p@example.com", LIST_ID)
    page = httpx.get(f"{base}/unsubscribe?token={token}")
    assert page.status_code == 200 and page.text.count("<button") == 1
    assert status(newsletter, "p@example.com") == "active"  # looking is not unsubscribing (link scanners)
    done = httpx.post(f"{base}/unsubscribe?token={token}", data={"confirm": "1"})
    assert done.status_code == 200 and "已退订" in done.text and status(newsletter, "p@example.com") == "unsubscribed"


@pytest.mark.parametrize("purpose", ["unsubscribe", "confirm"])
def test_forged_altered_or_expired_tokens_change_nothing(newsletter, server, purpose):
    base = server(make_config(newsletter))
    SqliteStore(newsletter.root / "subscribers.db").upsert(Subscriber("v@example.com", status="unconfirmed"))
    good = make_token(SECRET, purpose, "v@example.com", LIST_ID, expires=int(time.time()) + 60)
    bad = [make_token(b"x" * 32, purpose, "v@example.com", LIST_ID),  # forged
           good[:-2] + ("AA" if not good.endswith("AA") else "BB"),  # altered
           make_token(SECRET, purpose, "v@example.com", LIST_ID, expires=int(time.time()) - 1),  # expired
           make_token(SECRET, purpose, "v@example.com", "other.list.example"),  # another list
           ""]
    for token in bad:
        if purpose == "confirm":
            assert httpx.get(f"{base}/confirm?token={token}").status_code == 400, token
            answer = httpx.post(f"{base}/confirm?token={token}")
        else:
            answer = httpx.post(f"{base}/unsubscribe?token={token}", content=b"List-Unsubscribe=One-Click")
        assert answer.status_code == 400, token
    assert status(newsletter, "v@example.com") == "unconfirmed"


def test_rate_limits_per_ip_and_per_address(newsletter, server):
    base = server(make_config_limits(newsletter))
    codes = [httpx.post(f"{base}/subscribe", data={"email": "same@example.com"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]  # per address
    more = [httpx.post(f"{base}/subscribe", data={"email": f"d{n}@example.com"}).status_code for n in range(3)]
    assert more == [200, 200, 429]  # per IP: 5 in the window (3 above, 2 here), then refused
    wait_for(lambda: len(confirmations(newsletter)) == 4, what="4 confirmations")


def make_config_limits(newsletter):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + '[email]\nfrom_address = "news@news.example.com"\n'
                        '[serve]\nrate_per_ip = 5\nrate_per_address = 2\n')
    return newsletter.load_config()


def test_honeypot_body_limit_and_no_open_redirect(newsletter, server):
    base = server(make_config(newsletter, "max_body = 200\n"))
    trap = httpx.post(f"{base}/subscribe", data={"email": "bot@example.com", "website": "http://spam.test"})
    assert trap.status_code == 200 and status(newsletter, "bot@example.com") is None
    big = httpx.post(f"{base}/subscribe", data={"email": "b@example.com", "name": "x" * 500})
    assert big.status_code == 413 and status(newsletter, "b@example.com") is None
    outside = httpx.post(f"{base}/subscribe", data={"email": "o@example.com", "next": "https://evil.test/"})
    assert outside.status_code == 200 and "location" not in outside.headers
    inside = httpx.post(f"{base}/subscribe", data={"email": "i@example.com",
                                                    "next": "https://news.example.com/daily/thanks/"})
    assert inside.status_code == 303 and inside.headers["location"] == "https://news.example.com/daily/thanks/"
    sideways = httpx.post(f"{base}/subscribe", data={"email": "s@example.com",
                                                      "next": "https://news.example.com.evil.test/daily/"})
    assert "location" not in sideways.headers


def test_security_headers_on_every_answer(newsletter, server):
    base = server(make_config(newsletter))
    answers = [httpx.post(f"{base}/subscribe", data={"email": "h@example.com"}),
               httpx.post(f"{base}/subscribe", data={"email": "not an address"}),
               httpx.get(f"{base}/confirm?token=nope"), httpx.get(f"{base}/unsubscribe?token=nope"),
               httpx.get(f"{base}/nowhere")]
    for answer in answers:
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (answer.request.url, name)
    assert [a.status_code for a in answers] == [200, 400, 400, 400, 404]


def test_a_hundred_concurrent_subscribes_are_all_stored_once(newsletter, server):
    base = server(make_config(newsletter))
    addresses = [f"c{n}@example.com" for n in range(100)]
    with httpx.Client() as client, ThreadPoolExecutor(32) as pool:
        codes = list(pool.map(lambda a: client.post(f"{base}/subscribe", data={"email": a}).status_code, addresses))
    assert codes == [200] * 100
    wait_for(lambda: len(confirmations(newsletter)) == 100, what="100 confirmations")
    store = SqliteStore(newsletter.root / "subscribers.db")
    assert store.count("unconfirmed") == 100 and {s.email for s in store.iter()} == set(addresses)


def test_the_site_gets_a_subscribe_form(newsletter):
    from publisher.build import build

    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text().replace(
        'author = "编辑部"', 'author = "编辑部"\nsubscribe_url = "https://api.news.example.com/subscribe"'))
    newsletter.issue("x.md")
    build(newsletter.load_config(), now=NOW)
    page = (newsletter.root / "dist" / "index.html").read_text()
    assert '<form class="subscribe" method="post" action="https://api.news.example.com/subscribe">' in page
    assert 'name="website"' in page and 'type="email" name="email"' in page
