"""AWS Lambda entry point for the send workers: an SQS event source mapping hands it the batches that `publisher send
--workers sqs` (or a publish with `[email] fanout = "sqs"`) queued (publisher/fanout.py).

Package it as the publish function is packaged (`publisher[lambda]` plus the newsletter folder with publisher.toml,
content/ and themes/), with this file at the zip's root; CloudFormation's WorkerFunction runs it (deploy/README.md).
publisher.toml must keep the ledger in DynamoDB (`[subscribers] dynamodb_table`) and send through SES; the secret
comes from PUBLISHER_SECRET, AWS credentials from the execution role.

The event source mapping must report batch item failures (`FunctionResponseTypes: [ReportBatchItemFailures]`):
a record whose rows are not all settled (SES unavailable, a throttled table, a batch no worker can send) is
returned in `batchItemFailures`, so SQS hands it out again, and after the queue's maxReceiveCount moves it to
the dead-letter queue. The records that were sent are deleted; a record that comes twice sends nothing twice (the
ledger's claims are conditional writes).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from publisher.config import load_config
from publisher.errors import PublisherError
from publisher.fanout import PoisonBatch, Worker

ROOT = os.environ.get("PUBLISHER_ROOT", os.path.join(os.path.dirname(__file__), "newsletter"))
log = logging.getLogger("publisher")

_worker: Worker | None = None  # one per Lambda instance: each issue is rendered once, the rate limiter kept


def worker() -> Worker:
    global _worker
    if _worker is None:
        # Lambda freezes an instance between invocations: the shared rate limit must not count the frozen time
        # as tokens this instance holds, so it takes a fresh chunk from the table per invocation (see handler).
        _worker = Worker(load_config(ROOT))
    return _worker


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if not (isinstance(event, dict) and isinstance(event.get("Records"), list)):
        raise PublisherError("the worker function takes SQS events (an event source mapping on the send queue)")
    sender = worker()
    if hasattr(sender.limiter, "held"):
        sender.limiter.held = 0  # type: ignore[union-attr]
    failures = []
    for record in event["Records"]:
        ident = record.get("messageId", "")
        try:
            settled = sender.handle(record.get("body", ""))
        except PoisonBatch as exc:
            log.error("a poison batch (%s), left for the dead-letter queue: %s", ident, exc)
            settled = False
        except PublisherError as exc:
            log.error("a batch (%s) is left for another try: %s", ident, exc)
            settled = False
        if not settled:
            failures.append({"itemIdentifier": ident})
    queue = sender.config.email.queue_url  # PUBLISHER_EMAIL_QUEUE_URL, which CloudFormation sets
    if queue and sender.last_slug and not failures:
        try:  # Lambda deletes this invocation's records after it returns: they are still in the queue now
            sender.settle(sender.last_slug, queue, held=len(event["Records"]))
        except PublisherError as exc:
            log.warning("could not mark the send of %s finished: %s", sender.last_slug, exc)
    return {"batchItemFailures": failures}
