"""Bounces and complaints: read Amazon SES event notifications from an SQS queue and update the subscribers.

SES publishes them to an SNS topic (identity notifications, `"notificationType"`, or configuration-set event
publishing, `"eventType"`), and an SQS queue subscribed to that topic keeps them until we come by. A hard
(permanent) bounce marks the recipient `bounced`, a complaint `complained`; both are then suppressed for good,
because the sending loop only sends to `active` subscribers. A soft (transient or undetermined) bounce is
counted and the subscriber stays active.

A message is deleted once it has been applied. A message we cannot read (not JSON, not from SES) stays in the
queue, so that nothing is lost to a bug here; give the queue a redrive policy to move such messages aside.

Which message each bounce, complaint and delivery was about is kept for `publisher report` ("per message"): in
the SQLite ledger's `message_events` table, or, with `[subscribers] dynamodb_table` (the ledger is then in
DynamoDB), on the message's delivery item (PK = ISSUE#<slug>, SK = TO#<email>) as the string set `events`
(bounce-hard | bounce-soft | complaint | delivery), found by the issue in our Message-ID header and the
notification's recipient, written only if the item carries that Message-ID (stores/dynamodb_report.py,
`record_event`; no Scan, no index, no new item).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any, Protocol

from .config import Config
from .errors import PublisherError
from .ses_contacts import aws_error
from .subscribers import Subscriber, connect, migrate, normalize_email, open_store

log = logging.getLogger(__name__)

BATCH = 10  # the most SQS hands out per ReceiveMessage
PERMISSIONS = "sqs:ReceiveMessage and sqs:DeleteMessage on the queue (and sqs:GetQueueUrl for a queue name)"
_QUEUE_REGION = re.compile(r"^https://sqs[.-]([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com")
_MISSING_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


class EventStore(Protocol):
    """What event processing needs of a subscriber store (both stores have it)."""

    def get(self, email: str) -> Subscriber | None: ...

    def set_status(self, email: str, status: str) -> bool: ...

    def add_soft_bounce(self, email: str) -> int: ...


@dataclass
class EventReport:
    hard_bounces: int = 0  # recipients of permanent bounces (now `bounced`)
    soft_bounces: int = 0  # recipients of transient or undetermined bounces (counted, still active)
    complaints: int = 0  # recipients who marked a message as spam (now `complained`)
    deliveries: int = 0  # recipients of delivery notifications
    ignored: int = 0  # messages left in the queue: not JSON, or not an SES notification
    unknown_recipients: int = 0  # bounced or complaining addresses that are not subscribers
    messages: int = 0  # SQS messages read
    other: int = 0  # SES notifications with nothing to apply (send, open, click, not-spam...), deleted


# ---- reading one message ----


def ses_notification(body: str) -> dict[str, Any] | None:
    """The SES notification in an SQS message body: in an SNS envelope, or raw (raw message delivery)."""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and data.get("Type") == "Notification" and isinstance(data.get("Message"), str):
            data = json.loads(data["Message"])
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kind = data.get("notificationType", data.get("eventType"))
    return data if isinstance(kind, str) and kind else None


def _addresses(items: Any, key: str | None = "emailAddress") -> list[str] | None:
    """The recipients' addresses as written, or None when the list is not there (a malformed notification)."""
    if not isinstance(items, list):
        return None
    found = (item.get(key) if key and isinstance(item, dict) else item for item in items)
    return [address for address in found if isinstance(address, str)]


def _subscriber_address(address: str) -> str | None:
    try:
        return normalize_email(parseaddr(address)[1] or address)
    except ValueError:
        return None


# Which message each bounce, complaint and delivery was about, so `publisher report` can count them per issue: the
# SES message id (the ledger's `provider_id`) and the Message-ID header we wrote (its `message_id`). No address is
# kept here: a delivery row of the ledger already says whose message it was.
EVENTS_VERSION = 1
EVENTS_TABLES = (
    """CREATE TABLE message_events (
        provider_id TEXT NOT NULL,  -- '' when the notification has none
        message_id TEXT NOT NULL,   -- '<…>' as in the ledger, '' when the notification has none
        kind TEXT NOT NULL,         -- bounce-hard | bounce-soft | complaint | delivery
        at TEXT NOT NULL,           -- when SES saw it (the notification's timestamp)
        PRIMARY KEY (provider_id, message_id, kind)
    ) WITHOUT ROWID""",
    "CREATE INDEX message_events_message ON message_events (message_id)",
)


