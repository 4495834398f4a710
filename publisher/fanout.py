"""Sending through an SQS queue: one process queues the recipients in batches, any number of workers send them.

`send --workers sqs` (or `[email] fanout = "sqs"`) takes the audience's snapshot into the DynamoDB ledger as a
local send does, then queues the pending rows, BATCH addresses per SQS message (`{"v": 1, "issue": slug, "to":
[...]}`). Workers (`publisher worker --queue URL`, or deploy/lambda/worker.py behind an SQS event source mapping)
take a message, read its rows from the ledger (one BatchGetItem, and one for the subscribers' current status) and
send those still pending through the SendLoop a local send uses: each row claimed with a conditional write right
before the transport is called and recorded `sent` right after, 2 writes per recipient. So:

- SQS delivers a message at least once. A copy that reaches a second worker finds its rows sent or claimed and
  sends none of them again; so do the batches of two senders that queued one issue at once.
- A worker killed mid-batch leaves at most the rows it had in flight `sending`: uncertain, reported by the next
  `send` as for a local send. Its message comes back after the queue's visibility timeout and another worker
  sends the rest. A live worker keeps extending the visibility of the message it works on (Heartbeat).
- A message that fails on every attempt (a body that is not ours, an issue that is gone or now a draft) goes to
  the queue's dead-letter queue after maxReceiveCount receives (the queue's RedrivePolicy; CloudFormation sets
  5). Its rows stay pending: `send --requeue` queues them again once the cause is fixed.
- One rate for all workers, wherever they run: a token bucket item in the same table (SharedRateLimiter), taken
  a quarter second of sending at a time, so it costs one write per chunk, not per message.

Queueing resumes too: after each SendMessageBatch call the send item records the last address queued, so a
sender killed mid-way queues only the rest when run again (at most that call's ten messages twice, harmless).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import clock as clock_mod
from . import markdown
from .config import Config
from .content import find_issue, load_issues
from .emails import MessageFactory, RenderedEmail, render_email, sender_of
from .errors import PublisherError
from .sending import RateLimiter, SendLoop, SendReport
from .stores.dynamodb import _code, _s
from .stores.dynamodb_ledger import DynamoDBLedger
from .tokens import secret_from_env
from .transports import Transport, transport_for

log = logging.getLogger(__name__)

BATCH = 100  # recipients per SQS message: 100 addresses are ~3 KB, far below SQS's 256 KiB
PER_CALL = 10  # SendMessageBatch's limit
VERSION = 1  # of the message body
MAX_BODY = 256 * 1024
MAX_ADDRESS = 320
SHORT_POLL_PAUSE = 0.5  # between two empty receives without long polling (wait_seconds=0)
SEND_ATTEMPTS = 5  # for the entries of a SendMessageBatch that SQS did not take (throttling, an internal error)
RATE_KEY = {"PK": {"S": "RATE"}, "SK": {"S": "SEND"}}  # the token bucket item, one per table
FIELD = "email.queue_url"


class PoisonBatch(PublisherError):
    """A queued message no worker can ever send: left to the queue's redrive policy (the dead-letter queue)."""


# ---- the sender's side ----


def queue_of(config: Config, queue: str | None = None) -> str:
    """The queue URL: `--queue`, else `email.queue_url` (or PUBLISHER_EMAIL_QUEUE_URL); an error naming both."""
    from .config import queue_url

    value = queue or config.email.queue_url
    if not value:
        raise PublisherError("sending through SQS needs the queue's URL", file=config.file.name, field=FIELD,
                             hint="set [email] queue_url, PUBLISHER_EMAIL_QUEUE_URL or --queue URL (the "
                                  "CloudFormation stack's output SendQueueUrl)")
    try:
        return queue_url(value)
    except ValueError as exc:
        raise PublisherError(f"--queue {exc}, got {value!r}", field="--queue") from None


