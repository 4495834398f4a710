"""The DynamoDB store against a real moto server over HTTP: the same `Store` contract as SQLite (one set of
assertions run against both), conditional writes under concurrency, paging through the status index, and the
migration from SQLite verified row for row."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import boto3
import pytest
from conftest import atomic_moto

from publisher.errors import PublisherError
from publisher.stores.dynamodb import INDEX, TTL_ATTRIBUTE, DynamoDBStore, create_table, subscriber_item
from publisher.stores.migrate import migrate_to_dynamodb
from publisher.subscribers import STATUSES, SUPPRESSED, TAGS_MAX, SqliteStore, Subscriber, open_store

NOW = "2026-12-01T08:00:00+00:00"
LATER = "2026-12-02T08:00:00+00:00"


def table_config(newsletter, table: str | None = None):  # type: ignore[no-untyped-def]
    name = table or f"news-{uuid.uuid4().hex[:12]}"
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + f'[subscribers]\ndynamodb_table = "{name}"\n')
    return newsletter.load_config()


@pytest.fixture
def ddb_config(newsletter, aws, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PUBLISHER_NOW", NOW)
    config = table_config(newsletter)
    assert create_table(boto3.client("dynamodb"), config.subscribers.dynamodb_table) is True
    return config


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """The same contract, run against each store."""
    monkeypatch.setenv("PUBLISHER_NOW", NOW)
    if request.param == "sqlite":
        s: Any = SqliteStore(tmp_path / "subscribers.db")
    else:
        s = DynamoDBStore(request.getfixturevalue("ddb_config"))
    yield s
    s.close()


def raw_item(config, pk: str, sk: str) -> dict[str, Any] | None:  # type: ignore[no-untyped-def]
    return boto3.client("dynamodb").get_item(TableName=config.subscribers.dynamodb_table,
                                             Key={"PK": {"S": pk}, "SK": {"S": sk}}).get("Item")


# ---- the contract: the same assertions for SqliteStore and DynamoDBStore ----


def test_contract_add_get_update_unchanged(store, monkeypatch):
    assert store.get("a@example.com") is None
    assert store.upsert(Subscriber("A@Example.com", "小明", tags=("ai",))) == "added"
    got = store.get("a@example.com")
    assert got == Subscriber("a@example.com", "小明", "active", ("ai",), NOW, NOW, "")
    monkeypatch.setenv("PUBLISHER_NOW", LATER)
    assert store.upsert(Subscriber("a@example.com", tags=("ml",))) == "updated"
    assert store.get("a@example.com") == Subscriber("a@example.com", "小明", "active", ("ai", "ml"), NOW, LATER)
    assert store.upsert(Subscriber("a@example.com", "小明", tags=("ai",))) == "unchanged"
    assert store.get("a@example.com").changed == LATER
    assert store.upsert(Subscriber("b@example.com", status="unconfirmed")) == "added"
    assert store.upsert(Subscriber("b@example.com")) == "updated"  # confirmed
    assert store.get("b@example.com").status == "active"
    assert "subscribers" in store.description or "DynamoDB table" in store.description


@pytest.mark.parametrize("status", SUPPRESSED)
def test_contract_a_suppressed_address_is_kept_unless_reactivated(store, status):
    store.upsert(Subscriber("a@example.com", "A", status=status))
    assert store.upsert(Subscriber("a@example.com", "A")) == "kept"
    assert store.upsert(Subscriber("a@example.com", "A 2")) == "kept"
    assert (store.get("a@example.com").status, store.get("a@example.com").name) == (status, "A 2")
    assert store.count("active") == 0 and store.count(status) == 1
    assert store.upsert(Subscriber("a@example.com"), reactivate=True) == "updated"
    assert store.get("a@example.com").status == "active"
    assert store.count("active") == 1 and store.count(status) == 0


def test_contract_upsert_many_counts_and_merges_in_order(store):
    people = [Subscriber(f"p{i:03d}@example.com", f"名{i}", ("active", "unsubscribed")[i % 2], (f"t{i % 3}",))
              for i in range(250)]
    assert store.upsert_many(people) == {"added": 250}
    assert store.upsert_many(people, validated=True) == {"unchanged": 250}
    again = [Subscriber(p.email, p.name, "active", ("新",)) for p in people]
    # Every row gains a tag; the unsubscribed half keeps its status (and counts as "kept").
    assert store.upsert_many(again) == {"updated": 125, "kept": 125}
    assert store.get("p001@example.com") == Subscriber("p001@example.com", "名1", "unsubscribed", ("t1", "新"),
                                                       NOW, NOW)


def test_contract_upsert_many_verdicts_for_suppressed_rows(store):
    store.upsert_many([Subscriber("a@example.com", "A", "unsubscribed"), Subscriber("b@example.com", "B")])
    counts = store.upsert_many([Subscriber("a@example.com", "A"), Subscriber("b@example.com", "B"),
                                Subscriber("c@example.com"), Subscriber("c@example.com", "C", tags=("x",))])
    assert counts == {"kept": 1, "unchanged": 1, "added": 1, "updated": 1}
    assert store.get("c@example.com") == Subscriber("c@example.com", "C", "active", ("x",), NOW, NOW)
    assert store.upsert_many([Subscriber("a@example.com")], reactivate=True) == {"updated": 1}


def test_contract_set_status(store, monkeypatch):
    store.upsert(Subscriber("a@example.com"))
    monkeypatch.setenv("PUBLISHER_NOW", LATER)
    assert store.set_status("a@example.com", "bounced") is True
    assert store.set_status("a@example.com", "bounced") is False
    got = store.get("a@example.com")
    assert (got.status, got.created, got.changed) == ("bounced", NOW, LATER)
    assert store.set_status("nobody@example.com", "bounced") is False
    assert store.get("nobody@example.com") is None
    with pytest.raises(ValueError):
        store.set_status("a@example.com", "gone")
    assert [s.email for s in store.iter("bounced")] == ["a@example.com"] and store.count("active") == 0


def test_contract_soft_bounces(store):
    store.upsert(Subscriber("a@example.com", "A"))
    assert store.soft_bounces("a@example.com") == 0
    assert store.add_soft_bounce("a@example.com") == 1
    assert store.add_soft_bounce("a@example.com") == 2
    assert store.get("a@example.com").status == "active"
    assert store.upsert(Subscriber("a@example.com", "B")) == "updated"  # an update keeps the count
    assert store.soft_bounces("a@example.com") == 2
    assert store.add_soft_bounce("nobody@example.com") == 0
    assert store.soft_bounces("nobody@example.com") == 0
    assert store.get("nobody@example.com") is None


def test_contract_forget(store):
    store.upsert(Subscriber("a@example.com"))
    store.upsert(Subscriber("b@example.com"))
    assert store.forget("a@example.com") is True
    assert store.get("a@example.com") is None
    assert store.forget("a@example.com") is False
    assert [s.email for s in store.iter()] == ["b@example.com"]
    assert store.count() == 1


def test_contract_tags_and_pause(store, monkeypatch):
    store.upsert(Subscriber("a@example.com", tags=("ai", "ml")))
    monkeypatch.setenv("PUBLISHER_NOW", LATER)
    assert store.set_tags("a@example.com", ["中文", " ai "]) is True
    assert store.get("a@example.com").tags == ("中文", "ai")
    assert store.set_tags("nobody@example.com", ["x"]) is False
    with pytest.raises(PublisherError, match="control character"):
        store.set_tags("a@example.com", ["bad\r\nBcc: x"])
    assert store.set_paused("a@example.com", "2027-01-01T00:00:00+00:00") is True
    got = store.get("a@example.com")
    assert (got.paused_until, got.changed, got.paused_at(LATER)) == ("2027-01-01T00:00:00+00:00", LATER, True)
    assert store.upsert(Subscriber("a@example.com", "A")) == "updated"
    assert store.get("a@example.com").paused_until == "2027-01-01T00:00:00+00:00"  # an upsert keeps the pause
    assert store.set_paused("a@example.com", "") is True
    assert store.get("a@example.com").paused_until == ""
    assert store.set_paused("nobody@example.com", LATER) is False


def test_contract_change_email_never_widens_and_leaves_a_trail(store):
    store.upsert(Subscriber("old@example.com", "Old", tags=("a",)))
    store.add_soft_bounce("old@example.com")
    store.set_paused("old@example.com", LATER)
    assert store.change_email("nobody@example.com", "x@example.com") is False
    assert store.change_email("old@example.com", "old@example.com") is True
    assert store.change_email("old@example.com", "New@Example.com") is True
    assert store.get("old@example.com") is None
    got = store.get("new@example.com")
    assert (got.name, got.status, got.tags, got.created, got.paused_until) == ("Old", "active", ("a",), NOW, LATER)
    assert store.soft_bounces("new@example.com") == 1
    assert store.moved_to("old@example.com") == "new@example.com"
    assert store.moved_to("new@example.com") is None
    # Onto an address that unsubscribed: the merge keeps the more restrictive status and both tag sets.
    store.upsert(Subscriber("third@example.com", "", "unsubscribed", ("b",)))
    assert store.change_email("new@example.com", "third@example.com") is True
    got = store.get("third@example.com")
    assert (got.name, got.status, got.tags) == ("Old", "unsubscribed", ("a", "b"))
    assert store.count() == 1
    assert store.moved_to("old@example.com") == "third@example.com"  # one hop, however often it moved
    assert store.moved_to("new@example.com") == "third@example.com"
    # A move back drops the trail that pointed away from the address.
    assert store.change_email("third@example.com", "old@example.com") is True
    assert store.moved_to("old@example.com") is None
    assert store.moved_to("third@example.com") == "old@example.com"
    assert store.moved_to("new@example.com") == "old@example.com"
    with pytest.raises(PublisherError):
        store.change_email("old@example.com", "not an address")


def test_contract_iter_and_count_by_status(store):
    cycle = ("active", "active", "unconfirmed", "unsubscribed", "bounced", "complained")
    people = [Subscriber(f"p{i:03d}@example.com", f"P{i}", cycle[i % len(cycle)]) for i in range(60)]
    store.upsert_many(people)
    assert store.count() == 60
    assert sorted((s.email, s.name, s.status) for s in store.iter()) == [(p.email, p.name, p.status) for p in people]
    for status in STATUSES:
        assert [s.email for s in store.iter(status)] == [p.email for p in people if p.status == status]
        assert store.count(status) == sum(p.status == status for p in people)


@pytest.mark.parametrize(("subscriber", "field"), [
    (Subscriber("a@example.com", "A\r\nBcc: victim@example.com"), "name"),
    (Subscriber("a@example.com", "A\u202eB"), "name"),
    (Subscriber("a@example.com", "x" * 101), "name"),
    (Subscriber("a@example.com", tags=("t" * 41,)), "tags"),
    (Subscriber("a@example.com", tags=tuple(f"t{i}" for i in range(TAGS_MAX + 1))), "tags"),
    (Subscriber("a@example.com", tags=("a;b",)), "tags"),
    (Subscriber("a@example.com", tags=("line\nbreak",)), "tags"),
    (Subscriber("a@example.com\r\nBcc: x@example.com"), "email"),
    (Subscriber("a@example.com", status="vip"), "status"),
])
def test_contract_hostile_values_are_refused(store, subscriber, field):
    for write in (lambda: store.upsert(subscriber), lambda: store.upsert_many([subscriber])):
        with pytest.raises(PublisherError) as caught:
            write()
        assert caught.value.problems[0].field == field
    assert store.count() == 0 and store.get("a@example.com") is None


def test_contract_a_merge_past_the_tag_limit_is_refused(store):
    store.upsert(Subscriber("a@example.com", tags=tuple(f"a{i}" for i in range(TAGS_MAX))))
    with pytest.raises(PublisherError, match="tags"):
        store.upsert(Subscriber("a@example.com", tags=("one-more",)))
    assert len(store.get("a@example.com").tags) == TAGS_MAX


# ---- DynamoDB only: the table design ----


def test_open_store_returns_the_dynamodb_store(ddb_config):
    store = open_store(ddb_config)
    assert isinstance(store, DynamoDBStore)
    assert store.table == ddb_config.subscribers.dynamodb_table
    assert store.description == f"DynamoDB table {store.table}"


def test_items_follow_the_documented_keys(ddb_config):
    store = DynamoDBStore(ddb_config)
    store.upsert(Subscriber("a@example.com", "小明", tags=("ai",)))
    store.change_email("a@example.com", "b@example.com")
    item = raw_item(ddb_config, "SUB#b@example.com", "SUB")
    assert item is not None
    assert (item["GSI1PK"]["S"], item["GSI1SK"]["S"], item["status"]["S"]) == (
        "STATUS#active", f"{NOW}#b@example.com", "active")
    assert item["tags"] == {"L": [{"S": "ai"}]} and int(item["v"]["N"]) >= 2
    assert TTL_ATTRIBUTE not in item  # subscribers never expire (deploy/README.md)
    moved = raw_item(ddb_config, "MOVED#a@example.com", "MOVED")
    assert moved is not None and (moved["new"]["S"], moved["GSI1PK"]["S"]) == ("b@example.com",
                                                                                  "MOVEDTO#b@example.com")
    store.set_status("b@example.com", "bounced")
    assert raw_item(ddb_config, "SUB#b@example.com", "SUB")["GSI1PK"]["S"] == "STATUS#bounced"


def test_create_table_is_on_demand_with_the_index_and_ttl(ddb_config):
    client = boto3.client("dynamodb")
    name = ddb_config.subscribers.dynamodb_table
    assert create_table(client, name) is False  # there already: left alone
    table = client.describe_table(TableName=name)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == [INDEX]
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", TTL_ATTRIBUTE)


def test_a_missing_table_is_a_clear_error_and_never_created(newsletter, aws):
    config = table_config(newsletter)
    with pytest.raises(PublisherError, match="does not exist") as caught:
        DynamoDBStore(config).get("a@example.com")
    assert "init-table" in str(caught.value) and "subscribers.dynamodb_table" in str(caught.value)
    assert config.subscribers.dynamodb_table not in boto3.client("dynamodb").list_tables()["TableNames"]


# ---- conditional writes: no lost update ----


class Interleaved(DynamoDBStore):
    """Between this store's read and its write, another process writes the same subscriber (once)."""

    def __init__(self, config: Any, other: DynamoDBStore, change: Any) -> None:
        super().__init__(config)
        self.other, self.change, self.reads = other, change, 0

    def _item(self, email: str) -> dict[str, Any] | None:
        item = super()._item(email)
        self.reads += 1
        if self.reads == 1:
            self.change(self.other)
        return item


