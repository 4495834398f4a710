"""The subscribe endpoint against its security issue: scanners, stale tokens, timing, logs, headers, limits.

Real parts throughout: uvicorn on 127.0.0.1, httpx, SQLite, the outbox transport. The one stand-in is the slow
mail server of the timing tests (a transport that blocks until released), said where it is used.
"""

from __future__ import annotations

import email
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
from datetime import timedelta
from email import policy

import httpx
import pytest
import uvicorn
from conftest import NOW, REPO, free_port, serve_in_thread
from waiting import Lines, wait_for

from publisher import clock
from publisher.errors import PublisherError
from publisher.subscribers import SqliteStore, Subscriber
from publisher.subscription import SECURITY_HEADERS, create_app
from publisher.tokens import make_token, secret_from_env
from publisher.transports import OutboxTransport

SECRET = b"security-serve-secret-" * 2
LIST_ID = "newsletter.news.example.com"
NEEDED = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy")


def make_config(newsletter, extra=""):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + '[email]\nfrom_address = "news@news.example.com"\n[serve]\nrate_per_ip = 1000\n' + extra)
    return newsletter.load_config()


class Running:
    def __init__(self, app, instance, thread, port):
        self.app, self.instance, self.thread = app, instance, thread
        self.base = f"http://127.0.0.1:{port}"
        self.port = port

    @property
    def endpoint(self):
        return self.app.state.endpoint

    def stop(self):
        self.instance.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def start():
    """start(config, server_config=False, header_timeout=None, **create_app kwargs) -> Running. With
    server_config, uvicorn is configured exactly as `publisher serve` configures it."""
    started = []

    def run(config, *, server_config=False, header_timeout=None, **kwargs):
        port = free_port()
        app = create_app(config, **{"secret": SECRET, **kwargs})
        if server_config:
            from publisher.subscription import server_config as configure

            extra = {"header_timeout": header_timeout} if header_timeout else {}
            settings = configure(config, app, "127.0.0.1", port, **extra)
        else:
            settings = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        instance, thread = serve_in_thread(settings)
        running = Running(app, instance, thread, port)
        started.append(running)
        return running

    yield run
    for running in started:
        running.stop()


@pytest.fixture
def records():
    """Collects the records of the given loggers (attached directly: the CLI may stop `publisher` propagating)."""
    collected: list[logging.LogRecord] = []
    attached = []

    class Collect(logging.Handler):
        def emit(self, record):
            collected.append(record)

    def attach(name):
        logger, handler = logging.getLogger(name), Collect(logging.DEBUG)
        logger.addHandler(handler)
        attached.append((logger, handler))
        return collected

    yield attach
    for logger, handler in attached:
        logger.removeHandler(handler)


def outbox(newsletter):
    folder = newsletter.root / "outbox" / "confirmations"
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(folder.glob("*.eml"))] \
        if folder.exists() else []


def status(newsletter, address):
    store = SqliteStore(newsletter.root / "subscribers.db")
    try:
        found = store.get(address)
    finally:
        store.close()
    return found.status if found else None


def confirm_path(message):
    text = message.get_body(("plain",)).get_content()
    return re.search(r"https://news\.example\.com/daily(/confirm\?token=\S+)", text).group(1)


def subscribe_and_get_link(newsletter, base, address, count):
    """POST /subscribe, wait for the count-th confirmation to arrive, return its /confirm path."""
    answer = httpx.post(f"{base}/subscribe", data={"email": address})
    assert answer.status_code == 200
    messages = wait_for(lambda: len(outbox(newsletter)) >= count and outbox(newsletter), what="the confirmation")
    assert messages[count - 1]["To"] == address
    return confirm_path(messages[count - 1])


# ---- 4: HEAD and GET change nothing; only POST does ----


