"""Sending through SQS workers (`send --workers sqs`, `publisher worker`, deploy/lambda/worker.py), against a real
moto server over HTTP (DynamoDB and SQS): every active subscriber exactly once, with SIGKILLed workers, duplicated
batches and two senders; poison batches end in the dead-letter queue; one rate shared through DynamoDB.

The crash test here runs 1,000 recipients; benchmarks/fanout.py runs the same with 100,000 and prints the counts."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import boto3
import pytest
from conftest import NOW
from test_ledger_dynamodb import (  # noqa: F401 (requests and atomic_aws are fixtures)
    SECRET,
    active_addresses,
    atomic_aws,
    configure,
    items_in,
    ledger_counts,
    outbox_recipients,
    requests,
    subscribe,
)
from waiting import wait_for

from publisher.config import load_config
from publisher.errors import PublisherError
from publisher.fanout import (
    BATCH,
    PoisonBatch,
    SharedRateLimiter,
    Worker,
    body_of,
    create_queues,
    in_flight,
    parse_body,
)
from publisher.sending import send_issue
from publisher.stores.dynamodb_ledger import DynamoDBLedger


def make_queue(*, visibility: int = 30, max_receive: int = 5) -> tuple[str, str]:
    """A send queue with a dead-letter queue, as CloudFormation makes them: (queue URL, DLQ URL)."""
    return create_queues(f"send-{uuid.uuid4().hex[:10]}", visibility=visibility, max_receive=max_receive)


def queued_bodies(url: str) -> list[str]:
    """Every message in a queue (received, so invisible for a moment: only for queues nobody else reads)."""
    sqs = boto3.client("sqs")
    bodies: list[str] = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get("Messages", [])
        if not got:
            return bodies
        bodies += [m["Body"] for m in got]


def depth(url: str) -> int:
    return in_flight(url)


@pytest.fixture
def fan(newsletter, aws, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PUBLISHER_NOW", NOW.isoformat())
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET.decode())
    config = configure(newsletter, extra_config='fanout = "sqs"\n')
    url, dlq = make_queue()
    return config, url, dlq


def run_worker(config, url: str, **options) -> object:  # type: ignore[no-untyped-def]
    worker = Worker(config, secret=SECRET)
    try:
        # Short polls: moto's long poll is a timed wait, which never returns under libfaketime (.ci/run).
        return worker.run(url, idle_exit=options.pop("idle_exit", 1.0), wait_seconds=0, **options)
    finally:
        worker.close()


def test_queued_batches_reach_each_active_subscriber_once_with_two_writes_each(fan, newsletter, requests):  # noqa: F811
    config, url, _ = fan
    subscribe(config, 250)
    report = send_issue(config, "daily", now=NOW, secret=SECRET, queue=url)
    assert (report.queue, report.queued, report.batches, report.audience, report.remaining) == (url, 250, 3, 250, 250)
    assert report.sent == 0 and not (newsletter.root / "outbox" / "daily").exists()  # nothing sent by the sender
    requests.calls.clear()
    done = run_worker(config, url)
    assert (done.messages, done.done, done.sent, done.poison) == (3, 3, 250, 0)  # type: ignore[attr-defined]
    got = outbox_recipients(newsletter.root / "outbox" / "daily")
    assert set(got) == active_addresses(250) and set(got.values()) == {1}
    assert ledger_counts(config) == {"sent": 250}
    assert requests.writes("TO#") == 2 * 250  # the claim and the record, nothing else per recipient
    assert depth(url) == 0
    again = send_issue(config, "daily", now=NOW, secret=SECRET, queue=url)  # queued and sent: nothing more
    assert (again.queued, again.already_sent, again.remaining) == (0, 250, 0)
    assert depth(url) == 0


def test_batches_hold_100_addresses_in_key_order_and_queueing_resumes_where_it_stopped(fan):
    config, url, _ = fan
    subscribe(config, 230)
    ledger = DynamoDBLedger(config)
    # A sender that died after its first SendMessageBatch call: the send item records the last address queued.
    send_issue(config, "daily", now=NOW, secret=SECRET, queue=url)
    first = [json.loads(b) for b in queued_bodies(url)]
    assert [len(b["to"]) for b in sorted(first, key=lambda b: b["to"][0])] == [100, 100, 30]
    assert all(b["v"] == 1 and b["issue"] == "daily" for b in first)
    every = [a for b in sorted(first, key=lambda b: b["to"][0]) for a in b["to"]]
    assert every == sorted(every) and set(every) == active_addresses(230)
    ledger.set_queue_cursor("daily", every[99], done=False)
    resumed = send_issue(config, "daily", now=NOW, secret=SECRET, queue=url)
    assert (resumed.queued, resumed.batches) == (130, 2)
    again = [json.loads(b) for b in queued_bodies(url)]
    assert sorted(a for b in again for a in b["to"]) == every[100:]
    requeued = send_issue(config, "daily", now=NOW, secret=SECRET, queue=url, requeue=True)
    assert (requeued.queued, requeued.batches) == (230, 3)
    ledger.close()


def test_a_copy_of_a_batch_and_an_unsubscribe_since_queueing_send_nothing_twice(fan, newsletter):
    config, url, _ = fan
    subscribe(config, 150)
    send_issue(config, "daily", now=NOW, secret=SECRET, queue=url)
    bodies = queued_bodies(url)
    sqs = boto3.client("sqs")
    for body in bodies + bodies:  # SQS delivers at least once: every batch twice
        sqs.send_message(QueueUrl=url, MessageBody=body)
    from publisher.stores.dynamodb import DynamoDBStore

    DynamoDBStore(config).set_status("reader3@example.com", "unsubscribed")
    done = run_worker(config, url, idle_exit=3.0)
    got = outbox_recipients(newsletter.root / "outbox" / "daily")
    assert set(got) == active_addresses(150) - {"reader3@example.com"} and set(got.values()) == {1}
    assert ledger_counts(config) == {"sent": 149, "skipped": 1}
    assert done.sent == 149 and done.skipped == 1  # type: ignore[attr-defined]


def test_poison_batches_land_in_the_dead_letter_queue_and_the_rest_is_sent(newsletter, aws, monkeypatch):
    monkeypatch.setenv("PUBLISHER_NOW", NOW.isoformat())
    config = configure(newsletter, extra_config='fanout = "sqs"\n')
    url, dlq = make_queue(visibility=1, max_receive=2)
    subscribe(config, 120)
    send_issue(config, "daily", now=NOW, secret=SECRET, queue=url)
    sqs = boto3.client("sqs")
    poison = ["not json", json.dumps({"v": 2, "issue": "daily", "to": ["a@example.com"]}),
              body_of("no-such-issue", ["reader1@example.com"]),
              json.dumps({"v": 1, "issue": "daily", "to": ["x@example.com"] * (BATCH + 1)})]
    for body in poison:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    done = run_worker(config, url, idle_exit=4.0)
    assert sorted(queued_bodies(dlq)) == sorted(poison)
    assert done.poison >= 2 * len(poison) - len(poison)  # type: ignore[attr-defined]
    got = outbox_recipients(newsletter.root / "outbox" / "daily")
    assert set(got) == active_addresses(120) and set(got.values()) == {1}
    assert depth(url) == 0


@pytest.mark.parametrize("body", ["", "[]", '{"v": 1, "issue": "daily"}', '{"v": 1, "issue": "", "to": ["a@b.c"]}',
                                  '{"v": 1, "issue": "daily", "to": []}', '{"v": 1, "issue": "daily", "to": [3]}',
                                  '{"v": 1, "issue": "daily\\n", "to": ["a@b.c"]}',
                                  '{"v": 1, "issue": "daily", "to": ["a@b.c"], "x": 1}'])
def test_a_body_that_is_not_one_of_ours_is_poison(body):
    with pytest.raises(PoisonBatch):
        parse_body(body)


def test_parse_body_reads_what_the_sender_writes():
    addresses = [f"读者{n}@example.com" for n in range(BATCH)]
    assert parse_body(body_of("2026-11-20-daily", addresses)) == ("2026-11-20-daily", addresses)


def test_a_draft_now_is_poison_for_its_batches(fan, newsletter):
    config, url, dlq = fan
    subscribe(config, 5)
    send_issue(config, "daily", now=NOW, secret=SECRET, queue=url)
    newsletter.issue("2026-11-20-daily.md", "title: AI 日报：第一期\ndate: 2026-11-20\ndraft: true\n", "正文。\n")
    worker = Worker(load_config(newsletter.root), secret=SECRET)
    with pytest.raises(PoisonBatch, match="draft"):
        worker.handle(queued_bodies(url)[0])
    worker.close()
    assert ledger_counts(config) == {"pending": 5}


def test_fanout_needs_dynamodb_and_a_queue_and_takes_no_limit(newsletter, aws, monkeypatch):
    monkeypatch.setenv("PUBLISHER_NOW", NOW.isoformat())
    original = newsletter.root.joinpath("publisher.toml").read_text()
    newsletter.config(original + '[email]\nfanout = "sqs"\n')
    with pytest.raises(PublisherError) as no_table:
        newsletter.load_config()
    assert no_table.value.problems[0].field == "email.fanout"
    assert "dynamodb_table" in (no_table.value.problems[0].hint or "")
    newsletter.config(original)
    config = configure(newsletter)
    with pytest.raises(PublisherError) as no_queue:
        send_issue(config, "daily", now=NOW, secret=SECRET, fanout="sqs", queue="https://sqs.example.com/q")
    assert no_queue.value.problems[0].field == "--queue"
    url, _ = make_queue()
    with pytest.raises(PublisherError) as limited:
        send_issue(config, "daily", now=NOW, secret=SECRET, fanout="sqs", queue=url, limit=5)
    assert limited.value.problems[0].field == "--limit"


def test_a_missing_queue_url_names_the_setting(fan, newsletter):
    config, _, _ = fan
    with pytest.raises(PublisherError) as missing:
        send_issue(config, "daily", now=NOW, secret=SECRET)
    assert missing.value.problems[0].field == "email.queue_url"
    assert "SendQueueUrl" in (missing.value.problems[0].hint or "")


def test_rows_being_sent_while_workers_hold_batches_are_not_called_uncertain(fan, newsletter):
    config, url, _ = fan
    subscribe(config, 10)
    send_issue(config, "daily", now=NOW, secret=SECRET, queue=url)
    ledger = DynamoDBLedger(config)
    rows = ledger.rows_of("daily", ["reader1@example.com"])
    assert ledger.claim(rows[0][0])  # a worker is sending it right now; its batch is in the queue
    report = send_issue(config, "daily", now=NOW, secret=SECRET, queue=url)
    assert report.queued == 0 and report.remaining == 9
    with pytest.raises(PublisherError, match="right now"):
        send_issue(config, "daily", now=NOW, secret=SECRET, queue=url, resend_uncertain=True)
    queued_bodies(url)  # the queue drained (its messages invisible): the row is uncertain now
    boto3.client("sqs").purge_queue(QueueUrl=url)
    with pytest.raises(PublisherError, match="may or may not have gone out"):
        send_issue(config, "daily", now=NOW, secret=SECRET, queue=url)
    ledger.close()


def test_two_senders_and_two_workers_at_once_send_every_row_once(atomic_aws, newsletter, monkeypatch):  # noqa: F811
    config = atomic_aws
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET.decode())
    url, _ = make_queue()
    subscribe(config, 300)
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            send_issue(config, "daily", now=NOW, secret=SECRET, queue=url, fanout="sqs")
        except BaseException as exc:  # noqa: BLE001 (reported by the assertion below)
            errors.append(exc)

    senders = [threading.Thread(target=sender) for _ in range(2)]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    assert not errors
    reports: list[object] = []
    workers = [threading.Thread(target=lambda: reports.append(run_worker(config, url, idle_exit=2.0)))
               for _ in range(2)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    got = outbox_recipients(newsletter.root / "outbox" / "daily")
    assert set(got) == active_addresses(300) and set(got.values()) == {1}
    assert ledger_counts(config) == {"sent": 300}
    assert sum(r.sent for r in reports) == 300  # type: ignore[attr-defined]


def test_the_lambda_worker_reports_only_the_failed_records(fan, newsletter, monkeypatch):
    config, url, _ = fan
    subscribe(config, 150)
    send_issue(config, "daily", now=NOW, secret=SECRET, queue=url)
    monkeypatch.setenv("PUBLISHER_ROOT", str(newsletter.root))
    spec = importlib.util.spec_from_file_location("worker_lambda", Path("deploy/lambda/worker.py").resolve())
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    records = [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                "eventSource": "aws:sqs", "attributes": {"ApproximateReceiveCount": "1"}} for m in messages]
    records.append({"messageId": "poison-1", "receiptHandle": "x", "body": "{}", "eventSource": "aws:sqs"})
    answer = module.handler({"Records": records}, None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "poison-1"}]}
    got = outbox_recipients(newsletter.root / "outbox" / "daily")
    assert set(got) == active_addresses(150) and set(got.values()) == {1}
    with pytest.raises(PublisherError, match="SQS events"):
        module.handler({"action": "publish"}, None)


def test_one_rate_is_shared_by_every_worker_through_the_table(fan):
    """Three limiters (three workers) on one bucket item, on a simulated clock: however they interleave, the
    tokens granted by time t never exceed the burst plus rate x t."""
    config, _, _ = fan
    now = [1_000_000.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    ledgers = [DynamoDBLedger(config) for _ in range(3)]
    limiters = [SharedRateLimiter(ledger, 20.0, seconds=lambda: now[0], sleep=sleep) for ledger in ledgers]
    for limiter in limiters:
        limiter.pace.clock = lambda: now[0]  # the local pacing on the same simulated clock
    start = now[0]
    picks = random.Random(7)
    for _ in range(300):
        picks.choice(limiters).wait()
    elapsed = now[0] - start
    assert 20.0 * elapsed + 20.0 + 3 * 5 >= 300  # the burst, and each worker's last chunk in hand
    assert elapsed >= (300 - 20 - 3 * 5) / 20.0
    assert sum(limiter.writes for limiter in limiters) <= 300 / 5 + 3  # a write per chunk of 5, not per message
    for ledger in ledgers:
        ledger.close()


def test_killed_workers_leave_only_uncertain_rows_and_everyone_else_gets_one_copy(atomic_aws, newsletter):  # noqa: F811
    """1,000 recipients through 4 `publisher worker` processes; two of them SIGKILLed at random points, twice (and
    started again). Afterwards: no address has two copies, every active address has one unless its row is
    `sending` (uncertain: killed between the claim and the record), and `send` reports exactly those."""
    config = atomic_aws
    url, dlq = make_queue(visibility=2)
    n = 1000
    subscribe(config, n)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env.update(PUBLISHER_SECRET=SECRET.decode(), PUBLISHER_NOW=NOW.isoformat())
    send = subprocess.run([sys.executable, "-m", "publisher", "-C", str(newsletter.root), "send", "daily",
                           "--workers", "sqs", "--queue", url], env=env, capture_output=True, text=True, timeout=300)
    assert send.returncode == 0, send.stderr
    assert "queued 1000 recipients in 10 batches" in send.stdout
    command = [sys.executable, "-m", "publisher", "-C", str(newsletter.root), "worker", "--queue", url,
               "--exit-when-idle", "4", "--wait-seconds", "0"]

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    workers = [start() for _ in range(4)]
    chance = random.Random(int(os.environ.get("FANOUT_SEED", "21")))
    kills = 0
    for threshold in (chance.randint(50, 350), chance.randint(400, 750)):
        wait_for(lambda t=threshold: ledger_counts(config).get("sent", 0) >= t, timeout=240,
                 what=f"{threshold} rows sent")
        for victim in chance.sample(range(4), 2):
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait()
            kills += 1
            workers[victim] = start()
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    counts = ledger_counts(config)
    uncertain = items_in(config, "sending")
    got = outbox_recipients(newsletter.root / "outbox" / "daily")
    assert max(got.values()) == 1  # nobody got two copies
    assert not list((newsletter.root / "outbox" / "daily").glob("*.2.eml"))
    assert counts.get("pending", 0) == 0 and counts.get("sent", 0) + len(uncertain) == n
    sent = items_in(config, "sent")
    assert set(got) - uncertain == sent  # every row recorded sent has its one copy, and nothing else went out
    assert depth(dlq) == 0
    check = subprocess.run([sys.executable, "-m", "publisher", "-C", str(newsletter.root), "send", "daily",
                            "--workers", "sqs", "--queue", url], env=env, capture_output=True, text=True, timeout=120)
    if uncertain:
        assert f"{len(uncertain)} messages of daily may or may not have gone out" in check.stderr
    else:
        assert check.returncode == 0, check.stderr
    print(f"fan-out crash test: {n} recipients, 4 workers, {kills} SIGKILLs: {len(sent)} sent once, "
          f"{len(uncertain)} uncertain ({len(set(got) & uncertain)} of them did go out), 0 twice")


def test_publish_due_queues_a_due_issue_for_the_workers_once(fan, newsletter, monkeypatch):
    from publisher.scheduler import publish

    _, url, _ = fan
    monkeypatch.setenv("PUBLISHER_EMAIL_QUEUE_URL", url)  # as CloudFormation sets it on the publish function
    config = load_config(newsletter.root)
    subscribe(config, 30)
    newsletter.issue("2026-11-20-daily.md", f"title: AI 日报：第一期\ndate: {NOW.isoformat()}\n", "正文。\n")
    report = publish(config, now=NOW, due=True)
    assert report.sent == {"daily": 30} and not report.failures
    assert [len(json.loads(b)["to"]) for b in queued_bodies(url)] == [30]
    assert not (newsletter.root / "outbox").exists()  # the publisher sent nothing itself
    again = publish(config, now=NOW, due=True)
    assert again.sent == {} and not again.failures


def test_a_running_worker_finds_an_issue_written_after_it_started(fan, newsletter):
    config, url, _ = fan
    subscribe(config, 3)
    send_issue(config, "daily", now=NOW, secret=SECRET, queue=url)
    worker = Worker(config, secret=SECRET)
    assert worker.run(url, idle_exit=1.0, wait_seconds=0).sent == 3  # type: ignore[attr-defined]
    newsletter.issue("2026-11-21-second.md", "title: 第二期\ndate: 2026-11-21\n", "第二期正文。\n")
    send_issue(load_config(newsletter.root), "second", now=NOW, secret=SECRET, queue=url)
    again = worker.run(url, idle_exit=1.0, wait_seconds=0)
    worker.close()
    assert (again.poison, again.sent) == (0, 6)  # type: ignore[attr-defined]  (3 + 3: the report accumulates)
    assert len(list((newsletter.root / "outbox" / "second").glob("*.eml"))) == 3


def test_sigterm_stops_a_worker_between_messages_and_its_batch_goes_to_the_next(fan, newsletter):
    config, url, _ = fan
    toml = newsletter.root / "publisher.toml"
    toml.write_text(toml.read_text().replace('fanout = "sqs"\n', 'fanout = "sqs"\nrate = 20\n'))
    subscribe(config, 100)
    send_issue(config, "daily", now=NOW, secret=SECRET, queue=url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env.update(PUBLISHER_SECRET=SECRET.decode(), PUBLISHER_NOW=NOW.isoformat())
    command = [sys.executable, "-m", "publisher", "-C", str(newsletter.root), "worker", "--queue", url,
               "--exit-when-idle", "2", "--wait-seconds", "0"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: ledger_counts(config).get("sent", 0) >= 10, timeout=60, what="10 sent")
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert "1 batch taken (0 done, 1 handed back" in out
    stopped = ledger_counts(config)
    assert stopped.get("sending", 0) == 0 and 10 <= stopped["sent"] < 100  # nothing left uncertain
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    got = outbox_recipients(newsletter.root / "outbox" / "daily")
    assert set(got) == active_addresses(100) and set(got.values()) == {1}


def test_publisher_report_counts_a_fanout_send_as_a_local_one(fan, newsletter):
    from publisher.report import issue_report
    from publisher.stores.dynamodb import DynamoDBStore

    config, url, _ = fan
    subscribe(config, 130)
    send_issue(config, "daily", now=NOW, secret=SECRET, queue=url)
    queued = issue_report(config, "daily")
    assert (queued.recipients, queued.pending, queued.sent, queued.finished_at) == (130, 130, 0, None)
    DynamoDBStore(config).set_status("reader5@example.com", "unsubscribed")
    run_worker(config, url, idle_exit=2.0)
    done = issue_report(config, "daily")
    assert (done.recipients, done.sent, done.skipped, done.pending, done.uncertain) == (130, 129, 1, 0, 0)
    assert done.finished_at is not None  # the last worker closed the send
    assert ledger_counts(config) == {"sent": 129, "skipped": 1}


def test_a_worker_keeps_no_handle_of_the_rows_it_is_done_with(fan):
    config, url, _ = fan
    subscribe(config, 120)
    send_issue(config, "daily", now=NOW, secret=SECRET, queue=url)
    worker = Worker(config, secret=SECRET)
    report = worker.run(url, idle_exit=1.0, wait_seconds=0)
    assert report.sent == 120  # type: ignore[attr-defined]
    assert worker.ledger._emails == {} and worker.ledger._handles == {}  # memory stays flat over weeks of sends
    worker.close()