def _message_ids(notification: dict[str, Any]) -> tuple[str, str]:
    """(SES message id, our Message-ID header in angle brackets) of the mail a notification is about."""
    mail = notification.get("mail") if isinstance(notification.get("mail"), dict) else {}
    provider = mail.get("messageId") if isinstance(mail.get("messageId"), str) else ""
    headers = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
    header = headers.get("messageId") if isinstance(headers.get("messageId"), str) else ""
    header = header.strip()
    if header and not header.startswith("<"):
        header = f"<{header}>"
    return provider.strip()[:200], header[:998]


class _Applier:
    """Applies notifications to a store, counting into a report; with `ledger`, records which message each was
    about (`message_events`); with `table` (a DynamoDBStore: the ledger is in DynamoDB), on the message's delivery
    item instead."""

    def __init__(self, store: EventStore, report: EventReport, ledger: sqlite3.Connection | None = None,
                 table: Any = None) -> None:
        self.store = store
        self.report = report
        self.ledger = ledger
        self.table = table

    def record(self, notification: dict[str, Any], kind: str, at: Any, addresses: Iterable[str] = ()) -> None:
        provider, header = _message_ids(notification)
        if not (provider or header):
            return
        if self.table is not None:
            from .stores.dynamodb_report import record_event

            for address in addresses:
                email = _subscriber_address(address)
                if email and not record_event(self.table, header, provider, email, kind):
                    log.info("no delivery of %s in the DynamoDB ledger for %s", header or provider, kind)
        if self.ledger is None:
            return
        stamp = at if isinstance(at, str) and len(at) < 40 else ""
        self.ledger.execute("INSERT OR IGNORE INTO message_events (provider_id, message_id, kind, at) "
                            "VALUES (?, ?, ?, ?)", (provider, header, kind, stamp))

    def apply(self, notification: dict[str, Any]) -> bool:
        """False when the notification is malformed (the message then stays in the queue)."""
        kind = str(notification.get("notificationType", notification.get("eventType")))
        handlers = {"Bounce": self.bounce, "Complaint": self.complaint, "Delivery": self.delivery}
        handler = handlers.get(kind)
        if handler is None:
            self.report.other += 1
            return True
        return handler(notification)

    def _known(self, addresses: Iterable[str]) -> list[Subscriber]:
        known = []
        for address in addresses:
            email = _subscriber_address(address)
            subscriber = self.store.get(email) if email else None
            if subscriber is None:
                self.report.unknown_recipients += 1
                log.info("not a subscriber: %s", address)
            else:
                known.append(subscriber)
        return known

    def bounce(self, notification: dict[str, Any]) -> bool:
        bounce = notification.get("bounce")
        if not isinstance(bounce, dict) or (addresses := _addresses(bounce.get("bouncedRecipients"))) is None:
            return False
        hard = bounce.get("bounceType") == "Permanent"
        self.record(notification, "bounce-hard" if hard else "bounce-soft", bounce.get("timestamp"), addresses)
        for subscriber in self._known(addresses):
            if hard:
                if subscriber.status != "complained":  # a complaint says more; keep it
                    self.store.set_status(subscriber.email, "bounced")
                self.report.hard_bounces += 1
            else:
                count = self.store.add_soft_bounce(subscriber.email)
                log.info("soft bounce %d of %s (%s)", count, subscriber.email, bounce.get("bounceSubType", ""))
                self.report.soft_bounces += 1
        return True

    def complaint(self, notification: dict[str, Any]) -> bool:
        complaint = notification.get("complaint")
        if not isinstance(complaint, dict) or (addresses := _addresses(complaint.get("complainedRecipients"))) is None:
            return False
        if complaint.get("complaintFeedbackType") == "not-spam":  # the reader says it is NOT spam
            self.report.other += 1
            return True
        self.record(notification, "complaint", complaint.get("timestamp"), addresses)
        for subscriber in self._known(addresses):
            self.store.set_status(subscriber.email, "complained")
            self.report.complaints += 1
        return True

    def delivery(self, notification: dict[str, Any]) -> bool:
        delivery = notification.get("delivery")
        if not isinstance(delivery, dict) or (addresses := _addresses(delivery.get("recipients"), None)) is None:
            return False
        self.record(notification, "delivery", delivery.get("timestamp"), addresses)
        self.report.deliveries += len(addresses)
        return True


# ---- the queue ----


def _queue_region(queue_url: str) -> str | None:
    match = _QUEUE_REGION.match(queue_url)
    return match.group(1) if match else None


