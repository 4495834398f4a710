"""AWS Lambda entry point for the subscribe / confirm / unsubscribe endpoint (Mangum adapts ASGI to Lambda).

Package this file with `publisher[lambda]` and a newsletter folder holding publisher.toml and themes/ (content/
is not needed, except content/_welcome.md for welcome emails). Lambda has no durable disk, so that
publisher.toml must keep subscribers out of SQLite, and send through SES (`[email] transport = "ses"`):
- `[subscribers] dynamodb_table` (preferred): the full subscriber record (name, tags, pause, soft bounces,
  changes of address, the version the confirm links are checked against) and the delivery ledger, welcome
  emails included, all in one DynamoDB table. A confirmation makes the subscriber active and queues their
  welcome in one transaction, and the welcome goes out once, however often the link is clicked and however
  many instances run.
- `[subscribers] ses_contact_list`: an SES contact list keeps the address, status and topics only; welcome
  emails need the SQLite ledger, which a Lambda instance loses, so leave content/_welcome.md out there.
PUBLISHER_SECRET comes from the function's environment (from Secrets Manager or SSM); AWS credentials from the
execution role (for DynamoDB: the item actions of the SubscriberTablePolicy in deploy/cloudformation.yaml; a
transaction needs no permission of its own).

The endpoint queues each sign-up for a background thread, but Lambda freezes an instance as soon as the handler
returns, so `handler` waits for that queue to empty before returning. The reader's answer therefore comes after
the confirmation email went out here, and a new address takes longer than a known one (under `publisher serve`
the answer comes first). To close that gap on Lambda, hand the queue to SQS or an asynchronous invocation.

The same file is the publish function that EventBridge Scheduler invokes at an issue's time (publisher/schedules.py):
its event is the schedule's input, `{"action": "publish", "due": true, "issue": "<slug>"}`, and it runs `publish
--due`. Set `PUBLISHER_FUNCTION=publish` on that function, so that it does not build the subscribe endpoint (its
newsletter folder needs content/ too). A failed publish raises, so Lambda's retries of an asynchronous invocation
(and then the schedule's retry policy) try again; `publish` is idempotent.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from mangum import Mangum

from publisher.config import load_config
from publisher.errors import PublisherError

ROOT = os.environ.get("PUBLISHER_ROOT", os.path.join(os.path.dirname(__file__), "newsletter"))
FUNCTION = os.environ.get("PUBLISHER_FUNCTION", "serve")  # serve | publish
log = logging.getLogger("publisher")


def _app():  # type: ignore[no-untyped-def]
    from publisher.subscription import create_app

    config = load_config(ROOT)
    if not (config.subscribers.dynamodb_table or config.subscribers.ses_contact_list):
        raise PublisherError("on Lambda, subscribers cannot live in SQLite (an instance has no durable disk): set "
                             "[subscribers] dynamodb_table (preferred: the full subscriber record and the "
                             "delivery ledger) or [subscribers] ses_contact_list",
                             file=config.file.name, field="subscribers.dynamodb_table",
                             hint='e.g. dynamodb_table = "newsletter" (or the function\'s environment variable '
                                  "PUBLISHER_SUBSCRIBERS_DYNAMODB_TABLE, as the CloudFormation template sets it), "
                                  "a table made by the template or by `publisher subscribers init-table`")
    if not config.subscribers.dynamodb_table:
        from publisher import welcome

        if welcome.enabled(config):  # its ledger would be a SQLite file in the (read-only) package
            log.warning("%s: welcome emails need [subscribers] dynamodb_table on Lambda (with ses_contact_list their "
                        "ledger is SQLite); remove the file from the package or move the subscribers to DynamoDB",
                        welcome.path(config))
    return create_app(config)


DRAIN_SECONDS = 20.0  # keep the function's timeout above this

# Built once per Lambda instance (a cold start), then reused for every request it serves.
app = _app() if FUNCTION != "publish" else None
adapter = Mangum(app, lifespan="off") if app is not None else None


def publish_due(event: dict[str, Any]) -> dict[str, Any]:
    """An EventBridge Scheduler invocation: `publish --due` now (the issue named in the event is only logged and
    reported: publish sends whatever is due, and a schedule that fires late catches up on everything)."""
    from publisher import clock
    from publisher.scheduler import publish, summary

    config = load_config(ROOT)
    report = publish(config, now=clock.now(), due=bool(event.get("due", True)))
    said = summary(report)
    log.info("publisher publish (schedule for %s): %s", event.get("issue", "?"), said)  # to CloudWatch Logs
    if report.failures:
        raise PublisherError("; ".join(report.failures), hint="Lambda retries; the next publish tries again")
    issue = event.get("issue")
    return {"action": "publish", "issue": issue, "published": issue in report.newly_public, "summary": said}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if FUNCTION == "publish":  # only there: the subscribe endpoint never publishes, whatever it is sent
        if not (isinstance(event, dict) and event.get("action") == "publish"):
            raise PublisherError('the publish function (PUBLISHER_FUNCTION=publish) takes {"action": "publish", '
                                 '"due": true, "issue": "<slug>"} events, as its EventBridge schedules send')
        return publish_due(event)
    assert app is not None and adapter is not None
    try:
        return adapter(event, context)
    finally:
        app.state.endpoint.worker.drain(DRAIN_SECONDS)  # a frozen instance would never send what is queued
