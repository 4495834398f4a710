"""The welcome email with the DynamoDB store (`[subscribers] dynamodb_table`), outside Lambda: the rows are the
DynamoDB ledger's (issue `_welcome`), against a real moto server; `subscribers import --welcome`, the Python API,
and concurrent activations and senders (conftest.atomic_moto: one request at a time, as DynamoDB applies a
conditional write) never sending anyone two welcomes."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import boto3
import pytest
from conftest import NOW, atomic_moto
from test_welcome import SUBJECT, WELCOME, welcomes

from publisher import privacy, welcome
from publisher.stores.dynamodb import DynamoDBStore, create_table
from publisher.stores.dynamodb_ledger import DynamoDBLedger, row_key, sends_key
from publisher.subscribers import Subscriber

SECRET = b"welcome-dynamodb-secret-" * 2


def configure(newsletter, *, with_welcome: bool = True):  # type: ignore[no-untyped-def]
    table = f"news-{uuid.uuid4().hex[:12]}"
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + '[email]\nfrom_address = "news@news.example.com"\n'
                      + f'[subscribers]\ndynamodb_table = "{table}"\n')
    if with_welcome:
        (newsletter.content / "_welcome.md").write_text(WELCOME, encoding="utf-8")
    config = newsletter.load_config()
    assert create_table(boto3.client("dynamodb"), table) is True
    return config


@pytest.fixture
def ddb(newsletter, aws, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PUBLISHER_NOW", NOW.isoformat())
    return configure(newsletter)


def row(config, email: str) -> dict | None:  # type: ignore[no-untyped-def]
    return boto3.client("dynamodb").get_item(TableName=config.subscribers.dynamodb_table,
                                             Key=row_key(welcome.SLUG, email), ConsistentRead=True).get("Item")


def recipients(newsletter) -> Counter:  # type: ignore[no-untyped-def]
    return Counter(str(m["To"]).rpartition("<")[2].rstrip(">") for m in welcomes(newsletter))


def test_activation_queues_one_welcome_in_the_table_and_sends_it_once(newsletter, ddb):
    store = DynamoDBStore(ddb)
    store.upsert_many([Subscriber("new@example.com", "张三", status="unconfirmed"),
                       Subscriber("old@example.com", status="active")])
    assert not welcome.activate(ddb, store, "nobody@example.com") and row(ddb, "nobody@example.com") is None
    assert not welcome.activate(ddb, store, "old@example.com")  # active already: no welcome for a stray click
    assert row(ddb, "old@example.com") is None and not welcome.requeue(ddb, store, "old@example.com")

    assert welcome.activate(ddb, store, "new@example.com")
    assert store.get("new@example.com").status == "active"  # the status and the row, one transaction
    assert row(ddb, "new@example.com")["state"]["S"] == "pending"
    assert not (newsletter.root / "subscribers.db").exists()  # nothing in SQLite
    assert not welcome.activate(ddb, store, "new@example.com") and not welcome.requeue(ddb, store, "new@example.com")

    report = welcome.send_pending(ddb, now=NOW, secret=SECRET)
    assert report.sent == 1 and report.remaining == 0
    (message,) = welcomes(newsletter)
    assert message["Subject"] == SUBJECT and message["To"] == "张三 <new@example.com>"
    assert message["Message-ID"].startswith("<_welcome.")
    assert row(ddb, "new@example.com")["state"]["S"] == "sent"
    assert welcome.send_pending(ddb, now=NOW, secret=SECRET).sent == 0 and len(welcomes(newsletter)) == 1

    # Unsubscribed and back again: a welcome is once per address, ever.
    store.set_status("new@example.com", "unsubscribed")
    store.set_status("new@example.com", "unconfirmed")
    assert welcome.activate(ddb, store, "new@example.com")
    assert row(ddb, "new@example.com")["state"]["S"] == "sent"
    assert welcome.send_pending(ddb, now=NOW, secret=SECRET).sent == 0 and len(welcomes(newsletter)) == 1
    store.close()


def test_without_the_welcome_file_activation_queues_nothing(newsletter, aws, monkeypatch):
    monkeypatch.setenv("PUBLISHER_NOW", NOW.isoformat())
    config = configure(newsletter, with_welcome=False)
    store = DynamoDBStore(config)
    store.upsert(Subscriber("early@example.com", status="unconfirmed"))
    assert welcome.activate(config, store, "early@example.com") and store.get("early@example.com").status == "active"
    assert row(config, "early@example.com") is None
    assert welcome.send_pending(config, now=NOW, secret=SECRET).sent == 0
    store.close()


def test_subscribers_import_welcome_on_dynamodb(newsletter, ddb, run_cli, tmp_path, monkeypatch):
    first = tmp_path / "first.csv"
    first.write_text("email,name\nold@example.com,老读者\n", encoding="utf-8")
    plain = run_cli("-C", str(newsletter.root), "subscribers", "import", str(first))
    assert plain.exit_code == 0, plain.output
    assert welcomes(newsletter) == [] and row(ddb, "old@example.com") is None
    second = tmp_path / "second.csv"
    second.write_text("email,name,status\nold@example.com,,active\nnew@example.com,新读者,active\n"
                      "wait@example.com,,unconfirmed\n", encoding="utf-8")
    monkeypatch.setenv("PUBLISHER_SECRET", "welcome-dynamodb-cli-secret")  # run_cli drops it: set after
    result = run_cli("-C", str(newsletter.root), "subscribers", "import", str(second), "--welcome")
    assert result.exit_code == 0, result.output
    assert "welcome: 1 message sent" in result.output
    assert [m["To"] for m in welcomes(newsletter)] == ["新读者 <new@example.com>"]
    assert row(ddb, "new@example.com")["state"]["S"] == "sent" and row(ddb, "wait@example.com") is None
    again = run_cli("-C", str(newsletter.root), "subscribers", "import", str(second), "--welcome")
    assert again.exit_code == 0 and "welcome: 0 messages sent" in again.output and len(welcomes(newsletter)) == 1


def test_forgetting_an_address_reaches_its_welcome_row(newsletter, ddb):
    store = DynamoDBStore(ddb)
    store.upsert(Subscriber("gone@example.com", "王五", status="unconfirmed"))
    assert welcome.activate(ddb, store, "gone@example.com")
    # The send index lists the welcome, so that forgetting needs no scan to find its rows.
    assert boto3.client("dynamodb").get_item(TableName=ddb.subscribers.dynamodb_table,
                                             Key=sends_key(welcome.SLUG)).get("Item")
    privacy.forget(ddb, "gone@example.com", store=store, secret=SECRET)
    assert row(ddb, "gone@example.com") is None
    assert DynamoDBLedger(ddb).counts(welcome.SLUG) == {"skipped": 1}  # kept, anonymous: never sent now
    assert welcome.send_pending(ddb, now=NOW, secret=SECRET).sent == 0 and welcomes(newsletter) == []
    store.close()


def test_concurrent_activations_and_senders_never_send_two_welcomes(newsletter, aws, monkeypatch):
    monkeypatch.setenv("PUBLISHER_NOW", NOW.isoformat())
    with atomic_moto(monkeypatch):
        config = configure(newsletter)
        people = [f"reader{n}@example.com" for n in range(24)]
        setup = DynamoDBStore(config)
        setup.upsert_many(Subscriber(p, status="unconfirmed") for p in people)
        setup.close()

        # Every address confirmed by two requests at once (two tabs, two Lambda instances), each with its own
        # client: one of them activates, and one row is written.
        changed: list[bool] = []
        lock = threading.Lock()

        def confirm_all() -> None:
            store = DynamoDBStore(config)
            try:
                for person in people:
                    done = welcome.activate(config, store, person)
                    with lock:
                        changed.append(done)
            finally:
                store.close()

        threads = [threading.Thread(target=confirm_all) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert changed.count(True) == len(people)
        assert DynamoDBLedger(config).counts(welcome.SLUG) == {"pending": len(people)}

        # Two senders at once (serve's worker and `publish --due`, say): each row claimed by one of them.
        reports = []

        def send() -> None:
            reports.append(welcome.send_pending(config, now=NOW, secret=SECRET))

        senders = [threading.Thread(target=send) for _ in range(2)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
    assert sum(r.sent for r in reports) == len(people)
    assert recipients(newsletter) == Counter(people)  # everyone once, no one twice


def test_the_welcome_of_one_confirmation_reads_its_row_not_every_welcome_ever_sent(newsletter, ddb, monkeypatch):
    """After a confirmation the endpoint sends that address's welcome alone (`only`): one BatchGetItem for its
    row, none of the Queries that would read the `_welcome` partition, which holds everyone ever welcomed."""
    from publisher.stores import dynamodb

    store = DynamoDBStore(ddb)
    store.upsert_many(Subscriber(f"early{n}@example.com", status="unconfirmed") for n in range(40))
    for n in range(40):
        welcome.activate(ddb, store, f"early{n}@example.com")
    assert welcome.send_pending(ddb, secret=SECRET).sent == 40  # the sweep: 40 rows now `sent`
    store.upsert(Subscriber("late@example.com", status="unconfirmed"))
    welcome.activate(ddb, store, "late@example.com")
    queries: list[str] = []
    make = dynamodb.make_client

    def counting(config=None):  # type: ignore[no-untyped-def]
        client = make(config)
        client.meta.events.register("before-parameter-build.dynamodb.Query",
                                    lambda params, **_: queries.append(params["KeyConditionExpression"]))
        return client

    monkeypatch.setattr(dynamodb, "make_client", counting)
    report = welcome.send_pending(ddb, secret=SECRET, only=["late@example.com"])
    assert report.sent == 1 and recipients(newsletter)["late@example.com"] == 1
    assert all(":f" in q for q in queries), queries  # only the narrow range of forgotten rows, never the partition
    assert row(ddb, "late@example.com")["state"]["S"] == "sent"
    assert welcome.send_pending(ddb, secret=SECRET, only=["late@example.com"]).sent == 0  # never twice
