"""Transports: how one finished MIME message reaches one recipient. Outbox folder (the default), SMTP, SES v2.

A transport only sends; the sending loop owns retries, rate and the ledger. It tells the loop what a failure
means by the exception it raises:
- `TransientError`: try again later (throttling, 4xx/5xx "try later", a connection that broke before the
  message was handed over);
- `UnavailableError` (a `TransientError`): the service cannot be reached at all (no connection, a full outbox
  disk): not the recipient's fault, so it costs no attempt; the loop pauses, and stops with the rest pending if
  the service stays away;
- `PermanentError`: this address will never take this message (rejected recipient);
- `UncertainError`: the request went out and no answer came back (a read timeout, a connection closed before
  the answer): it may have been sent, so it must not be retried silently;
- `FatalError`: no message can go (bad credentials, unverified sender, paused account): stop the run.

SMTP: a 4xx reply at any step is transient; a 5xx reply to MAIL FROM (the sender) is fatal, a 5xx reply to
RCPT TO, DATA or the message is permanent; a connection that breaks or stalls past `smtp.timeout` is transient
until the whole message is sent and uncertain while waiting for the server's answer to it.
SES v2: throttling and 5xx are transient; a paused or suspended account, an unverified MAIL FROM domain, a
missing configuration set or contact list, bad credentials and a MessageRejected that names our sender are
fatal; any other 4xx is permanent (for instance, in the sandbox, an unverified recipient).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import smtplib
import ssl
import threading
from pathlib import Path
from typing import Any, Protocol

from .config import Config
from .errors import PublisherError

SMTP_PASSWORD_ENV = "PUBLISHER_SMTP_PASSWORD"
SES_SANDBOX_RATE = 1.0

log = logging.getLogger(__name__)


class TransportError(Exception):
    pass


class TransientError(TransportError):
    pass


class UnavailableError(TransientError):
    """Transient, and not about this recipient: the transport cannot take any message right now (no connection
    to the relay or to SES could be made, the outbox disk is full). The loop pauses the whole run instead of
    counting an attempt against the recipient, and stops with the rest pending if it lasts. Raise sites:
    `OutboxTransport.send` (a full disk); to be used by `SmtpTransport._connection` ("cannot connect") and
    `SesTransport.send` (botocore's ConnectionError: "cannot reach SES")."""


class PermanentError(TransportError):
    pass


class UncertainError(TransportError):
    pass


class FatalError(TransportError):
    pass


class Transport(Protocol):
    name: str

    def send(self, message: bytes, *, sender: str, recipient: str, message_id: str, number: int) -> str:
        """Send one message; return the provider's message id (or ours where there is none)."""

    def default_rate(self) -> float | None:
        """The provider's own limit in messages per second, if it has one."""

    def close(self) -> None: ...


class OutboxTransport:
    """Writes each message to `outbox/<slug>/<n>.eml` (n: its place in the audience). A second copy of the same
    message, for instance after a resend of uncertain rows, gets `<n>.2.eml`, so a duplicate is visible. Test
    copies (`send --test`, `test=True`) are `test-1.eml`, `test-2.eml`, ...: never taken for a delivery.

    A message is written whole to a hidden temp file and then linked to its name, so an `.eml` is always
    complete: a write that fails (disk full) delivered nothing. Nothing in an outbox write depends on the
    recipient, so a failure is never one recipient's: a full disk (space may be freed) is `UnavailableError`,
    anything else (permissions, a read-only or vanished folder) is `FatalError`; both leave the rows pending."""

    name = "outbox"
    FULL = (errno.ENOSPC, errno.EDQUOT)

    def __init__(self, folder: Path, slug: str, *, test: bool = False) -> None:
        self.folder = folder / slug
        self.test = test
        self.folder.mkdir(parents=True, exist_ok=True)

    def _write(self, path: Path, data: bytes) -> None:
        # A method of its own so a test can fill the disk: no real part in a test run can.
        path.write_bytes(data)

    def send(self, message: bytes, *, sender: str, recipient: str, message_id: str, number: int) -> str:
        tmp = self.folder / f".{number}.{threading.get_ident()}.tmp"
        try:
            self._write(tmp, message)
            copy = 1
            while True:
                plain = f"{number}.eml" if copy == 1 else f"{number}.{copy}.eml"
                name = f"test-{copy}.eml" if self.test else plain
                try:
                    os.link(tmp, self.folder / name)  # fails if it exists: never overwrite a sent copy
                    return message_id
                except FileExistsError:
                    copy += 1
        except OSError as exc:
            if exc.errno in self.FULL:
                raise UnavailableError(f"the outbox {self.folder} is full: {exc.strerror}") from None
            raise FatalError(f"cannot write to the outbox {self.folder}: {exc}") from None
        finally:
            with contextlib.suppress(OSError):  # once linked, the message is out: a stray temp file must not undo it
                tmp.unlink(missing_ok=True)

    def default_rate(self) -> float | None:
        return None

    def close(self) -> None:
        pass


class NullTransport:
    """Sends nothing and succeeds: for measuring the sending loop itself (benchmarks/send.py)."""

    name = "null"

    def send(self, message: bytes, *, sender: str, recipient: str, message_id: str, number: int) -> str:
        return message_id

    def default_rate(self) -> float | None:
        return None

    def close(self) -> None:
        pass


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _dot_stuffed(message: bytes) -> bytes:
    """The message as SMTP DATA carries it (as smtplib's `data`): leading dots doubled, ended by CRLF "." CRLF."""
    data = re.sub(rb"(?m)^\.", b"..", message)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _close(conn: smtplib.SMTP | None) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):  # already broken
            conn.close()


