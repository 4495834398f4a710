"""Bounce and complaint processing: real-shaped SES notifications in a real (moto) SQS queue, applied to the
SQLite store and to the SES contact list store."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import boto3
import pytest

from publisher.errors import PublisherError
from publisher.events import EventReport, process_queue, ses_notification
from publisher.subscribers import SqliteStore, Subscriber

# ---- notifications, in the shapes of the SES developer guide ("Amazon SNS notification contents" and
# "Event data that Amazon SES publishes to Amazon SNS") ----

SENT = "2026-11-26T08:00:00.000Z"
LATER = "2026-11-26T08:00:02.456Z"


def mail(recipients: list[str], *, event: bool = False) -> dict[str, Any]:
    message_id = f"0100019{uuid.uuid4().hex[:9]}-{uuid.uuid4()}-000000"
    found: dict[str, Any] = {
        "timestamp": SENT, "source": "editor@news.example.com",
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/news.example.com", "sourceIp": "203.0.113.10",
        "sendingAccountId": "123456789012", "callerIdentity": "publisher", "messageId": message_id,
        "destination": recipients, "headersTruncated": False,
        "headers": [{"name": "From", "value": "AI 日报 <editor@news.example.com>"},
                    {"name": "To", "value": ", ".join(recipients)},
                    {"name": "Subject", "value": "AI 日报 第一期"},
                    {"name": "List-Unsubscribe-Post", "value": "List-Unsubscribe=One-Click"}],
        "commonHeaders": {"from": ["AI 日报 <editor@news.example.com>"], "to": recipients,
                          "messageId": message_id, "subject": "AI 日报 第一期"},
    }
    if event:
        found["tags"] = {"ses:configuration-set": ["newsletter"], "ses:source-ip": ["203.0.113.10"],
                         "ses:from-domain": ["news.example.com"], "ses:caller-identity": ["publisher"]}
    return found


def _kind(name: str, event: bool) -> dict[str, str]:
    return {"eventType": name} if event else {"notificationType": name}


def bounce(bounce_type: str, *recipients: str, sub_type: str = "General", event: bool = False) -> dict[str, Any]:
    permanent = bounce_type == "Permanent"
    return {**_kind("Bounce", event), "bounce": {
        "bounceType": bounce_type, "bounceSubType": sub_type,
        "bouncedRecipients": [{"emailAddress": r, "action": "failed", "status": "5.1.1" if permanent else "4.2.2",
                               "diagnosticCode": "smtp; 550 5.1.1 user unknown" if permanent
                               else "smtp; 452 4.2.2 mailbox full"} for r in recipients],
        "timestamp": LATER, "feedbackId": f"0100019-{uuid.uuid4()}-000000", "remoteMtaIp": "198.51.100.7",
        "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com"}, "mail": mail(list(recipients), event=event)}


def complaint(*recipients: str, feedback: str = "abuse", event: bool = False) -> dict[str, Any]:
    return {**_kind("Complaint", event), "complaint": {
        "userAgent": "ExampleCorp Feedback Loop (V0.01)", "complainedRecipients": [{"emailAddress": r}
                                                                                   for r in recipients],
        "complaintFeedbackType": feedback, "arrivalDate": LATER, "timestamp": LATER,
        "feedbackId": f"0100019-{uuid.uuid4()}-000000"}, "mail": mail(list(recipients), event=event)}


def delivery(*recipients: str, event: bool = False) -> dict[str, Any]:
    return {**_kind("Delivery", event), "delivery": {
        "timestamp": LATER, "processingTimeMillis": 546, "recipients": list(recipients),
        "smtpResponse": "250 ok:  Message 64111812 accepted", "reportingMTA": "a8-70.smtp-out.amazonses.com",
        "remoteMtaIp": "198.51.100.7"}, "mail": mail(list(recipients), event=event)}


def sns(notification: dict[str, Any], kind: str = "Notification") -> str:
    """The SNS envelope SQS receives when the subscription does not use raw message delivery."""
    return json.dumps({
        "Type": kind, "MessageId": str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-notifications",
        "Message": json.dumps(notification), "Timestamp": LATER, "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6bkk",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:"
                          "us-east-1:123456789012:ses-notifications:0b1b8a4d-0a5a-4b1e-8d6f-3c1d2e3f4a5b"})


GARBAGE = ["not json at all", '{"hello": "world"}', '["a", "list"]',
           sns({"hello": "world"}),  # an SNS notification that is not from SES
           sns({}, kind="SubscriptionConfirmation")]


# ---- fixtures ----


def make_queue(visibility: int | None = None) -> str:
    attributes = {} if visibility is None else {"VisibilityTimeout": str(visibility)}
    return boto3.client("sqs").create_queue(QueueName=f"ses-events-{uuid.uuid4().hex[:12]}",
                                            Attributes=attributes)["QueueUrl"]


def send(queue_url: str, *bodies: str) -> None:
    sqs = boto3.client("sqs")
    for body in bodies:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)


def queue_counts(queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages in the queue."""
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def bodies_left(queue_url: str) -> list[str]:
    """The bodies still in a queue whose visibility timeout is 0 (so nothing stays hidden)."""
    found = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return sorted(m["Body"] for m in found)


