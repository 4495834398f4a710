"""Transports: how one finished MIME message reaches one recipient. Outbox folder (the default), SMTP, SES v2.

A transport only sends; the sending loop owns retries, rate and the ledger. It tells the loop what a failure
means by the exception it raises:
- `TransientError`: try again later (throttling, 4xx/5xx "try later", a connection that could not be made);
- `PermanentError`: this address will never take this message (rejected recipient);
- `UncertainError`: the request went out and no answer came back (a read timeout): it may have been sent, so
  it must not be retried silently;
- `FatalError`: no message can go (bad credentials, unverified sender, paused account): stop the run.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
import threading
from pathlib import Path
from typing import Any, Protocol

from .config import Config
from .errors import PublisherError

SMTP_PASSWORD_ENV = "PUBLISHER_SMTP_PASSWORD"


class TransportError(Exception):
    pass


class TransientError(TransportError):
    pass


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
    message, for instance after a resend of uncertain rows, gets `<n>.2.eml`, so a duplicate is visible."""

    name = "outbox"

    def __init__(self, folder: Path, slug: str) -> None:
        self.folder = folder / slug
        self.folder.mkdir(parents=True, exist_ok=True)

    def send(self, message: bytes, *, sender: str, recipient: str, message_id: str, number: int) -> str:
        tmp = self.folder / f".{number}.{threading.get_ident()}.tmp"
        tmp.write_bytes(message)
        try:
            copy = 1
            while True:
                name = f"{number}.eml" if copy == 1 else f"{number}.{copy}.eml"
                try:
                    os.link(tmp, self.folder / name)  # fails if it exists: never overwrite a sent copy
                    return message_id
                except FileExistsError:
                    copy += 1
        finally:
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
        except smtplib.SMTPAuthenticationError as exc:
            raise FatalError(f"the SMTP server refused the login of {s.username!r}: {exc.smtp_code}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise FatalError(f"the SMTP server does not support {s.security.upper()}: {exc}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientError(f"cannot connect to {s.host}:{s.port}: {exc}") from None
        self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken
                conn.close()

    def send(self, message: bytes, *, sender: str, recipient: str, message_id: str, number: int) -> str:
        conn = self._connection()
        try:
            conn.sendmail(sender, [recipient], message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = exc.recipients.get(recipient, (550, b""))
            error = f"{code} {_text(text)}"
            raise (TransientError if 400 <= code < 500 else PermanentError)(error) from None
        except smtplib.SMTPSenderRefused as exc:
            refusal = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            raise FatalError(f"the SMTP server refused the sender {sender}: {refusal}") from None
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:  # the server is closing the connection
                self._drop()
            error = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            raise (TransientError if 400 <= exc.smtp_code < 500 else PermanentError)(error) from None
        except TimeoutError as exc:
            self._drop()
            raise UncertainError(f"no answer from the SMTP server after sending: {exc}") from None
        except (smtplib.SMTPServerDisconnected, ConnectionError, OSError) as exc:
            self._drop()
            raise TransientError(f"the SMTP connection broke: {exc}") from None
        return message_id

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
             "LimitExceededException", "AccessDeniedException", "UnrecognizedClientException",
             "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredTokenException"}

    def __init__(self, config: Config, client: Any = None) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.config = config
        self.session = boto3.session.Session()
        # One attempt per call: the sending loop retries, knowing which sends are safe to repeat.
        boto = BotoConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=30,
                          max_pool_connections=max(10, config.email.workers * 2))
        region = config.ses.region
        self.client = client or self.session.client("sesv2", config=boto, **({"region_name": region} if region else {}))
        self.contact_list = config.subscribers.ses_contact_list
        self.topic = config.subscribers.ses_topic

    def send(self, message: bytes, *, sender: str, recipient: str, message_id: str, number: int) -> str:
        from botocore.exceptions import (
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )

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
            if code in self.FATAL:
                raise FatalError(f"SES refused to send: {text}") from None
            if code in self.TRANSIENT or status >= 500 or status == 429:
                raise TransientError(text) from None
            raise PermanentError(text) from None
        except NoCredentialsError:
            raise FatalError("no AWS credentials for SES (set AWS_PROFILE or AWS_ACCESS_KEY_ID...)") from None
        except (EndpointConnectionError, ConnectTimeoutError) as exc:
            raise TransientError(f"cannot reach SES: {exc}") from None
        except ReadTimeoutError as exc:
            raise UncertainError(f"no answer from SES after sending: {exc}") from None

    def default_rate(self) -> float | None:
        """The account's MaxSendRate (SES v1 GetSendQuota): SES rejects anything faster."""
        try:
            ses = self.session.client("ses", **({"region_name": self.config.ses.region} if self.config.ses.region
                                                else {}))
            return float(ses.get_send_quota()["MaxSendRate"]) or None
        except Exception:  # no permission to read the quota: fall back to SES's sandbox rate
            return 1.0

    def close(self) -> None:
        pass


def transport_for(config: Config, slug: str) -> Transport:
    if config.email.transport == "smtp":
        return SmtpTransport(config)
    if config.email.transport == "ses":
        return SesTransport(config)
    return OutboxTransport(config.root / config.email.outbox, slug)