class SmtpTransport:
    """SMTP with STARTTLS, implicit TLS or (for a local relay) plain; one connection per worker thread."""

    name = "smtp"

    def __init__(self, config: Config, password: str | None = None) -> None:
        self.settings = config.smtp
        self.password = password if password is not None else os.environ.get(SMTP_PASSWORD_ENV)
        if self.settings.username and not self.password:
            raise PublisherError(f"smtp.username is set but {SMTP_PASSWORD_ENV} is not",
                                 hint=f"export {SMTP_PASSWORD_ENV}=... (never put the password in publisher.toml)")
        self._local = threading.local()
        self._all: list[smtplib.SMTP] = []
        self._lock = threading.Lock()

    def _connection(self) -> smtplib.SMTP:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        s = self.settings
        try:
            if s.security == "tls":
                conn = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=ssl.create_default_context())
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                if s.security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            if s.username:
                conn.login(s.username, self.password or "")
            conn.ehlo_or_helo_if_needed()
        except smtplib.SMTPAuthenticationError as exc:
            _close(conn)
            raise FatalError(f"the SMTP server refused the login of {s.username!r}: {exc.smtp_code}") from None
        except smtplib.SMTPNotSupportedError as exc:
            _close(conn)
            raise FatalError(f"the SMTP server does not support {s.security.upper()}: {exc}") from None
        except (OSError, smtplib.SMTPException) as exc:
            _close(conn)
            raise UnavailableError(f"cannot connect to {s.host}:{s.port}: {exc}") from None
        self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        _close(conn)

    def send(self, message: bytes, *, sender: str, recipient: str, message_id: str, number: int) -> str:
        # The SMTP transaction step by step (not smtplib's sendmail), to know whether a broken or silent
        # connection lost the message before it was handed over (safe to retry) or only the answer (uncertain).
        conn = self._connection()
        step = "MAIL FROM"
        try:
            size = [f"SIZE={len(message)}"] if conn.does_esmtp and conn.has_extn("size") else []
            code, reply = conn.mail(sender, size)
            if code == 250:
                step = "RCPT TO"
                code, reply = conn.rcpt(recipient)
            if code in (250, 251):
                step = "DATA"
                code, reply = conn.docmd("DATA")
            if code == 354:
                step = "the message"
                conn.send(_dot_stuffed(message))
                step = "the answer to the message"  # from here on the server has it all and may deliver it
                code, reply = conn.getreply()
                if code == 250:
                    return message_id
        except (OSError, smtplib.SMTPException) as exc:  # smtplib turns a timeout into SMTPServerDisconnected
            self._drop()
            if step == "the answer to the message":
                raise UncertainError(f"the SMTP server did not answer after the message was sent: {exc}") from None
            raise TransientError(f"the SMTP connection broke at {step}: {exc}") from None
        error = f"{code} {_text(reply)} (at {step})"
        if code == 421 or not 400 <= code < 600:  # 421: the server is closing; anything else: unknown state
            self._drop()
        else:
            self._reset(conn)
        if 400 <= code < 500:
            raise TransientError(error)
        if 500 <= code < 600:
            if step == "MAIL FROM":
                raise FatalError(f"the SMTP server refused the sender {sender}: {error}")
            raise PermanentError(error)
        if step == "the answer to the message":
            raise UncertainError(f"the SMTP server answered the message with a reply it should not: {error}")
        raise TransientError(f"unexpected SMTP reply: {error}")

    def _reset(self, conn: smtplib.SMTP) -> None:
        """RSET after a refusal, so the connection can carry the next message; drop it if that fails."""
        try:
            if conn.rset()[0] == 250:
                return
        except (OSError, smtplib.SMTPException):
            pass
        self._drop()

    def default_rate(self) -> float | None:
        return None

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                with contextlib.suppress(Exception):  # the server may have gone already
                    conn.quit()
            self._all.clear()