def soft_bounces(store: SqliteStore, email: str) -> int:
    return int(store.db.execute("SELECT soft_bounces FROM subscribers WHERE email = ?", (email,)).fetchone()[0])


PEOPLE = ("hard@example.com", "soft@example.com", "spam@example.com", "fine@example.com", "maybe@example.com",
          "gone@example.com", "also-hard@example.com")


@pytest.fixture
def store(newsletter):  # type: ignore[no-untyped-def]
    s = SqliteStore(newsletter.root / "subscribers.db")
    for email in PEOPLE:
        s.upsert(Subscriber(email, email.split("@")[0]))
    yield s
    s.close()


@pytest.fixture
def config(newsletter, aws):  # type: ignore[no-untyped-def]
    return newsletter.load_config()


# ---- tests ----


def test_bounces_and_complaints_suppress_and_garbage_stays(config, store, caplog):
    queue = make_queue(visibility=0)
    send(queue,
         sns(bounce("Permanent", "hard@example.com")),  # identity notification through SNS
         sns(bounce("Transient", "soft@example.com", sub_type="MailboxFull")),
         json.dumps(complaint("spam@example.com")),  # raw message delivery
         sns(delivery("fine@example.com", "soft@example.com")),
         sns(bounce("Undetermined", "maybe@example.com", sub_type="Undetermined", event=True)),  # event publishing
         json.dumps(bounce("Permanent", "Gone@Example.com", "nobody@example.com", event=True)),
         sns(bounce("Permanent", "also-hard@example.com", sub_type="OnAccountSuppressionList")),
         sns(complaint("stranger@example.com", event=True)),
         *GARBAGE)
    with caplog.at_level(logging.WARNING, logger="publisher.events"):
        report = process_queue(config, queue, store=store)
    assert report == EventReport(hard_bounces=3, soft_bounces=2, complaints=1, deliveries=2, ignored=len(GARBAGE),
                                 unknown_recipients=2, messages=8 + len(GARBAGE))
    statuses = {s.email: s.status for s in store.iter()}
    assert statuses == {"hard@example.com": "bounced", "soft@example.com": "active", "spam@example.com": "complained",
                        "fine@example.com": "active", "maybe@example.com": "active", "gone@example.com": "bounced",
                        "also-hard@example.com": "bounced"}
    assert (soft_bounces(store, "soft@example.com"), soft_bounces(store, "maybe@example.com")) == (1, 1)
    # the sending loop reads only active subscribers: the suppressed ones are never emailed again
    assert {s.email for s in store.iter("active")} == {"soft@example.com", "fine@example.com", "maybe@example.com"}
    assert bodies_left(queue) == sorted(GARBAGE)
    assert sum("left SQS message" in r.getMessage() for r in caplog.records) == len(GARBAGE)

    again = process_queue(config, queue, store=store)
    assert again == EventReport(ignored=len(GARBAGE), messages=len(GARBAGE))
    assert {s.email: s.status for s in store.iter()} == statuses
    assert soft_bounces(store, "soft@example.com") == 1
    assert bodies_left(queue) == sorted(GARBAGE)


def test_processed_messages_are_deleted_and_garbage_waits_for_its_visibility_timeout(config, store):
    queue = make_queue()  # the default 30 s: a message left in the queue stays hidden for a while
    send(queue, sns(bounce("Permanent", "hard@example.com")), sns(delivery("fine@example.com")), "{broken")
    report = process_queue(config, queue, store=store)
    assert (report.messages, report.hard_bounces, report.deliveries, report.ignored) == (3, 1, 1, 1)
    assert queue_counts(queue) == (0, 1)  # only the broken one, in flight until its timeout
    assert process_queue(config, queue, store=store) == EventReport()


def test_a_hard_bounce_does_not_hide_a_complaint(config, store):
    queue = make_queue()
    send(queue, sns(complaint("spam@example.com")))
    process_queue(config, queue, store=store)
    send(queue, sns(bounce("Permanent", "spam@example.com")))
    report = process_queue(config, queue, store=store)
    assert report.hard_bounces == 1
    assert store.get("spam@example.com").status == "complained"


def test_a_not_spam_report_is_not_a_complaint(config, store):
    queue = make_queue()
    send(queue, sns(complaint("fine@example.com", feedback="not-spam")))
    report = process_queue(config, queue, store=store)
    assert (report.complaints, report.other, report.ignored) == (0, 1, 0)
    assert store.get("fine@example.com").status == "active"
    assert queue_counts(queue) == (0, 0)