def sqs_client(queue: str) -> Any:
    """An SQS client in the queue's own region (AWS queue URLs name it), else the AWS chain's region."""
    import boto3

    found = re.match(r"^https://sqs\.([a-z0-9-]+)\.amazonaws\.com/", queue)
    return boto3.client("sqs", region_name=found.group(1)) if found else boto3.client("sqs")


def _sqs_error(exc: Exception, queue: str, what: str) -> PublisherError:
    code = _code(exc)
    hint = {"AWS.SimpleQueueService.NonExistentQueue": "check email.queue_url (the stack output SendQueueUrl)",
            "QueueDoesNotExist": "check email.queue_url (the stack output SendQueueUrl)",
            "AccessDenied": "the role needs sqs:SendMessage (sender) or sqs:ReceiveMessage, sqs:DeleteMessage, "
                            "sqs:ChangeMessageVisibility and sqs:GetQueueAttributes (worker) on the queue"}
    return PublisherError(f"SQS {what} failed for {queue}: {exc}", field=FIELD,
                          hint=hint.get(code, "check the network, AWS_REGION and the credentials"))


def body_of(slug: str, emails: list[str]) -> str:
    return json.dumps({"v": VERSION, "issue": slug, "to": emails}, ensure_ascii=False, separators=(",", ":"))


def enqueue(ledger: DynamoDBLedger, slug: str, queue: str, *, client: Any = None, requeue: bool = False,
            sleep: Callable[[float], None] = time.sleep) -> tuple[int, int]:
    """Queues the pending rows of `slug` that no earlier run queued (with `requeue`: every pending row, e.g. after
    a batch went to the dead-letter queue). Returns (recipients, messages) queued by this call."""
    sqs = client or sqs_client(queue)
    if requeue:
        start, done = None, False
        ledger.set_queue_cursor(slug, None, done=False)
    else:
        start, done = ledger.queue_cursor(slug)
    if done:
        return 0, 0
    queued = messages = 0
    batches: list[list[str]] = []
    current: list[str] = []

    def flush() -> None:
        nonlocal queued, messages
        _send_batches(sqs, queue, slug, batches, sleep)
        queued += sum(len(b) for b in batches)
        messages += len(batches)
        ledger.set_queue_cursor(slug, batches[-1][-1], done=False)
        batches.clear()

    for items, _ in ledger._rows(slug, state="pending", start=start, projection="email"):
        for item in items:
            current.append(_s(item, "email"))
            if len(current) == BATCH:
                batches.append(current)
                current = []
                if len(batches) == PER_CALL:
                    flush()
    if current:
        batches.append(current)
    if batches:
        flush()
    ledger.set_queue_cursor(slug, None, done=True)
    return queued, messages


def _send_batches(sqs: Any, queue: str, slug: str, batches: list[list[str]], sleep: Callable[[float], None]) -> None:
    entries = [{"Id": str(i), "MessageBody": body_of(slug, b)} for i, b in enumerate(batches)]
    for attempt in range(SEND_ATTEMPTS):
        try:
            answer = sqs.send_message_batch(QueueUrl=queue, Entries=entries)
        except Exception as exc:
            raise _sqs_error(exc, queue, "SendMessageBatch") from None
        failed = answer.get("Failed", [])
        if not failed:
            return
        if any(f.get("SenderFault") for f in failed):
            raise PublisherError(f"SQS refused {len(failed)} batches of {slug}: {failed[0].get('Message')}",
                                 field=FIELD, hint="check the queue (a FIFO queue needs a group id: use a standard "
                                                   "queue)")
        retry = {f["Id"] for f in failed}
        entries = [e for e in entries if e["Id"] in retry]
        sleep(0.2 * 2 ** attempt)
    raise PublisherError(f"SQS did not take {len(entries)} batches of {slug} after {SEND_ATTEMPTS} attempts",
                         field=FIELD, hint="run send again: it queues what is left")


# ---- the workers' side ----