class SesTransport:
    """Amazon SES v2 SendEmail with the raw message (our headers and parts, exactly)."""

    name = "ses"
    TRANSIENT = {"TooManyRequestsException", "Throttling", "ThrottlingException", "ServiceUnavailable",
                 "InternalFailure", "InternalServerError", "RequestTimeout", "RequestTimeoutException"}
    FATAL = {"AccountSuspendedException", "SendingPausedException", "MailFromDomainNotVerifiedException",
             "LimitExceededException", "NotFoundException", "AccessDeniedException", "UnrecognizedClientException",
             "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredTokenException"}

    def __init__(self, config: Config, client: Any = None) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.config = config
        self.session = boto3.session.Session()
        # One attempt per call: the sending loop retries, knowing which sends are safe to repeat. (botocore's
        # `max_attempts` counts retries, so `max_attempts: 1` would resend once, even after a read timeout.)
        boto = BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=30,
                          max_pool_connections=max(10, config.email.workers * 2))
        region = config.ses.region
        self.client = client or self.session.client("sesv2", config=boto, **({"region_name": region} if region else {}))
        self.contact_list = config.subscribers.ses_contact_list
        self.topic = config.subscribers.ses_topic

    def send(self, message: bytes, *, sender: str, recipient: str, message_id: str, number: int) -> str:
        from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        kwargs: dict[str, Any] = {"FromEmailAddress": sender, "Destination": {"ToAddresses": [recipient]},
                                  "Content": {"Raw": {"Data": message}}}
        if self.config.ses.configuration_set:
            kwargs["ConfigurationSetName"] = self.config.ses.configuration_set
        if self.config.ses.tags:
            kwargs["EmailTags"] = [{"Name": k, "Value": v} for k, v in sorted(self.config.ses.tags.items())]
        if self.contact_list:
            kwargs["ListManagementOptions"] = {"ContactListName": self.contact_list,
                                               **({"TopicName": self.topic} if self.topic else {})}
        try:
            return str(self.client.send_email(**kwargs)["MessageId"])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            text = f"{code}: {exc.response.get('Error', {}).get('Message', '')}"
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in self.FATAL or (code == "MessageRejected" and _names(text, sender)):
                raise FatalError(f"SES refused to send: {text}") from None
            if code in self.TRANSIENT or status >= 500 or status == 429:
                raise TransientError(text) from None
            raise PermanentError(text) from None
        except NoCredentialsError:
            raise FatalError("no AWS credentials for SES (set AWS_PROFILE or AWS_ACCESS_KEY_ID...)") from None
        except BotoConnectionError as exc:  # no connection was made (refused, connect timeout, TLS, proxy)
            raise UnavailableError(f"cannot reach SES: {exc}") from None
        except HTTPClientError as exc:  # the request went out: read timeout, connection closed before the answer
            raise UncertainError(f"no answer from SES after sending: {exc}") from None

    def default_rate(self) -> float | None:
        """The account's MaxSendRate (SES v1 GetSendQuota): SES rejects anything faster."""
        try:
            ses = self.session.client("ses", **({"region_name": self.config.ses.region} if self.config.ses.region
                                                else {}))
            return float(ses.get_send_quota()["MaxSendRate"]) or None
        except Exception as exc:  # no permission to read the quota, for instance: fall back to SES's sandbox rate
            log.warning("cannot read the SES sending quota (%s); sending at SES's sandbox rate of %s message/s: "
                        "set email.rate to your account's MaxSendRate", exc, SES_SANDBOX_RATE)
            return SES_SANDBOX_RATE

    def close(self) -> None:
        pass


def _names(text: str, address: str) -> bool:
    """Whether an error message names `address` (not merely an address that ends or starts with it)."""
    return re.search(rf"(?<![\w.+-]){re.escape(address)}(?![\w.-])", text, re.IGNORECASE) is not None


def transport_for(config: Config, slug: str) -> Transport:
    if config.email.transport == "smtp":
        return SmtpTransport(config)
    if config.email.transport == "ses":
        return SesTransport(config)
    return OutboxTransport(config.root / config.email.outbox, slug)