def test_other_ses_events_are_deleted_without_changes(config, store):
    queue = make_queue()
    send(queue, json.dumps({"eventType": "Open", "mail": mail(["fine@example.com"]), "open": {
        "ipAddress": "192.0.2.1", "timestamp": LATER, "userAgent": "Mozilla/5.0"}}),
         json.dumps({"notificationType": "AmazonSnsSubscriptionSucceeded",
                     "message": "You have successfully subscribed your Amazon SNS topic"}))
    report = process_queue(config, queue, store=store)
    assert report == EventReport(other=2, messages=2)
    assert queue_counts(queue) == (0, 0)


def test_a_bounce_without_its_recipients_stays_in_the_queue(config, store):
    queue = make_queue(visibility=0)
    broken = {"notificationType": "Bounce", "bounce": {"bounceType": "Permanent"}, "mail": mail([])}
    send(queue, sns(broken))
    report = process_queue(config, queue, store=store)
    assert (report.ignored, report.hard_bounces) == (1, 0)
    assert len(bodies_left(queue)) == 1


def test_max_messages_stops_early_and_the_rest_waits(config, store):
    queue = make_queue()
    send(queue, *(sns(delivery("fine@example.com")) for _ in range(25)))
    first = process_queue(config, queue, store=store, max_messages=12)
    assert (first.messages, first.deliveries) == (12, 12)
    assert queue_counts(queue) == (13, 0)
    rest = process_queue(config, queue, store=store)
    assert rest.messages == 13
    assert queue_counts(queue) == (0, 0)


def test_the_store_defaults_to_the_configured_one(config, newsletter):
    path = newsletter.root / "subscribers.db"
    with_store = SqliteStore(path)
    with_store.upsert(Subscriber("hard@example.com"))
    with_store.close()
    queue = make_queue()
    send(queue, sns(bounce("Permanent", "hard@example.com")))
    assert process_queue(config, queue).hard_bounces == 1
    reopened = SqliteStore(path)
    assert reopened.get("hard@example.com").status == "bounced"
    reopened.close()


def test_a_queue_name_works_and_a_missing_queue_is_a_clear_error(config, store):
    queue = make_queue()
    send(queue, sns(complaint("spam@example.com")))
    assert process_queue(config, queue.rsplit("/", 1)[1], store=store).complaints == 1
    with pytest.raises(PublisherError, match="does not exist"):
        process_queue(config, queue.rsplit("/", 1)[0] + "/no-such-queue", store=store)
    with pytest.raises(PublisherError, match="does not exist"):
        process_queue(config, "no-such-queue", store=store)


def test_the_ses_contact_list_store(newsletter, aws):
    from publisher.ses_contacts import SesContactStore

    name = f"news-{uuid.uuid4().hex[:12]}"
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + f'[subscribers]\nses_contact_list = "{name}"\nses_topic = "weekly"\n')
    config = newsletter.load_config()
    contacts = SesContactStore(config)
    for email in ("hard@example.com", "soft@example.com", "spam@example.com", "fine@example.com"):
        contacts.upsert(Subscriber(email))
    queue = make_queue()
    send(queue, sns(bounce("Permanent", "hard@example.com", event=True)), json.dumps(complaint("spam@example.com")),
         sns(bounce("Transient", "soft@example.com")))
    report = process_queue(config, queue)  # the store comes from the config: the contact list
    assert (report.hard_bounces, report.complaints, report.soft_bounces) == (1, 1, 1)
    assert {s.email: s.status for s in contacts.iter()} == {
        "hard@example.com": "bounced", "soft@example.com": "active", "spam@example.com": "complained",
        "fine@example.com": "active"}
    sesv2 = boto3.client("sesv2")
    assert sesv2.get_contact(ContactListName=name, EmailAddress="spam@example.com")["UnsubscribeAll"] is True
    soft = sesv2.get_contact(ContactListName=name, EmailAddress="soft@example.com")
    assert (json.loads(soft["AttributesData"])["soft_bounces"], soft["UnsubscribeAll"]) == (1, False)
    assert queue_counts(queue) == (0, 0)


def test_ses_notification_reads_both_forms():
    note = complaint("a@example.com", event=True)
    assert ses_notification(sns(note)) == note
    assert ses_notification(json.dumps(note)) == note
    assert ses_notification(sns({"no": "type"})) is None
    assert ses_notification('{"Type": "Notification", "Message": "not json"}') is None


def test_the_cli_command(config, store, run_cli):
    queue = make_queue()
    send(queue, sns(bounce("Permanent", "hard@example.com")), json.dumps(complaint("spam@example.com")))
    result = run_cli("-C", str(config.root), "events", "--queue", queue)
    assert result.exit_code == 0, result.output
    assert "1 hard bounces" in result.output and "1 complaints" in result.output
    assert (store.get("hard@example.com").status, store.get("spam@example.com").status) == ("bounced", "complained")