def parse_body(body: str) -> tuple[str, list[str]]:
    """(issue slug, addresses) of a queued message, or PoisonBatch: the queue is ours, but what it holds is
    checked as input (a message sent to it by mistake, a body from another version)."""
    if len(body.encode("utf-8", "replace")) > MAX_BODY:
        raise PoisonBatch("a queued message is larger than SQS allows (not one of ours)")
    try:
        data = json.loads(body)
    except ValueError:
        raise PoisonBatch("a queued message is not JSON (not one of ours)") from None
    if not isinstance(data, dict) or set(data) != {"v", "issue", "to"}:
        raise PoisonBatch('a queued message is not {"v", "issue", "to"} (not one of ours)')
    if data["v"] != VERSION:
        raise PoisonBatch(f"a queued message has version {data['v']!r}; this worker reads {VERSION}",
                          hint="run workers of the same publisher version as the sender")
    slug, emails = data["issue"], data["to"]
    if not isinstance(slug, str) or not 0 < len(slug) <= 200 or not slug.isprintable():
        raise PoisonBatch("a queued message names no valid issue")
    if not isinstance(emails, list) or not 0 < len(emails) <= BATCH or not all(
            isinstance(e, str) and 0 < len(e) <= MAX_ADDRESS and "@" in e for e in emails):
        raise PoisonBatch(f"a queued message of {slug} does not hold 1 to {BATCH} addresses")
    return slug, emails


class SharedRateLimiter:
    """`email.rate` for all workers together: a token bucket item in the DynamoDB table (burst: one second of
    sending), which each worker draws from a chunk at a time and spends at the full rate locally. Time is the
    real wall clock (clock.shared_seconds): workers on other machines must agree on it, and a fixed
    PUBLISHER_NOW would never refill the bucket."""

    def __init__(self, ledger: DynamoDBLedger, rate: float, *, chunk: int | None = None,
                 seconds: Callable[[], float] = clock_mod.shared_seconds, sleep: Callable[[float], None] = time.sleep,
                 pace: RateLimiter | None = None) -> None:
        self.ledger = ledger
        self.limit = rate
        self.chunk = chunk or max(1, int(rate / 4))
        self.capacity = max(rate, float(self.chunk))
        self.seconds = seconds
        self.sleep = sleep
        self.pace = pace or RateLimiter(rate, sleep=sleep)
        self.held = 0
        self.writes = 0  # to the bucket item (benchmarks/fanout.py counts them)

    def wait(self) -> None:
        if self.held == 0:
            self._take()
        self.held -= 1
        self.pace.wait()

    def _take(self) -> None:
        while True:
            item = self.ledger._call("get_item", Key=RATE_KEY, ConsistentRead=True).get("Item")
            now = self.seconds()
            if item is None:
                have, at = self.capacity, None
            else:
                at = item["at"]["N"]
                have = min(self.capacity, float(item["tokens"]["N"]) + max(0.0, now - float(at)) * self.limit)
            if have < self.chunk:
                self.sleep((self.chunk - have) / self.limit)
                continue
            # Written only if no other worker took tokens since this one read the item: then it reads again.
            condition = "attribute_not_exists(PK)" if at is None else "#at = :old"
            values: dict[str, Any] = {":tokens": {"N": repr(have - self.chunk)}, ":now": {"N": repr(now)}}
            if at is not None:
                values[":old"] = {"N": at}
            self.writes += 1
            if self.ledger._conditional("update_item", Key=RATE_KEY,
                                        UpdateExpression="SET tokens = :tokens, #at = :now",
                                        ConditionExpression=condition, ExpressionAttributeNames={"#at": "at"},
                                        ExpressionAttributeValues=values):
                self.held = self.chunk
                return

    def throttled(self) -> None:
        self.pace.throttled()

    def succeeded(self) -> None:
        self.pace.succeeded()


@dataclass
class _Issue:
    rendered: RenderedEmail
    factory: MessageFactory
    transport: Transport
    # Read once per worker: a person forgotten after the snapshot has no row under their address any more (it
    # was replaced by an anonymous one), so a queued batch cannot reach them; the set only matters for rows the
    # snapshot took, and those were forgotten before it.
    forgotten: set[str]