def test_head_and_get_change_nothing_only_post_confirms_or_unsubscribes(newsletter, start):
    server = start(make_config(newsletter))
    path = subscribe_and_get_link(newsletter, server.base, "scan@example.com", 1)
    assert status(newsletter, "scan@example.com") == "unconfirmed"
    assert httpx.head(server.base + path).status_code == 200  # link scanners send HEAD ...
    assert status(newsletter, "scan@example.com") == "unconfirmed"
    page = httpx.get(server.base + path)  # ... and GET
    assert page.status_code == 200 and page.text.count("<button") == 1 and 'method="post"' in page.text
    assert status(newsletter, "scan@example.com") == "unconfirmed"
    action = re.search(r'action="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    done = httpx.post(f"{server.base}/confirm{action}")  # the page's button
    assert done.status_code == 200 and "订阅成功" in done.text and status(newsletter, "scan@example.com") == "active"
    assert httpx.post(server.base + path).status_code == 200  # twice is fine
    assert "订阅成功" in httpx.get(server.base + path).text

    token = make_token(SECRET, "unsubscribe", "scan@example.com", LIST_ID)
    assert httpx.head(f"{server.base}/unsubscribe?token={token}").status_code == 200
    assert httpx.get(f"{server.base}/unsubscribe?token={token}").status_code == 200
    assert status(newsletter, "scan@example.com") == "active"
    one_click = httpx.post(f"{server.base}/unsubscribe?token={token}", content=b"List-Unsubscribe=One-Click",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})  # RFC 8058: no page
    assert one_click.status_code == 200 and status(newsletter, "scan@example.com") == "unsubscribed"


# ---- 5: unsubscribing wins over a confirm token issued before it ----


def test_an_old_confirm_token_never_undoes_an_unsubscribe(newsletter, start, monkeypatch):
    server = start(make_config(newsletter))
    step = iter(range(100))

    def later():  # each step a minute on, so the record's `changed` stamps differ as they do in real use
        monkeypatch.setenv(clock.ENV, (NOW + timedelta(minutes=next(step))).isoformat())

    later()
    old = subscribe_and_get_link(newsletter, server.base, "back@example.com", 1)
    later()  # they confirm (directly in the store, so that the steps below test only what they name)
    SqliteStore(newsletter.root / "subscribers.db").set_status("back@example.com", "active")
    later()
    token = make_token(SECRET, "unsubscribe", "back@example.com", LIST_ID)
    assert httpx.post(f"{server.base}/unsubscribe?token={token}", data={"confirm": "1"}).status_code == 200
    later()
    for answer in (httpx.get(server.base + old), httpx.post(server.base + old)):
        assert answer.status_code == 400, answer.request.method
    assert status(newsletter, "back@example.com") == "unsubscribed"

    later()  # signing up again: unconfirmed, a new confirmation, and still the old token does nothing
    new = subscribe_and_get_link(newsletter, server.base, "back@example.com", 2)
    assert status(newsletter, "back@example.com") == "unconfirmed" and new != old
    later()
    assert httpx.post(server.base + old).status_code == 400 and status(newsletter, "back@example.com") == "unconfirmed"
    assert httpx.post(server.base + new).status_code == 200 and status(newsletter, "back@example.com") == "active"


# ---- 6: the answer comes before any work on the address ----


class SlowMailServer:
    """Stands for the fault behind the timing leak: a mail server that takes its time. send() blocks until the
    test releases it, then hands the message to the real outbox transport."""

    name = "outbox"

    def __init__(self, newsletter, fail_for=()):
        self.outbox = OutboxTransport(newsletter.root / "outbox", "confirmations")
        self.entered, self.release = threading.Event(), threading.Event()
        self.recipients: list[str] = []
        self.fail_for = set(fail_for)

    def send(self, message, *, sender, recipient, message_id, number):
        self.recipients.append(recipient)
        if recipient in self.fail_for:
            raise RuntimeError(f"the mail library broke on {recipient}")
        self.entered.set()
        assert self.release.wait(timeout=60), "the test never released the mail server"
        return self.outbox.send(message, sender=sender, recipient=recipient, message_id=message_id, number=number)

    def default_rate(self):
        return None

    def close(self):
        pass


