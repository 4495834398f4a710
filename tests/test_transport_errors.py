"""The real transports' error mapping, proved against real parts. `publisher/transports.py` promises four outcomes:
TransientError (retry later), PermanentError (this recipient failed), UncertainError (the request went out and no
answer came: it may have been sent, so it is never resent silently) and FatalError (stop the run).

SMTP runs against a real aiosmtpd server on 127.0.0.1 whose answers each test scripts (refusals at MAIL FROM,
RCPT TO and after the message; a dropped connection; a stall past `smtp.timeout`). SES runs against the moto
server where moto produces the fault, against local TCP/HTTP servers for faults on the wire, and through
botocore's Stubber only for the SES error codes that neither can produce."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sqlite3
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from aiosmtpd.controller import Controller
from botocore.config import Config as BotoConfig
from botocore.stub import Stubber
from conftest import CONFIG, NOW, free_port
from waiting import FakeClock, wait_for

from publisher.errors import PublisherError
from publisher.sending import send_issue
from publisher.subscribers import SqliteStore, Subscriber
from publisher.transports import (
    FatalError,
    PermanentError,
    SesTransport,
    SmtpTransport,
    TransientError,
    UncertainError,
)

SECRET = b"test-secret-" * 3
TransportErrorTypes = (TransientError, PermanentError, UncertainError, FatalError)
STALL = 30.0  # the longest a scripted stall lasts if the test never releases it (it always does)


def message_for(sender: str, recipient: str) -> bytes:
    # A line that starts with a dot checks the SMTP dot-stuffing both ways.
    return (f"From: {sender}\r\nTo: {recipient}\r\nSubject: test\r\nMessage-ID: <m1@example.test>\r\n\r\n"
            "line one\r\n.a line that starts with a dot\r\n..and one with two\r\nlast line\r\n").encode()



def setup(newsletter, domain: str, extra_config: str, active: int = 0):
    """A newsletter with one issue, `active` subscribers reader0@domain..., and the given [email] settings."""
    newsletter.config(CONFIG + f'[email]\nfrom_address = "news@{domain}"\npostal_address = "上海市 1 号"\n'
                      + extra_config)
    newsletter.issue("2026-11-20-daily.md", "title: AI 日报：第一期\ndate: 2026-11-20\n", "第一段。\n")
    store = SqliteStore(newsletter.root / "subscribers.db")
    store.upsert_many(Subscriber(f"reader{n}@{domain}") for n in range(active))
    store.close()
    return newsletter.load_config()


def ledger(newsletter, issue: str = "daily") -> dict[str, tuple[str, int, str | None]]:
    """email -> (state, attempts, last_error) of every delivery row of the issue."""
    db = sqlite3.connect(newsletter.root / "subscribers.db")
    try:
        rows = db.execute("SELECT email, state, attempts, last_error FROM deliveries WHERE issue = ?", (issue,))
        return {email: (state, attempts, error) for email, state, attempts, error in rows}
    finally:
        db.close()


# ---------------------------------------------------------------------------------------------------- SMTP

class Script:
    """An aiosmtpd handler that answers as the test scripts it. `on(step, action, to=..., times=...)`: at MAIL
    (MAIL FROM), RCPT (RCPT TO) or DATA (the answer after the whole message), for every transaction or only for
    one recipient's, answer `action`: an SMTP reply line, "drop" (close the connection without an answer) or
    "stall" (say nothing until the test ends). Anything not scripted is accepted.
    `delivered` holds the messages the server has in full and did not refuse: what it may deliver."""

    def __init__(self) -> None:
        self.rules: list[list] = []  # [step, recipient or None, action, times left or None]
        self.delivered: list[tuple[str, list[str], bytes]] = []
        self.stalls = 0
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.port = 0

    def on(self, step: str, action: str, *, to: str | None = None, times: int | None = None) -> None:
        with self.lock:
            self.rules.append([step, to, action, times])

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def _action(self, step: str, recipients: list[str]) -> str | None:
        with self.lock:
            for rule in self.rules:
                when, to, action, left = rule
                if when == step and (to is None or to in recipients) and left != 0:
                    if left is not None:
                        rule[3] = left - 1
                    return action
        return None

    async def _answer(self, server, action: str | None, accepted: str) -> str:
        if action == "drop":
            server.transport.abort()  # no answer reaches the client: aiosmtpd's reply goes nowhere
            return accepted
        if action == "stall":
            with self.lock:
                self.stalls += 1
            deadline = time.monotonic() + STALL
            while not self.released.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)  # the server stays silent: this is the fault, not a wait in the test
            return "451 4.4.2 too late"
        return action or accepted

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802 (aiosmtpd hook)
        action = self._action("MAIL", [])
        if action is None:
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
        return await self._answer(server, action, "250 OK")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        action = self._action("RCPT", [address])
        if action is None:
            envelope.rcpt_tos.append(address)
        return await self._answer(server, action, "250 OK")

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        action = self._action("DATA", list(envelope.rcpt_tos))
        if action in (None, "drop", "stall"):  # the server has the message and did not refuse it
            with self.lock:
                self.delivered.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return await self._answer(server, action, "250 Message accepted for delivery")

    def recipients(self) -> Counter:
        with self.lock:
            return Counter(r for _, rcpts, _ in self.delivered for r in rcpts)


@pytest.fixture
def script():
    """A real SMTP server (aiosmtpd) on 127.0.0.1 answering as the test scripts it."""
    handler = Script()
    handler.port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    handler.released.set()  # end any stall before the server stops
    controller.stop()


class Silent:
    """A real TCP server on 127.0.0.1 that accepts connections and reads what comes but never answers; with
    `hang_up=True` it closes each connection once a whole HTTP request has arrived, still without answering."""

    def __init__(self, hang_up: bool = False) -> None:
        self.hang_up = hang_up
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.02)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []  # one entry per connection
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conns: dict[socket.socket, int] = {}
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
                conn.settimeout(0.02)
                with self.lock:
                    conns[conn] = len(self.received)
                    self.received.append(b"")
            except TimeoutError:
                pass
            for conn, index in list(conns.items()):
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    data = b""
                if data:
                    with self.lock:
                        self.received[index] += data
                if not data or (self.hang_up and self.complete(index)):
                    conn.close()
                    del conns[conn]
        for conn in conns:
            conn.close()

    def complete(self, index: int) -> bool:
        """Whether connection `index` has sent one whole HTTP request (headers and Content-Length body)."""
        with self.lock:
            data = self.received[index]
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            return False
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        return len(body) >= length

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def silent():
    servers: list[Silent] = []

    def start(hang_up: bool = False) -> Silent:
        servers.append(Silent(hang_up))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def smtp_settings(port: int) -> str:
    return f'transport = "smtp"\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = 1\n'


def smtp_send(transport: SmtpTransport, recipient: str = "reader@smtp.test") -> str:
    return transport.send(message_for("news@smtp.test", recipient), sender="news@smtp.test", recipient=recipient,
                          message_id=f"<{recipient}>", number=1)


def assert_next_send_works(transport: SmtpTransport, script: Script) -> None:
    """After a failure the same transport sends the next message (its connection was reset or reopened)."""
    before = len(script.delivered)
    assert smtp_send(transport, "next@smtp.test") == "<next@smtp.test>"
    assert [rcpts for _, rcpts, _ in script.delivered[before:]] == [["next@smtp.test"]]


def test_smtp_accepted_message_arrives_byte_for_byte(newsletter, script):
    transport = SmtpTransport(setup(newsletter, "smtp.test", smtp_settings(script.port)))
    try:
        assert smtp_send(transport) == "<reader@smtp.test>"
    finally:
        transport.close()
    assert script.delivered == [("news@smtp.test", ["reader@smtp.test"],
                                 message_for("news@smtp.test", "reader@smtp.test"))]


@pytest.mark.parametrize(("step", "reply", "outcome"), [
    # MAIL FROM: "try later" is transient; a refused sender means no message can go: stop the run.
    ("MAIL", "421 4.3.2 service shutting down, closing channel", TransientError),
    ("MAIL", "451 4.3.0 local error, try again later", TransientError),
    ("MAIL", "452 4.3.1 insufficient system storage", TransientError),
    ("MAIL", "550 5.7.1 sender not allowed to send here", FatalError),
    ("MAIL", "554 5.7.1 sender address rejected", FatalError),
    # RCPT TO: about this recipient: try later, or never.
    ("RCPT", "421 4.3.2 service shutting down, closing channel", TransientError),
    ("RCPT", "451 4.7.1 greylisted, try again later", TransientError),
    ("RCPT", "452 4.5.3 too many recipients", TransientError),
    ("RCPT", "550 5.1.1 no such user", PermanentError),
    ("RCPT", "554 5.7.1 relay access denied", PermanentError),
    # After the message: the server answered, so it is known not to have taken it.
    ("DATA", "421 4.3.2 service shutting down, closing channel", TransientError),
    ("DATA", "451 4.3.0 queue write error, try again", TransientError),
    ("DATA", "452 4.3.1 insufficient system storage", TransientError),
    ("DATA", "550 5.7.1 message content rejected", PermanentError),
    ("DATA", "554 5.6.0 transaction failed", PermanentError),
])
def test_smtp_refusal_maps_to_the_documented_outcome(newsletter, script, step, reply, outcome):
    script.on(step, reply, times=1)
    transport = SmtpTransport(setup(newsletter, "smtp.test", smtp_settings(script.port)))
    try:
        with pytest.raises(TransportErrorTypes) as raised:
            smtp_send(transport)
        assert type(raised.value) is outcome and reply.split()[0] in str(raised.value)
        assert script.delivered == []  # refused: the server does not have it
        assert_next_send_works(transport, script)
    finally:
        transport.close()


def test_smtp_connection_dropped_after_the_message_is_uncertain(newsletter, script):
    script.on("DATA", "drop", times=1)
    transport = SmtpTransport(setup(newsletter, "smtp.test", smtp_settings(script.port)))
    try:
        with pytest.raises(UncertainError, match="did not answer"):
            smtp_send(transport)
        # The server had the whole message when it hung up: it may deliver it, so a silent retry could duplicate.
        assert script.recipients() == Counter({"reader@smtp.test": 1})
        assert_next_send_works(transport, script)
    finally:
        transport.close()


def test_smtp_connection_dropped_before_the_message_is_transient(newsletter, script):
    script.on("RCPT", "drop", times=1)
    transport = SmtpTransport(setup(newsletter, "smtp.test", smtp_settings(script.port)))
    try:
        with pytest.raises(TransientError, match="RCPT TO"):
            smtp_send(transport)
        assert script.delivered == []  # the message never went: a retry is safe
        assert_next_send_works(transport, script)
    finally:
        transport.close()


def test_smtp_stall_after_the_message_is_uncertain(newsletter, script):
    script.on("DATA", "stall", times=1)
    transport = SmtpTransport(setup(newsletter, "smtp.test", smtp_settings(script.port)))
    try:
        started = time.monotonic()
        with pytest.raises(UncertainError, match="did not answer"):
            smtp_send(transport)
        assert 0.9 <= time.monotonic() - started < 5  # gave up after smtp.timeout (1 s), not before
        assert script.stalls == 1 and script.recipients() == Counter({"reader@smtp.test": 1})
        assert_next_send_works(transport, script)
    finally:
        transport.close()


def test_smtp_stall_before_the_message_is_transient(newsletter, script):
    script.on("RCPT", "stall", times=1)
    transport = SmtpTransport(setup(newsletter, "smtp.test", smtp_settings(script.port)))
    try:
        started = time.monotonic()
        with pytest.raises(TransientError, match="RCPT TO"):
            smtp_send(transport)
        assert 0.9 <= time.monotonic() - started < 5
        assert script.stalls == 1 and script.delivered == []
        assert_next_send_works(transport, script)
    finally:
        transport.close()


def test_smtp_server_that_never_greets_or_is_not_there_is_transient(newsletter, silent):
    mute = silent()
    transport = SmtpTransport(setup(newsletter, "smtp.test", smtp_settings(mute.port)))
    started = time.monotonic()
    with pytest.raises(TransientError, match="cannot connect"):
        smtp_send(transport)
    assert 0.9 <= time.monotonic() - started < 5
    wait_for(lambda: mute.received, what="the connection at the silent server")
    assert len(mute.received) == 1  # it did connect; the greeting never came
    closed = SmtpTransport(setup(newsletter, "smtp.test", smtp_settings(free_port())))
    with pytest.raises(TransientError, match="cannot connect"):
        smtp_send(closed)


def test_send_issue_over_smtp_retries_fails_and_holds_uncertain_rows(newsletter, script):
    """End to end: 452 once -> retried, then sent; 550 -> failed; a drop after the message -> left `sending`
    (uncertain), reported, and not resent by the next run; an untroubled recipient -> sent."""
    domain = "smtp.test"
    config = setup(newsletter, domain, smtp_settings(script.port), active=4)
    script.on("RCPT", "452 4.5.3 too many recipients, try later", to=f"reader0@{domain}", times=1)
    script.on("RCPT", "550 5.1.1 no such user", to=f"reader1@{domain}")
    script.on("DATA", "drop", to=f"reader2@{domain}", times=1)
    clock = FakeClock()
    report = send_issue(config, "daily", now=NOW, secret=SECRET, clock=clock, sleep=clock.sleep)
    assert (report.sent, report.failed, report.uncertain, report.remaining) == (2, 1, 1, 0)
    rows = ledger(newsletter)
    assert rows[f"reader0@{domain}"][:2] == ("sent", 2)  # the second attempt went through
    assert rows[f"reader1@{domain}"][:2] == ("failed", 1) and rows[f"reader1@{domain}"][2].startswith("550")
    assert rows[f"reader2@{domain}"][:2] == ("sending", 1)  # may have gone out: neither sent nor pending
    assert rows[f"reader3@{domain}"][:2] == ("sent", 1)
    delivered = Counter({f"reader{n}@{domain}": 1 for n in (0, 2, 3)})
    assert script.recipients() == delivered

    with pytest.raises(PublisherError, match="1 messages of daily may or may not have gone out"):
        send_issue(config, "daily", now=NOW, secret=SECRET, clock=clock, sleep=clock.sleep)
    assert script.recipients() == delivered  # nobody got a second copy
    send_issue(config, "daily", now=NOW, secret=SECRET, mark_uncertain_sent=True, clock=clock, sleep=clock.sleep)
    assert Counter(state for state, _, _ in ledger(newsletter).values()) == Counter({"sent": 3, "failed": 1})
    assert script.recipients() == delivered


def test_send_issue_over_smtp_stops_on_a_refused_sender_and_loses_no_one(newsletter, script):
    domain = "smtp.test"
    config = setup(newsletter, domain, smtp_settings(script.port), active=5)
    script.on("MAIL", "550 5.7.1 sender not allowed")
    report = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert report.stopped and "refused the sender" in report.stopped and report.failed == 0
    assert {state for state, _, _ in ledger(newsletter).values()} == {"pending"}  # nobody marked failed
    assert script.delivered == []
    script.clear()  # the sender is fixed: the next run sends everyone, once
    again = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert again.sent == 5 and script.recipients() == Counter({f"reader{n}@{domain}": 1 for n in range(5)})


# ----------------------------------------------------------------------------------------------------- SES

def ses_send(transport: SesTransport, sender: str, recipient: str) -> str:
    return transport.send(message_for(sender, recipient), sender=sender, recipient=recipient,
                          message_id=f"<{recipient}>", number=1)


def test_ses_unverified_sender_is_fatal_then_sends_once_verified(newsletter, aws, moto_ses_sent):
    """A real MessageRejected from moto (as SES in the sandbox): the sender is not verified, so no message can go."""
    domain = f"{uuid.uuid4().hex[:8]}.ses.test"
    transport = SesTransport(setup(newsletter, domain, 'transport = "ses"\n'))
    with pytest.raises(FatalError, match=f"MessageRejected.*news@{domain}"):
        ses_send(transport, f"news@{domain}", f"reader@{domain}")
    assert moto_ses_sent(domain) == []
    boto3.client("sesv2").create_email_identity(EmailIdentity=f"news@{domain}")
    assert ses_send(transport, f"news@{domain}", f"reader@{domain}")  # the same call now goes through
    assert len(moto_ses_sent(domain)) == 1


def test_ses_refused_recipient_is_permanent_on_moto(newsletter, aws, moto_ses_sent):
    """A real 400 from moto about one recipient (an address with no domain): that one failed, the run goes on."""
    domain = f"{uuid.uuid4().hex[:8]}.ses.test"
    boto3.client("sesv2").create_email_identity(EmailIdentity=f"news@{domain}")
    transport = SesTransport(setup(newsletter, domain, 'transport = "ses"\n'))
    with pytest.raises(PermanentError, match="InvalidParameterValue"):
        ses_send(transport, f"news@{domain}", "reader")
    assert moto_ses_sent(domain) == []


SANDBOX = "Email address is not verified. The following identities failed the check in region US-EAST-1: {}"


# moto answers every send of a verified sender; it cannot throttle, pause or suspend an account, or report an
# unverified MAIL FROM domain or a missing configuration set. botocore's Stubber returns those real SES v2 errors
# (codes and HTTP statuses as in the service model) through a real sesv2 client, so the mapping is what is tested.
@pytest.mark.parametrize(("code", "status", "text", "outcome"), [
    ("TooManyRequestsException", 429, "Maximum sending rate exceeded.", TransientError),
    ("Throttling", 400, "Maximum sending rate exceeded.", TransientError),  # SES v1's name for the same
    ("InternalFailure", 500, "An internal error occurred.", TransientError),
    ("ServiceUnavailable", 503, "Service unavailable.", TransientError),
    ("SendingPausedException", 400, "Sending is paused for this account.", FatalError),  # v1: AccountSendingPaused
    ("AccountSuspendedException", 400, "Your account has been suspended.", FatalError),
    ("MailFromDomainNotVerifiedException", 400, "MAIL FROM domain bounce.example.test is not verified.", FatalError),
    ("NotFoundException", 404, "Configuration set <weekly> does not exist.", FatalError),
    ("MessageRejected", 400, SANDBOX.format("news@example.test"), FatalError),  # the sender: no message can go
    ("MessageRejected", 400, SANDBOX.format("news@example.test, reader@example.test"), FatalError),
    ("MessageRejected", 400, SANDBOX.format("reader@example.test"), PermanentError),  # only this recipient
    ("MessageRejected", 400, SANDBOX.format("othernews@example.test.cn"), PermanentError),  # not our sender
])
def test_ses_error_code_maps_to_the_documented_outcome(newsletter, aws, code, status, text, outcome):
    client = boto3.client("sesv2")
    transport = SesTransport(setup(newsletter, "example.test", 'transport = "ses"\n'), client=client)
    sender, recipient = "news@example.test", "reader@example.test"
    with Stubber(client) as stub:
        stub.add_client_error("send_email", service_error_code=code, service_message=text, http_status_code=status,
                              expected_params={"FromEmailAddress": sender, "Destination": {"ToAddresses": [recipient]},
                                               "Content": {"Raw": {"Data": message_for(sender, recipient)}}})
        with pytest.raises(TransportErrorTypes) as raised:
            ses_send(transport, sender, recipient)
        stub.assert_no_pending_responses()  # the one request was made, as the transport built it
    assert type(raised.value) is outcome and code in str(raised.value)


def own_client(config, port: int, read_timeout: int):
    """A sesv2 client with the transport's own botocore settings (retries included), pointed at a local server,
    with a read timeout short enough for a test."""
    own = SesTransport(config).client.meta.config
    return boto3.client("sesv2", endpoint_url=f"http://127.0.0.1:{port}",
                        config=own.merge(BotoConfig(read_timeout=read_timeout)))


def test_ses_read_timeout_after_the_request_went_out_is_uncertain(newsletter, aws, silent):
    mute = silent()
    config = setup(newsletter, "example.test", 'transport = "ses"\n')
    transport = SesTransport(config, client=own_client(config, mute.port, read_timeout=1))
    started = time.monotonic()
    with pytest.raises(UncertainError, match="no answer from SES"):
        ses_send(transport, "news@example.test", "reader@example.test")
    assert 0.9 <= time.monotonic() - started < 5
    wait_for(lambda: mute.complete(0), what="the whole request at the server")
    assert mute.received[0].startswith(b"POST /v2/email/outbound-emails ")  # it went out in full
    assert len(mute.received) == 1  # and once: botocore did not resend it behind the loop's back


def test_ses_connection_closed_without_an_answer_is_uncertain(newsletter, aws, silent):
    closing = silent(hang_up=True)
    config = setup(newsletter, "example.test", 'transport = "ses"\n')
    transport = SesTransport(config, client=own_client(config, closing.port, read_timeout=10))
    with pytest.raises(UncertainError, match="no answer from SES"):
        ses_send(transport, "news@example.test", "reader@example.test")
    assert len(closing.received) == 1 and closing.complete(0)
    assert closing.received[0].startswith(b"POST /v2/email/outbound-emails ")


class Answer:
    """A real local HTTP server answering every request with one scripted response, recording the requests."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.requests: list[tuple[str, bytes]] = []
        answer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body_in = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                answer.requests.append((self.path, body_in))
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def answer():
    servers: list[Answer] = []

    def start(status: int, body: bytes, headers: dict[str, str]) -> Answer:
        servers.append(Answer(status, body, headers))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_ses_server_error_is_transient_and_tried_once(newsletter, aws, answer, monkeypatch):
    """The transport's own client: a 500 is transient, and botocore does not retry it behind the loop's back."""
    failing = answer(500, json.dumps({"message": "internal failure"}).encode(),
                     {"Content-Type": "application/json", "x-amzn-ErrorType": "InternalFailure"})
    monkeypatch.setenv("AWS_ENDPOINT_URL", failing.url)
    transport = SesTransport(setup(newsletter, "example.test", 'transport = "ses"\n'))
    with pytest.raises(TransientError, match="InternalFailure"):
        ses_send(transport, "news@example.test", "reader@example.test")
    assert [path for path, _ in failing.requests] == ["/v2/email/outbound-emails"]  # one attempt only