@dataclass
class WorkerReport:
    messages: int = 0  # queued messages taken
    done: int = 0  # deleted: every row in them settled
    returned: int = 0  # left for another try (the transport was down, a stop, an AWS error)
    poison: int = 0  # left for the dead-letter queue
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    uncertain: int = 0
    seconds: float = 0.0
    stopped: str | None = None  # why the worker stopped early (a fatal transport error)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


class Worker:
    """Sends queued batches: `handle(body)` for one message (the Lambda function calls it per record), `run()` to
    poll a queue until stopped (publisher worker). The issue is rendered once per worker and slug."""

    def __init__(self, config: Config, *, transport_factory: Callable[[str], Transport] | None = None,
                 secret: bytes | None = None, stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 shared_rate: bool = True) -> None:
        if not config.subscribers.dynamodb_table:
            raise PublisherError("a worker needs the delivery ledger in DynamoDB", file=config.file.name,
                                 field="subscribers.dynamodb_table",
                                 hint="set [subscribers] dynamodb_table: workers on other machines share it")
        self.config = config
        self.ledger = DynamoDBLedger(config)
        self.transport_factory = transport_factory or (lambda slug: transport_for(config, slug))
        self.secret = secret or secret_from_env()
        self.stop = stop or threading.Event()
        self.clock = clock
        self.sleep = sleep
        self.shared_rate = shared_rate
        self.limiter: RateLimiter | SharedRateLimiter | None = None
        self.report = WorkerReport()
        self._issues: dict[str, _Issue] = {}
        self._issue_list: list[Any] | None = None
        self.last_slug: str | None = None  # of the last batch handled

    def _issue(self, slug: str) -> _Issue:
        known = self._issues.get(slug)
        if known is not None:
            return known
        if self._issue_list is None or all(i.slug != slug for i in self._issue_list):
            # Loaded again for a slug not seen yet: a long-running worker must find issues written since it started.
            self._issue_list = load_issues(self.config)
        try:
            issue = find_issue(self._issue_list, slug)
        except PublisherError as exc:
            raise PoisonBatch(f"a queued batch names the issue {slug}, which this worker does not have: {exc}",
                              hint="deploy the workers with the same content/ as the sender") from None
        if issue.draft or not issue.send:
            raise PoisonBatch(f"{slug} is {'a draft' if issue.draft else 'marked send: false'} now; its queued "
                              "batches are left for the dead-letter queue",
                              hint="undo that and run `publisher send --requeue`, or leave the rest unsent")
        if not self.ledger.started(slug):
            raise PoisonBatch(f"a queued batch of {slug} has no send in the ledger {self.ledger.table}",
                              hint="queue batches with `publisher send --workers sqs`, not by hand")
        rendered = render_email(self.config, issue, markdown.to_html(issue.body),
                                pages={str(i.path): i.url_path for i in self._issue_list})
        factory = MessageFactory(rendered, sender_of(self.config), self.secret, date=clock_mod.now())
        made = _Issue(rendered, factory, self.transport_factory(slug), self.ledger.forgotten(slug))
        if self.limiter is None:
            rate = self.config.email.rate or made.transport.default_rate()
            self.limiter = SharedRateLimiter(self.ledger, rate, sleep=self.sleep) if rate and self.shared_rate \
                else RateLimiter(rate, self.clock, self.sleep)
        self._issues[slug] = made
        return made

    def handle(self, body: str) -> bool:
        """Sends the pending rows of one queued message; True when every row of it is settled (delete the
        message), False when some are left pending (the transport was down, or the worker is stopping)."""
        slug, emails = parse_body(body)
        self.last_slug = slug
        issue = self._issue(slug)
        rows = [row for row in self.ledger.rows_of(slug, emails) if row[3] == "pending"]
        if not rows:
            return True  # a copy of a batch another worker sent, or rows resolved meanwhile
        batch = self.ledger.view(slug, rows, forgotten=issue.forgotten)
        report = SendReport(issue=slug)
        loop = SendLoop(self.config, issue.rendered, issue.transport, issue.factory, batch,  # type: ignore[arg-type]
                        join_status=True, clock=self.clock, sleep=self.sleep, stop=self.stop, limiter=self.limiter)
        try:
            loop.run(report, None)
        finally:
            self.ledger.drop([row[0] for row in rows])
        mine = self.report
        mine.sent += report.sent
        mine.failed += report.failed
        mine.uncertain += report.uncertain
        mine.skipped += sum(1 for row in batch.rows if row[3] != "active")  # SendLoop skips them unsent
        if report.stopped is not None:
            log.warning("%s: a batch stopped: %s", slug, report.stopped)
            if "unavailable" not in report.stopped and "on request" not in report.stopped:
                mine.stopped = report.stopped
            return False
        return True

    def settle(self, slug: str, queue: str, *, held: int = 0, client: Any = None) -> bool:
        """Marks the send of `slug` finished, with its count of sent messages, once the queue holds no batch
        (beyond the `held` this worker still has) and no row is pending or being sent; True if it did. Called
        after a batch, so the last worker to finish one closes the send: about one read of the rows per send."""
        if in_flight(queue, client) > held:
            return False
        counts = self.ledger.counts(slug)
        if counts.get("pending") or counts.get("sending"):
            return False
        self.ledger.finish(slug, sent=counts.get("sent", 0))
        return True

    def close(self) -> None:
        for made in self._issues.values():
            made.transport.close()
        self.ledger.close()

    # ---- polling a queue: publisher worker ----

    def run(self, queue: str, *, idle_exit: float | None = None, max_messages: int | None = None,
            wait_seconds: int = 10, client: Any = None) -> WorkerReport:
        """Takes messages from `queue` one at a time until stopped (SIGTERM, a fatal transport error),
        `max_messages` were taken, or none came for `idle_exit` seconds."""
        sqs = client or sqs_client(queue)
        started = self.clock()
        visibility, redrive = _queue_settings(sqs, queue)
        if not redrive:
            log.warning("the queue %s has no dead-letter queue (RedrivePolicy): a batch that fails every time is "
                        "tried until the queue's retention period ends", queue)
        idle_since = self.clock()
        wait = wait_seconds if idle_exit is None else min(wait_seconds, math.ceil(idle_exit))
        try:
            while not self.stop.is_set() and self.report.stopped is None:
                if max_messages is not None and self.report.messages >= max_messages:
                    break
                try:
                    answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=wait)
                except Exception as exc:
                    raise _sqs_error(exc, queue, "ReceiveMessage") from None
                messages = answer.get("Messages", [])
                if not messages:
                    if idle_exit is not None and self.clock() - idle_since >= idle_exit:
                        break
                    if not wait:  # short polling: SQS answered at once
                        self.sleep(SHORT_POLL_PAUSE)
                    continue
                self._one(sqs, queue, messages[0], visibility)
                idle_since = self.clock()
        finally:
            self.report.seconds = self.clock() - started
        return self.report

    def _one(self, sqs: Any, queue: str, message: dict[str, Any], visibility: int) -> None:
        self.report.messages += 1
        receipt = message["ReceiptHandle"]
        with Heartbeat(sqs, queue, receipt, visibility):
            try:
                settled = self.handle(message.get("Body", ""))
            except PoisonBatch as exc:
                self.report.poison += 1
                log.error("a poison batch, left for the dead-letter queue: %s", exc)
                _return_after(sqs, queue, receipt, 0)  # back at once: it reaches maxReceiveCount sooner
                return
            except PublisherError as exc:  # DynamoDB or the content unreachable: this batch waits, the worker goes on
                self.report.returned += 1
                log.error("a batch is left for another try: %s", exc)
                _return_after(sqs, queue, receipt, min(visibility, 30))
                return
        if settled:
            try:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=receipt)
            except Exception as exc:  # harmless: the copy that comes back finds its rows settled
                log.warning("could not delete a sent batch from %s (it comes back and is skipped): %s", queue, exc)
            self.report.done += 1
            if self.last_slug is not None:
                try:
                    self.settle(self.last_slug, queue, client=sqs)
                except PublisherError as exc:  # only the finish time: the next batch or send records it
                    log.warning("could not mark the send of %s finished: %s", self.last_slug, exc)
        else:
            self.report.returned += 1
            # Stopping: another worker may take it at once. Otherwise (the transport down) a pause first.
            _return_after(sqs, queue, receipt, 0 if self.stop.is_set() else min(visibility, 30))