@pytest.mark.parametrize("change", [
    lambda other: other.upsert(Subscriber("a@example.com", tags=("theirs",))),
    lambda other: other.set_status("a@example.com", "unsubscribed"),
    lambda other: other.add_soft_bounce("a@example.com"),
])
def test_a_write_between_read_and_write_is_not_lost(ddb_config, change):
    other = DynamoDBStore(ddb_config)
    other.upsert(Subscriber("a@example.com", "A", tags=("first",)))
    store = Interleaved(ddb_config, other, change)
    verdict = store.upsert(Subscriber("a@example.com", "Mine", tags=("mine",)))
    assert store.reads == 2  # the conditional write failed once and was redone from a fresh read
    got = store.get("a@example.com")
    assert got.name == "Mine" and "mine" in got.tags and "first" in got.tags
    if got.status == "unsubscribed":
        assert verdict == "kept"  # their unsubscribe was not overwritten by our stale "active"
    else:
        assert verdict == "updated"


def test_concurrent_change_of_address_and_upsert(ddb_config):
    other = DynamoDBStore(ddb_config)
    other.upsert(Subscriber("a@example.com", "A"))
    store = Interleaved(ddb_config, other, lambda o: o.upsert(Subscriber("a@example.com", tags=("late",))))
    assert store.change_email("a@example.com", "b@example.com") is True
    assert store.get("b@example.com").tags == ("late",)  # the upsert that raced the move moved along
    assert store.get("a@example.com") is None