def test_known_and_new_addresses_are_answered_before_the_mail_server(newsletter, start):
    SqliteStore(newsletter.root / "subscribers.db").upsert(Subscriber("known@example.com"))
    mail = SlowMailServer(newsletter)
    server = start(make_config(newsletter), transport=mail)
    try:
        new = httpx.post(f"{server.base}/subscribe", data={"email": "new@example.com"}, timeout=10)
        assert new.status_code == 200
        wait_for(mail.entered.is_set, what="the worker to reach the mail server")
        known = httpx.post(f"{server.base}/subscribe", data={"email": "known@example.com"}, timeout=10)
        assert (known.status_code, known.text) == (new.status_code, new.text)
        assert not mail.release.is_set() and outbox(newsletter) == []  # both answered; the email is still out
    finally:
        mail.release.set()
    (message,) = wait_for(lambda: outbox(newsletter), what="the confirmation after the release")
    assert message["To"] == "new@example.com"
    wait_for(lambda: server.endpoint.worker.jobs.unfinished_tasks == 0, what="the queue to empty")
    assert mail.recipients == ["new@example.com"]  # the active address got nothing, on the worker too


def test_shutdown_sends_what_is_queued_and_stops_the_worker(newsletter, start):
    mail = SlowMailServer(newsletter)
    server = start(make_config(newsletter), transport=mail)
    try:
        for address in ("q1@example.com", "q2@example.com"):
            assert httpx.post(f"{server.base}/subscribe", data={"email": address}).status_code == 200
        wait_for(mail.entered.is_set, what="the worker to reach the mail server")
        server.instance.should_exit = True  # what SIGTERM does
        wait_for(lambda: server.endpoint.worker.closed, what="the shutdown to reach the worker")
    finally:
        mail.release.set()
    server.thread.join(timeout=30)
    assert not server.thread.is_alive() and not server.endpoint.worker.thread.is_alive()
    assert sorted(m["To"] for m in outbox(newsletter)) == ["q1@example.com", "q2@example.com"]


def test_a_failing_confirmation_is_logged_and_the_worker_goes_on(newsletter, start, records):
    logged = records("publisher.subscription")
    mail = SlowMailServer(newsletter, fail_for={"broken@example.com"})
    mail.release.set()
    server = start(make_config(newsletter), transport=mail)
    for address in ("broken@example.com", "fine@example.com"):
        assert httpx.post(f"{server.base}/subscribe", data={"email": address}).status_code == 200
    (message,) = wait_for(lambda: outbox(newsletter), what="the second confirmation")
    assert message["To"] == "fine@example.com"
    (failure,) = [r for r in logged if r.levelno >= logging.ERROR]
    assert "queued confirmation failed" in failure.getMessage()
    assert failure.exc_info and "broken@example.com" in str(failure.exc_info[1])


# ---- 12: no tokens in the access log ----