def _queue_settings(sqs: Any, queue: str) -> tuple[int, bool]:
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout", "RedrivePolicy"])
    except Exception as exc:
        raise _sqs_error(exc, queue, "GetQueueAttributes") from None
    values = attributes.get("Attributes", {})
    return int(values.get("VisibilityTimeout", 30)), bool(values.get("RedrivePolicy"))


def _return_after(sqs: Any, queue: str, receipt: str, seconds: int) -> None:
    try:
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=receipt, VisibilityTimeout=seconds)
    except Exception as exc:  # the message comes back when its visibility timeout ends anyway
        log.warning("could not hand a batch back to %s early: %s", queue, exc)


class Heartbeat:
    """Keeps a message invisible while a worker sends it: the visibility timeout is renewed every third of it, so
    a long batch (a slow rate, retries) is not handed to a second worker, while a killed worker's batch comes back
    within one timeout."""

    def __init__(self, sqs: Any, queue: str, receipt: str, visibility: int) -> None:
        self.sqs, self.queue, self.receipt, self.visibility = sqs, queue, receipt, max(1, visibility)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def _beat(self) -> None:
        while not clock_mod.nap(self.done, self.visibility / 3, step=0.2):
            try:
                self.sqs.change_message_visibility(QueueUrl=self.queue, ReceiptHandle=self.receipt,
                                                   VisibilityTimeout=self.visibility)
            except Exception as exc:  # the batch may reach a second worker; the ledger's claims keep that safe
                log.warning("could not extend a batch's visibility in %s: %s", self.queue, exc)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def create_queues(name: str, *, visibility: int = 1800, max_receive: int = 5, client: Any = None) -> tuple[str, str]:
    """A send queue and its dead-letter queue as CloudFormation makes them (SendQueue, SendDeadLetterQueue), for
    local setups and tests: (queue URL, dead-letter queue URL). Idempotent, as SQS's CreateQueue is."""
    import boto3

    sqs = client or boto3.client("sqs")
    try:
        dead = sqs.create_queue(QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(QueueName=name, Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(max_receive)})})
    except Exception as exc:
        raise _sqs_error(exc, name, "CreateQueue") from None
    return url["QueueUrl"], dead


def in_flight(queue: str, client: Any = None) -> int:
    """About how many messages the queue holds, waiting or taken by a worker (SQS's approximate counts)."""
    sqs = client or sqs_client(queue)
    try:
        values = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    except Exception as exc:
        raise _sqs_error(exc, queue, "GetQueueAttributes") from None
    return sum(int(values.get(name, 0)) for name in ("ApproximateNumberOfMessages",
                                                     "ApproximateNumberOfMessagesNotVisible"))


def dead_letters(sqs: Any, queue: str) -> tuple[str, int] | None:
    """(the dead-letter queue's URL, how many messages it holds about now), or None without one."""
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["RedrivePolicy"])["Attributes"]
        arn = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
        _, _, _, _, account, name = arn.split(":", 5)
        url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        count = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return url, int(count["Attributes"]["ApproximateNumberOfMessages"])
    except (KeyError, ValueError):
        return None
    except Exception as exc:
        raise _sqs_error(exc, queue, "GetQueueAttributes") from None