@pytest.fixture
def atomic_aws(ddb_config, monkeypatch):  # type: ignore[no-untyped-def]
    """The table behind an endpoint applying one request at a time (conftest.atomic_moto)."""
    with atomic_moto(monkeypatch):
        yield ddb_config


def test_two_threads_never_lose_a_write(atomic_aws):
    ddb_config = atomic_aws
    DynamoDBStore(ddb_config).upsert(Subscriber("a@example.com", "A"))
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        store = DynamoDBStore(ddb_config)
        try:
            start.wait()
            for i in range(9):  # 2 x 9 tags: within TAGS_MAX
                if n < 2:
                    store.upsert(Subscriber("a@example.com", tags=(f"w{n}-{i}",)))
                else:
                    store.add_soft_bounce("a@example.com")
                    store.set_paused("a@example.com", f"2027-01-{i + 1:02d}T00:00:00+00:00")
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = DynamoDBStore(ddb_config)
    got = store.get("a@example.com")
    assert sorted(got.tags) == sorted(f"w{n}-{i}" for n in range(2) for i in range(9))
    assert store.soft_bounces("a@example.com") == 18


# ---- many subscribers: the status index, page by page ----


class CountingClient:
    def __init__(self, client: Any) -> None:
        self.client, self.calls = client, {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(**kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(**kwargs)

        return call


def test_iter_and_count_page_through_the_status_index_without_a_scan(ddb_config):
    client = boto3.client("dynamodb")
    name = ddb_config.subscribers.dynamodb_table
    people = [Subscriber(f"p{i:04d}@example.com", f"读者{i}", "active" if i % 5 else "unsubscribed", ("ai",),
                         NOW, NOW) for i in range(2500)]
    for start in range(0, len(people), 25):
        client.batch_write_item(RequestItems={name: [{"PutRequest": {"Item": subscriber_item(p)}}
                                                     for p in people[start:start + 25]]})
    counting = CountingClient(client)
    store = DynamoDBStore(ddb_config, counting, page_size=300)
    it = store.iter("active")
    assert next(it).email == "p0001@example.com"
    assert counting.calls == {"query": 1}  # streams: the first subscriber came after one page
    assert len(list(it)) == 1999
    assert counting.calls == {"query": 7}  # 2,000 items, 300 a page
    assert store.count("active") == 2000 and store.count("unsubscribed") == 500 and store.count() == 2500
    assert [s.email for s in store.iter("unsubscribed")] == [p.email for p in people if p.status == "unsubscribed"]
    assert sum(1 for _ in store.iter()) == 2500
    assert "scan" not in counting.calls


# ---- the migration from SQLite ----


def by_email(subscriber: Subscriber) -> str:
    return subscriber.email


def sqlite_fixture(config, n: int = 1000) -> SqliteStore:  # type: ignore[no-untyped-def]
    store = SqliteStore(config.root / config.subscribers.database)
    cycle = ("active", "active", "unconfirmed", "unsubscribed", "bounced", "complained")
    store.upsert_many(Subscriber(f"reader{i:04d}@example.com", f"读者·{i}号", cycle[i % len(cycle)],
                                 (f"标签{i % 7}", "人工智能", f"t{i % 3}")) for i in range(n))
    for i in range(0, n, 10):
        store.add_soft_bounce(f"reader{i:04d}@example.com")
    for i in range(0, n, 25):
        store.set_paused(f"reader{i:04d}@example.com", "2027-02-01T00:00:00+00:00")
    for i in range(3, n, 100):
        store.change_email(f"reader{i:04d}@example.com", f"moved{i:04d}@example.com")
    return store


def test_migrate_1000_subscribers_row_for_row_and_again_idempotently(ddb_config):
    sqlite = sqlite_fixture(ddb_config)
    seen: list[tuple[str, int, int]] = []
    report = migrate_to_dynamodb(ddb_config, progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert report.ok, report.lines()
    assert (report.total, report.copied, report.already) == (1000, 1000, 0)
    assert (report.moved_total, report.moved_copied, report.verified) == (10, 10, 1010)
    assert seen[-1] == ("verify", 1000, 1000) and ("copy", 1000, 1000) in seen
    store = DynamoDBStore(ddb_config)
    for status in STATUSES:
        assert sorted(store.iter(status), key=by_email) == sorted(sqlite.iter(status), key=by_email)
        assert store.count(status) == sqlite.count(status)
    for s in sqlite.iter():
        assert store.get(s.email) == s
        assert store.soft_bounces(s.email) == sqlite.soft_bounces(s.email)
    assert store.moved_to("reader0003@example.com") == "moved0003@example.com"
    again = migrate_to_dynamodb(ddb_config)
    assert again.ok and (again.copied, again.already, again.moved_already, again.verified) == (0, 1000, 10, 1010)
    assert "1000 already there" in again.lines()[0]


def test_migrate_reports_a_difference(ddb_config):
    sqlite = sqlite_fixture(ddb_config, 30)
    migrate_to_dynamodb(ddb_config)
    DynamoDBStore(ddb_config).set_status("reader0001@example.com", "complained")
    sqlite.set_tags("reader0002@example.com", ["新"])
    report = migrate_to_dynamodb(ddb_config)
    assert not report.ok
    assert sorted(m.split(":")[0:2] for m in report.mismatches) == [
        ["reader0001@example.com", " status"], ["reader0002@example.com", " tags"]]  # (the clock is pinned)


def test_migrate_refuses_a_hostile_row_from_an_old_database(ddb_config):
    sqlite = sqlite_fixture(ddb_config, 5)
    sqlite.db.execute("UPDATE subscribers SET name = ? WHERE email = ?", ("A\r\nBcc: x", "reader0001@example.com"))
    report = migrate_to_dynamodb(ddb_config)
    assert not report.ok and report.copied == 4 and len(report.refused) == 1
    assert "reader0001@example.com" in report.refused[0] and "control character" in report.refused[0]
    assert DynamoDBStore(ddb_config).get("reader0001@example.com") is None


def test_migrate_needs_a_table_name_and_a_database(newsletter, aws):
    with pytest.raises(PublisherError, match="no DynamoDB table") as caught:
        migrate_to_dynamodb(newsletter.load_config())
    assert "subscribers.dynamodb_table" in str(caught.value)
    with pytest.raises(PublisherError, match="no SQLite store"):
        migrate_to_dynamodb(newsletter.load_config(), table="news-x")


# ---- config ----


def test_config_dynamodb_table(newsletter):
    text = newsletter.root.joinpath("publisher.toml").read_text()
    newsletter.config(text + '[subscribers]\ndynamodb_table = "news_letter-1.prod"\n')
    assert newsletter.load_config().subscribers.dynamodb_table == "news_letter-1.prod"
    from publisher.config import load_config

    env = load_config(newsletter.root, environ={"PUBLISHER_SUBSCRIBERS_DYNAMODB_TABLE": "from-env"})
    assert env.subscribers.dynamodb_table == "from-env"
    for bad in ('"a b"', '"ab"', "3", '"表"'):
        newsletter.config(text + f"[subscribers]\ndynamodb_table = {bad}\n")
        with pytest.raises(PublisherError) as caught:
            newsletter.load_config()
        assert [p.field for p in caught.value.problems] == ["subscribers.dynamodb_table"]


def test_config_dynamodb_table_and_ses_contact_list_exclude_each_other(newsletter):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + '[subscribers]\ndynamodb_table = "news"\nses_contact_list = "news"\n')
    with pytest.raises(PublisherError) as caught:
        newsletter.load_config()
    message = str(caught.value)
    assert "subscribers.dynamodb_table" in message and "subscribers.ses_contact_list" in message


def test_two_processes_never_lose_a_write(atomic_aws):
    """Two real processes read-modify-write one subscriber at once through the store (the endpoint handles one
    request at a time, as DynamoDB applies one item's write atomically; the processes interleave freely)."""
    import os
    import subprocess
    import sys

    from conftest import REPO

    config = atomic_aws
    DynamoDBStore(config).upsert(Subscriber("a@example.com", "A"))
    code = ("import sys\nfrom publisher.config import load_config\n"
            "from publisher.stores.dynamodb import DynamoDBStore\nfrom publisher.subscribers import Subscriber\n"
            "store = DynamoDBStore(load_config(sys.argv[1]))\nn = sys.argv[2]\n"
            "for i in range(8):\n"
            "    store.upsert(Subscriber('a@example.com', tags=(f'p{n}-{i}',)))\n"
            "    store.add_soft_bounce('a@example.com')\n"
            "    store.upsert(Subscriber('b@example.com', f'{n}-{i}'))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [subprocess.Popen([sys.executable, "-c", code, str(config.root), str(n)], env=env,
                                stderr=subprocess.PIPE, text=True) for n in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    store = DynamoDBStore(config)
    assert sorted(store.get("a@example.com").tags) == sorted(f"p{n}-{i}" for n in range(2) for i in range(8))
    assert store.soft_bounces("a@example.com") == 16
    assert store.count() == 2


def test_privacy_forget_and_export_use_the_table(ddb_config):
    from publisher.privacy import export_person, forget

    store = DynamoDBStore(ddb_config)
    store.upsert(Subscriber("a@example.com", "小明", tags=("ai",)))
    store.add_soft_bounce("a@example.com")
    store.change_email("a@example.com", "b@example.com")
    data = export_person(ddb_config, "b@example.com")
    assert data["store"] == store.description
    assert (data["subscriber"]["name"], data["subscriber"]["soft_bounces"]) == ("小明", 1)
    report = forget(ddb_config, "b@example.com")
    assert report.removed[f"subscriber ({store.description})"] == 1
    assert store.get("b@example.com") is None
    assert store.moved_to("a@example.com") is None  # the change of address named them too
    assert raw_item(ddb_config, "MOVED#a@example.com", "MOVED") is None


def test_access_denied_names_the_permissions_and_the_key(ddb_config):
    # A stubbed fault (the shared moto server does not enforce IAM; DynamoDB's AccessDenied shape is what matters).
    from botocore.stub import Stubber

    client = boto3.client("dynamodb")
    stubber = Stubber(client)
    stubber.add_client_error("get_item", service_error_code="AccessDeniedException", http_status_code=400,
                             service_message="not authorized to perform: dynamodb:GetItem")
    with stubber, pytest.raises(PublisherError, match="access denied") as caught:
        DynamoDBStore(ddb_config, client).get("a@example.com")
    assert "dynamodb:Query" in str(caught.value) and "subscribers.dynamodb_table" in str(caught.value)


def test_no_credentials_is_a_clear_error(ddb_config, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(PublisherError, match="no AWS credentials"):
        DynamoDBStore(ddb_config).count()