def test_publisher_serve_logs_paths_without_their_tokens(newsletter):
    """The real `publisher serve` command in its own process: its access log (stdout) shows no token."""
    make_config(newsletter)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env.update(PUBLISHER_SECRET=SECRET.decode(), PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "publisher", "-C", str(newsletter.root), "serve", "--port",
                                str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = Lines(process.stdout), Lines(process.stderr)
    confirm = make_token(SECRET, "confirm", "log@example.com", LIST_ID, expires=int(clock.timestamp()) + 60)
    unsubscribe = make_token(SECRET, "unsubscribe", "log@example.com", LIST_ID)
    try:
        wait_for(lambda: "Uvicorn running" in err.text or process.poll() is not None, what="serve to start")
        assert process.poll() is None, err.text
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/confirm?token={confirm}").status_code == 400  # no such subscriber
        assert httpx.post(f"{base}/unsubscribe?token={unsubscribe}", content=b"List-Unsubscribe=One-Click",
                          headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 200
        wait_for(lambda: out.count('"GET /confirm') and out.count('"POST /unsubscribe'), what="the access log")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    logged = out.close() + err.close()
    assert '"GET /confirm HTTP/1.1" 400' in logged and '"POST /unsubscribe HTTP/1.1" 200' in logged, logged
    assert "token" not in logged and confirm[:24] not in logged and unsubscribe[:24] not in logged, logged
    assert "Traceback" not in logged


# ---- low: odd tokens, headers on every answer, server limits, weak secrets, refused names ----


def test_a_non_ascii_token_is_a_400_with_the_security_headers(newsletter, start):
    server = start(make_config(newsletter))
    answers = [httpx.get(f"{server.base}/confirm", params={"token": "é.é"}),
               httpx.post(f"{server.base}/confirm", params={"token": "abc.签名"}),
               httpx.get(f"{server.base}/unsubscribe", params={"token": "x.ü"}),
               httpx.post(f"{server.base}/unsubscribe", params={"token": "x.ü"}, content=b"List-Unsubscribe=One-Click")]
    for answer in answers:
        assert answer.status_code == 400, answer.request.url
        for name in NEEDED:
            assert answer.headers.get(name) == SECURITY_HEADERS[name], (answer.request.url, name)


def test_every_answer_has_the_security_headers_405_404_and_500_too(newsletter, start):
    config = make_config(newsletter)
    server = start(config)
    token = make_token(SECRET, "confirm", "h@example.com", LIST_ID, expires=int(clock.timestamp()) + 3600)
    (newsletter.root / "subscribers.db").mkdir()  # a broken database: a real 500
    answers = {405: [httpx.get(f"{server.base}/subscribe"), httpx.put(f"{server.base}/subscribe"),
                     httpx.delete(f"{server.base}/confirm")],
               404: [httpx.get(f"{server.base}/nowhere")],
               500: [httpx.get(f"{server.base}/confirm?token={token}")]}
    for code, found in answers.items():
        for answer in found:
            assert answer.status_code == code, answer.request.url
            for name, value in SECURITY_HEADERS.items():
                assert answer.headers.get(name) == value, (answer.request.method, answer.request.url, name)
    assert "POST" in answers[405][0].headers["allow"]


def test_serve_limits_connections_and_closes_a_connection_that_sends_no_headers(newsletter, start):
    from publisher.subscription import server_config

    config = make_config(newsletter)
    settings = server_config(config, create_app(config, secret=SECRET))
    assert settings.limit_concurrency and settings.limit_concurrency < 1000  # below the usual 1,024 descriptors
    assert settings.timeout_keep_alive <= 5 and settings.h11_max_incomplete_event_size <= 16 * 1024
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)

    server = start(config, server_config=True, header_timeout=0.5)
    with socket.create_connection(("127.0.0.1", server.port)) as idle, \
            socket.create_connection(("127.0.0.1", server.port)) as trickle:
        trickle.sendall(b"GET /confirm?token=x HTTP/1.1\r\nHost: a\r\n")  # never finishes its headers
        idle.settimeout(20)
        trickle.settimeout(20)
        assert idle.recv(1) == b""  # closed by the server (a blocking read with a deadline, not a sleep)
        assert trickle.recv(1) == b""
    assert httpx.get(f"{server.base}/nowhere").status_code == 404  # a real request is still served


def test_weak_secrets_are_refused_and_says_how_to_make_one():
    for weak in ("a" * 16, "s" * 32, "ab" * 20, "password12345678"):
        with pytest.raises(PublisherError) as info:
            secret_from_env({"PUBLISHER_SECRET": weak})
        assert "PUBLISHER_SECRET" in str(info.value) and "secrets.token_urlsafe(32)" in str(info.value), weak
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    samples = re.findall(r"PUBLISHER_SECRET=([\w-]+)", readme)
    assert "sample-only-not-a-secret" in samples
    in_tests = ["clock-secret-" * 2, "lambda-test-secret-value", "scheduler-secret-" * 2, "test-secret-" * 3,
                "endpoint-secret-" * 2, SECRET.decode(), secrets.token_urlsafe(32), secrets.token_hex(16)]
    for good in samples + in_tests:
        assert secret_from_env({"PUBLISHER_SECRET": good}) == good.encode()


def test_a_name_the_store_refuses_is_a_400_and_nothing_is_queued(newsletter, start):
    from publisher import subscribers

    if not hasattr(subscribers, "validate_subscriber"):
        pytest.skip("subscriber-field validation (publisher/subscribers.py) is not in place yet")
    server = start(make_config(newsletter))
    for name in ("bad\x1b[2Jname", "长" * 150):
        as_json = httpx.post(f"{server.base}/subscribe", json={"email": "n@example.com", "name": name})
        assert as_json.status_code == 400
        assert as_json.json() == {"ok": False, "message": "名字里有不能使用的字符，或者太长。"}
        as_form = httpx.post(f"{server.base}/subscribe", data={"email": "n@example.com", "name": name})
        assert as_form.status_code == 400 and "<h1>名字无效</h1>" in as_form.text
    assert server.endpoint.worker.jobs.unfinished_tasks == 0 and outbox(newsletter) == []
    assert status(newsletter, "n@example.com") is None
