"""The publish state in DynamoDB (`[subscribers] dynamodb_table`), against a real moto server: `publish --due` keeps
what it deployed and emailed in the table (no subscribers.db, so a Lambda or a CI runner needs no file between
runs), publishers on two machines take turns through a lease, and `publisher list` reads the table."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import boto3
import pytest
from test_ledger_dynamodb import SECRET, configure, subscribe
from waiting import wait_for

from publisher.scheduler import Busy, issue_statuses, publish
from publisher.stores.dynamodb_state import LOCK_KEY, DynamoDBState, publish_lease

SHANGHAI = ZoneInfo("Asia/Shanghai")
WHEN = datetime(2026, 12, 1, 8, 5, tzinfo=SHANGHAI)


@pytest.fixture
def table(newsletter, aws, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PUBLISHER_NOW", WHEN.isoformat())
    config = configure(newsletter)
    newsletter.issue("2026-12-01-next.md", "title: 下一期\ndate: 2026-12-01 08:00\n")
    subscribe(config, 12)
    return config


def item(config, key):  # type: ignore[no-untyped-def]
    return boto3.client("dynamodb").get_item(TableName=config.subscribers.dynamodb_table, Key=key).get("Item")


def test_publish_keeps_its_state_in_the_table_and_never_twice(table, newsletter):
    config = table
    first = publish(config, now=WHEN, due=True, secret=SECRET)
    assert first.sent == {"next": 12} and "next" in first.newly_public and not first.failures
    assert not (newsletter.root / "subscribers.db").exists()  # nothing in SQLite
    state = DynamoDBState(config)
    assert state.issue("next") == ("sent", (WHEN).isoformat())
    assert state.get("deployed_fingerprint")
    again = publish(config, now=WHEN + timedelta(minutes=5), due=True, secret=SECRET)
    assert again.deploy_skipped and again.sent == {} and again.newly_public == []
    # Another machine (a fresh folder with the same content, no local state at all) agrees: nothing to do.
    import shutil

    other = newsletter.root.parent / "runner-2"
    shutil.copytree(newsletter.root, other, ignore=shutil.ignore_patterns("public", "dist", "outbox",
                                                                          ".publisher-cache"))
    from publisher.config import load_config

    elsewhere = publish(load_config(other), now=WHEN + timedelta(minutes=10), due=True, secret=SECRET)
    assert elsewhere.sent == {} and elsewhere.newly_public == [] and not (other / "outbox").exists()
    statuses = {s.slug: s for s in issue_statuses(config, now=WHEN)}
    assert (statuses["next"].status, statuses["next"].sent) == ("sent", 12)
    send = item(config, {"PK": {"S": "ISSUE#next"}, "SK": {"S": "SEND"}})
    assert send["sent"]["N"] == "12"  # the finished send's count: `list` reads it, not the rows
    state.close()


def test_a_held_lease_makes_another_publish_busy_and_an_expired_one_is_taken_over(table):
    config = table
    with publish_lease(config), pytest.raises(Busy) as busy:
        publish(config, now=WHEN, due=True, secret=SECRET)
    assert config.subscribers.dynamodb_table in str(busy.value)
    assert "runs out within" in (busy.value.problems[0].hint or "")
    assert item(config, LOCK_KEY) is None  # released at the end of the block
    # A publisher that crashed left its lease: once it has run out, the next publish takes it.
    boto3.client("dynamodb").put_item(TableName=config.subscribers.dynamodb_table, Item={
        **LOCK_KEY, "owner": {"S": "crashed"}, "host": {"S": "old-host"}, "pid": {"N": "1"},
        "since": {"S": "2026-12-01T00:00:00+00:00"}, "expires": {"N": str(time.time() - 1)}})
    report = publish(config, now=WHEN, due=True, secret=SECRET)
    assert report.sent == {"next": 12}
    assert item(config, LOCK_KEY) is None


def test_two_publishers_at_once_never_both_send(table, newsletter):
    config = table
    outcomes: list[object] = []

    def run() -> None:
        try:
            outcomes.append(publish(config, now=WHEN, due=True, secret=SECRET).sent)
        except Busy as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = [o for o in outcomes if isinstance(o, dict)]
    assert sum(o.get("next", 0) for o in sent) == 12  # type: ignore[union-attr]
    assert len(list((newsletter.root / "outbox" / "next").glob("*.eml"))) == 12


def test_the_lease_is_renewed_while_held(table):
    config = table
    start = time.time()
    with publish_lease(config, seconds=0.9):
        first = float(item(config, LOCK_KEY)["expires"]["N"])
        # Renewed every 0.3 s on the real clock (the lease's clock is the wall clock machines share).
        wait_for(lambda: float(item(config, LOCK_KEY)["expires"]["N"]) > first, timeout=10, what="a renewal")
        assert float(item(config, LOCK_KEY)["expires"]["N"]) > start + 0.9
    assert item(config, LOCK_KEY) is None