def test_ses_unreachable_is_transient(newsletter, aws, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    transport = SesTransport(setup(newsletter, "example.test", 'transport = "ses"\n'))
    with pytest.raises(TransientError, match="cannot reach SES"):
        ses_send(transport, "news@example.test", "reader@example.test")


def test_ses_without_credentials_is_fatal(newsletter, aws, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("BOTO_CONFIG", "/nonexistent")
    transport = SesTransport(setup(newsletter, "example.test", 'transport = "ses"\n'))
    with pytest.raises(FatalError, match="no AWS credentials"):
        ses_send(transport, "news@example.test", "reader@example.test")


def test_send_issue_over_ses_stops_on_an_unverified_sender_and_loses_no_one(newsletter, aws, moto_ses_sent):
    """End to end on moto: the whole run stops at once, every row stays pending (none `failed`, which would never
    be sent), and once the sender is verified the next run sends everyone exactly once."""
    domain = f"{uuid.uuid4().hex[:8]}.ses.test"
    config = setup(newsletter, domain, 'transport = "ses"\nrate = 1000\nmax_consecutive_failures = 5\n', active=30)
    report = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert report.stopped and "MessageRejected" in report.stopped
    assert (report.sent, report.failed) == (0, 0)
    assert {state for state, _, _ in ledger(newsletter).values()} == {"pending"}
    boto3.client("sesv2").create_email_identity(EmailIdentity=f"news@{domain}")
    again = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert again.sent == 30 and len(moto_ses_sent(domain)) == 30
    assert {state for state, _, _ in ledger(newsletter).values()} == {"sent"}


# -------------------------------------------------------------------------------------- SES default rate

QUOTA = (b'<GetSendQuotaResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/"><GetSendQuotaResult>'
         b"<Max24HourSend>50000.0</Max24HourSend><MaxSendRate>14.0</MaxSendRate>"
         b"<SentLast24Hours>12.0</SentLast24Hours></GetSendQuotaResult>"
         b"<ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></GetSendQuotaResponse>")
DENIED = (b'<ErrorResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/"><Error><Type>Sender</Type>'
          b"<Code>AccessDenied</Code><Message>User is not authorized to perform ses:GetSendQuota</Message>"
          b"</Error><RequestId>r2</RequestId></ErrorResponse>")


def test_ses_default_rate_is_the_account_quota(newsletter, aws, answer, monkeypatch, caplog):
    """Replaces a test that expected 1.0 from moto: the fallback gives 1.0 too, so it could not fail. A local
    server speaking the SES v1 query API answers MaxSendRate 14.0 (a Stubber cannot reach the quota client, which
    default_rate makes itself)."""
    quota = answer(200, QUOTA, {"Content-Type": "text/xml"})
    monkeypatch.setenv("AWS_ENDPOINT_URL", quota.url)
    config = setup(newsletter, "example.test", 'transport = "ses"\n')
    with caplog.at_level(logging.WARNING, logger="publisher"):
        assert SesTransport(config).default_rate() == 14.0
    assert len(quota.requests) == 1 and b"Action=GetSendQuota" in quota.requests[0][1]
    assert not [r for r in caplog.records if r.name.startswith("publisher")]


def test_ses_default_rate_on_moto_comes_from_the_quota_call(newsletter, aws, caplog):
    config = setup(newsletter, "example.test", 'transport = "ses"\n')
    with caplog.at_level(logging.WARNING, logger="publisher"):
        assert SesTransport(config).default_rate() == 1.0  # moto's MaxSendRate, not the fallback:
    assert not [r for r in caplog.records if r.name.startswith("publisher")]  # the fallback would have warned


def test_ses_default_rate_falls_back_to_the_sandbox_rate_with_a_warning(newsletter, aws, answer, monkeypatch,
                                                                       caplog):
    denied = answer(403, DENIED, {"Content-Type": "text/xml"})
    monkeypatch.setenv("AWS_ENDPOINT_URL", denied.url)
    config = setup(newsletter, "example.test", 'transport = "ses"\n')
    with caplog.at_level(logging.WARNING, logger="publisher"):
        assert SesTransport(config).default_rate() == 1.0
    assert len(denied.requests) == 1
    warnings = [r.getMessage() for r in caplog.records if r.name == "publisher.transports"]
    assert len(warnings) == 1 and "AccessDenied" in warnings[0] and "email.rate" in warnings[0]