class _Queue:
    """The few SQS calls we make, with errors a user can act on."""

    def __init__(self, config: Config, queue: str, client: Any = None) -> None:
        self.config = config
        self.shown = queue
        # The queue's own region (in its URL) wins: SQS answers only in the queue's region.
        region = _queue_region(queue) or config.ses.region or None
        self.client = client or self._call(lambda: _sqs_client(region))
        self.url = queue
        if "://" not in queue:  # a queue name
            self.url = self._call(lambda: self.client.get_queue_url(QueueName=queue))["QueueUrl"]

    def _call(self, fn: Callable[[], Any]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn()
        except (BotoCoreError, ClientError) as exc:
            error = getattr(exc, "response", {}).get("Error", {})
            if error.get("Code") in _MISSING_QUEUE or error.get("QueryErrorCode") in _MISSING_QUEUE:
                raise PublisherError(f"the SQS queue {self.shown} does not exist",
                                     hint="check the queue URL (aws sqs list-queues)") from None
            raise aws_error(exc, f"the SQS queue {self.shown}", config=self.config, field=None,
                            permissions=PERMISSIONS) from None

    def receive(self, count: int, wait_seconds: int) -> list[dict[str, Any]]:
        response = self._call(lambda: self.client.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=count, WaitTimeSeconds=wait_seconds))
        return response.get("Messages", [])  # type: ignore[no-any-return]

    def delete(self, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        response = self._call(lambda: self.client.delete_message_batch(QueueUrl=self.url, Entries=entries))
        for failure in response.get("Failed", []):
            # Not fatal: the message comes back after its visibility timeout, and applying it again is harmless.
            log.warning("could not delete SQS message %s: %s", messages[int(failure["Id"])]["MessageId"],
                        failure.get("Message", failure.get("Code")))


def _sqs_client(region: str | None) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    boto = BotoConfig(retries={"max_attempts": 6, "mode": "standard"}, connect_timeout=10, read_timeout=40)
    return boto3.session.Session().client("sqs", region_name=region, config=boto)


def process_queue(config: Config, queue_url: str, *, store: EventStore | None = None, client: Any = None,
                  max_messages: int | None = None, wait_seconds: int = 0) -> EventReport:
    """Apply the SES notifications waiting in an SQS queue (a URL, or a queue name) to the subscribers, until the
    queue is empty or `max_messages` were read. `wait_seconds` (up to 20) long-polls each receive."""
    opened = store is None
    active_store: Any = open_store(config) if store is None else store
    report = EventReport()
    ledger = table = None
    try:
        if config.subscribers.dynamodb_table:  # the ledger is in DynamoDB: so are the per-message events
            from .stores.dynamodb import DynamoDBStore

            table = active_store if isinstance(active_store, DynamoDBStore) else DynamoDBStore(config)
        else:
            ledger = connect(config.root / config.subscribers.database)
            migrate(ledger, "events", EVENTS_VERSION, EVENTS_TABLES)
        queue = _Queue(config, queue_url, client)
        _drain(queue, _Applier(active_store, report, ledger, table), max_messages, wait_seconds)
    finally:
        if ledger is not None:
            ledger.close()
        if table is not None and table is not active_store:
            table.close()
        if opened:
            active_store.close()
    return report


def _drain(queue: _Queue, applier: _Applier, max_messages: int | None, wait_seconds: int) -> None:
    report = applier.report
    seen: set[str] = set()
    while max_messages is None or report.messages < max_messages:
        wanted = BATCH if max_messages is None else min(BATCH, max_messages - report.messages)
        # A message left in the queue comes back at once when the queue's visibility timeout is 0: stop when
        # a batch brings nothing new rather than reading the same messages forever.
        fresh = [m for m in queue.receive(wanted, wait_seconds) if m["MessageId"] not in seen]
        if not fresh:
            return
        done: list[dict[str, Any]] = []
        try:
            for message in fresh:
                seen.add(message["MessageId"])
                report.messages += 1
                if _handle(message, applier):
                    done.append(message)
        finally:
            queue.delete(done)  # what was applied, even when a later message of the batch failed


def _handle(message: dict[str, Any], applier: _Applier) -> bool:
    """Apply one SQS message; False (and a warning naming it) when it stays in the queue."""
    notification = ses_notification(message.get("Body", ""))
    if notification is not None and applier.apply(notification):
        return True
    applier.report.ignored += 1
    reason = "not an SES notification" if notification is None else "an SES notification without its recipients"
    log.warning("left SQS message %s in the queue: %s", message.get("MessageId"), reason)
    return False
