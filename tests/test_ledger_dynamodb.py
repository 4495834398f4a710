"""The delivery ledger in DynamoDB (`[subscribers] dynamodb_table`), against a real moto server over HTTP: every
active subscriber exactly once, two senders at once never send one row twice, a SIGKILLed send leaves only
`sending` rows uncertain and resumes as the SQLite ledger does, and the writes per recipient are counted."""

from __future__ import annotations

import email
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import NOW, atomic_moto
from waiting import wait_for

from publisher import markdown
from publisher.content import find_issue, load_issues
from publisher.emails import MessageFactory, render_email, sender_of
from publisher.errors import PublisherError
from publisher.sending import SendLoop, SendReport, send_issue
from publisher.stores import dynamodb
from publisher.stores.dynamodb import DynamoDBStore, create_table
from publisher.stores.dynamodb_ledger import DynamoDBLedger, row_key, send_key
from publisher.subscribers import Subscriber
from publisher.transports import OutboxTransport, UncertainError

SECRET = b"test-secret-" * 3


def configure(newsletter, *, extra_config: str = ""):  # type: ignore[no-untyped-def]
    table = f"news-{uuid.uuid4().hex[:12]}"
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + f'[email]\nfrom_address = "news@example.com"\npostal_address = "上海市 1 号"\n{extra_config}'
                      + f'[subscribers]\ndynamodb_table = "{table}"\n')
    newsletter.issue("2026-11-20-daily.md", "title: AI 日报：第一期\ndate: 2026-11-20\n",
                     "第一段，有[链接](https://e.com/a)。\n")
    config = newsletter.load_config()
    assert create_table(boto3.client("dynamodb"), table) is True
    return config


def subscribe(config, active: int) -> None:  # type: ignore[no-untyped-def]
    store = DynamoDBStore(config)
    store.upsert_many(Subscriber(f"reader{n}@example.com", f"读者{n}" if n % 2 else "") for n in range(active))
    for status in ("unsubscribed", "bounced", "complained", "unconfirmed"):
        store.upsert(Subscriber(f"{status}@example.com", status=status))
    store.close()


@pytest.fixture
def ddb(newsletter, aws, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PUBLISHER_NOW", NOW.isoformat())
    return configure(newsletter)


@pytest.fixture
def atomic_aws(newsletter, aws, monkeypatch):  # type: ignore[no-untyped-def]
    """The newsletter on DynamoDB behind an endpoint applying one request at a time (conftest.atomic_moto)."""
    monkeypatch.setenv("PUBLISHER_NOW", NOW.isoformat())
    with atomic_moto(monkeypatch):
        yield configure(newsletter)


def active_addresses(n: int) -> set[str]:
    return {f"reader{k}@example.com" for k in range(n)}


def outbox_recipients(folder: Path) -> Counter:
    counts: Counter = Counter()
    for path in folder.glob("*.eml"):
        counts[email.message_from_bytes(path.read_bytes())["To"].rpartition("<")[2].rstrip(">")] += 1
    return counts


def ledger_counts(config, issue: str = "daily") -> dict[str, int]:  # type: ignore[no-untyped-def]
    ledger = DynamoDBLedger(config)
    try:
        return ledger.counts(issue)
    finally:
        ledger.close()


def items_in(config, state: str, issue: str = "daily") -> set[str]:  # type: ignore[no-untyped-def]
    ledger = DynamoDBLedger(config)
    try:
        return {item["email"]["S"] for items, _ in ledger._rows(issue, state=state) for item in items}
    finally:
        ledger.close()


def raw(config, key: dict[str, Any]) -> dict[str, Any] | None:  # type: ignore[no-untyped-def]
    return boto3.client("dynamodb").get_item(TableName=config.subscribers.dynamodb_table, Key=key).get("Item")


class Requests:
    """Counts the DynamoDB requests of every client the store and ledger make, through a botocore event hook."""

    WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []  # (operation, SK of the item written or read, "" for others)
        self.lock = threading.Lock()

    def hook(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        key = params.get("Key") or params.get("Item") or {}
        with self.lock:
            self.calls.append((model.name, key.get("SK", {}).get("S", "")))

    def writes(self, prefix: str = "") -> int:
        return sum(1 for op, sk in self.calls if op in self.WRITES and sk.startswith(prefix))


@pytest.fixture
def requests(monkeypatch) -> Requests:  # type: ignore[no-untyped-def]
    counter = Requests()
    make = dynamodb.make_client

    def counting(config: Any = None) -> Any:
        client = make(config)
        client.meta.events.register("before-parameter-build.dynamodb.*", counter.hook)
        return client

    monkeypatch.setattr(dynamodb, "make_client", counting)
    return counter


def test_200_subscribers_each_exactly_once_and_the_ledger_counts_match(ddb, newsletter):
    subscribe(ddb, 200)
    report = send_issue(ddb, "daily", now=NOW, secret=SECRET)
    assert (report.audience, report.sent, report.failed, report.uncertain, report.remaining) == (200, 200, 0, 0, 0)
    got = outbox_recipients(newsletter.root / "outbox" / "daily")
    assert set(got) == active_addresses(200) and set(got.values()) == {1}
    assert ledger_counts(ddb) == {"sent": 200}
    assert not (newsletter.root / "subscribers.db").exists()  # nothing kept in SQLite
    item = raw(ddb, row_key("daily", "reader7@example.com"))
    assert item is not None
    assert (item["state"]["S"], item["attempts"]["N"], item["name"]["S"]) == ("sent", "1", "读者7")
    assert item["message_id"]["S"].startswith("<") and item["provider_id"]["S"] == item["message_id"]["S"]
    assert "last_error" not in item
    send = raw(ddb, send_key("daily"))
    assert send is not None
    assert (send["subject"]["S"], send["audience"]["N"], send["complete"]["BOOL"]) == ("AI 日报：第一期", "200", True)
    assert send["audience_key"]["S"] == "" and send["finished"]["S"] == NOW.isoformat()
    again = send_issue(ddb, "daily", now=NOW, secret=SECRET)  # a finished issue sends nothing more
    assert again.sent == 0 and again.already_sent == 200
    assert sum(outbox_recipients(newsletter.root / "outbox" / "daily").values()) == 200


def test_writes_per_recipient_are_the_claim_and_the_sent_plus_the_snapshot_put(ddb, newsletter, requests):
    subscribe(ddb, 120)
    requests.calls.clear()
    report = send_issue(ddb, "daily", now=NOW, secret=SECRET)
    assert report.sent == 120
    per_row = requests.writes("TO#")
    per_send = requests.writes("SEND") + requests.writes("ISSUE#")
    # 1 conditional put (snapshot) + 1 claim + 1 sent per recipient; 4 writes for the whole send (the send item
    # created, completed, finished; its line in the send index); no other writes at all.
    assert per_row == 3 * 120, Counter(requests.calls)
    assert per_send == 4 and requests.writes() == per_row + per_send
    sending_writes = sum(1 for op, sk in requests.calls if op == "UpdateItem" and sk.startswith("TO#"))
    assert sending_writes / report.sent == 2.0
    reads = Counter(op for op, _ in requests.calls if op not in Requests.WRITES)
    print(f"DynamoDB requests for {report.sent} recipients: writes per recipient {per_row / report.sent:.2f} "
          f"(send path {sending_writes / report.sent:.2f}), per send {per_send}, reads {dict(reads)}")


def test_unsubscribed_after_the_snapshot_is_skipped(ddb, newsletter):
    subscribe(ddb, 20)
    send_issue(ddb, "daily", now=NOW, secret=SECRET, limit=5)
    # Rows go out in key order (by address): reader9 is last.
    DynamoDBStore(ddb).set_status("reader9@example.com", "unsubscribed")
    report = send_issue(ddb, "daily", now=NOW, secret=SECRET)
    assert report.sent == 14 and report.skipped == 1
    assert "reader9@example.com" not in outbox_recipients(newsletter.root / "outbox" / "daily")
    assert ledger_counts(ddb) == {"sent": 19, "skipped": 1}


def test_a_snapshot_cut_short_is_resumed_without_duplicates(ddb, newsletter):
    subscribe(ddb, 30)
    store = DynamoDBStore(ddb)
    ledger = DynamoDBLedger(ddb)
    # A first process wrote the send item and 10 rows, then died before marking the snapshot complete.
    ledger._conditional("put_item", Item={**send_key("daily"), "subject": {"S": "x"}, "audience_key": {"S": ""},
                                          "complete": {"BOOL": False}})
    for n, s in enumerate(list(store.iter("active"))[:10], start=1):
        ledger._conditional("put_item", Item={**row_key("daily", s.email), "email": {"S": s.email},
                                              "name": {"S": s.name}, "state": {"S": "pending"},
                                              "n": {"N": str(n)}, "attempts": {"N": "0"}})
    assert ledger.started("daily") is False
    report = send_issue(ddb, "daily", now=NOW, secret=SECRET)
    assert (report.audience, report.sent) == (30, 30)
    got = outbox_recipients(newsletter.root / "outbox" / "daily")
    assert set(got) == active_addresses(30) and set(got.values()) == {1}
    assert ledger.started("daily") is True
    ledger.close()
    store.close()


def test_a_started_send_refuses_another_audience(ddb):
    subscribe(ddb, 5)
    send_issue(ddb, "daily", now=NOW, secret=SECRET, limit=1)
    with pytest.raises(PublisherError, match="started with the audience"):
        send_issue(ddb, "daily", now=NOW, secret=SECRET, segment="{any: [ai]}")


class Uncertain:
    """The real outbox, but one address's send ends in a read timeout after the message went out."""

    def __init__(self, inner: OutboxTransport, uncertain: set[str]) -> None:
        self.inner, self.uncertain, self.name = inner, uncertain, "uncertain"

    def send(self, message: bytes, *, recipient: str, **kwargs: Any) -> str:
        provider_id = self.inner.send(message, recipient=recipient, **kwargs)
        if recipient in self.uncertain:
            raise UncertainError("no answer after sending")
        return provider_id

    def default_rate(self) -> None:
        return None

    def close(self) -> None:
        pass


@pytest.mark.parametrize("flag", ["--mark-uncertain-sent", "--resend-uncertain"])
def test_uncertain_rows_are_reported_and_resolved_as_with_sqlite(ddb, newsletter, run_cli, monkeypatch, flag):
    subscribe(ddb, 30)
    transport = Uncertain(OutboxTransport(newsletter.root / "outbox", "daily"), {"reader7@example.com"})
    report = send_issue(ddb, "daily", now=NOW, secret=SECRET, transport=transport)
    assert (report.sent, report.uncertain) == (29, 1)
    assert items_in(ddb, "sending") == {"reader7@example.com"}
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET.decode())
    blocked = run_cli("-C", str(newsletter.root), "send", "daily")
    assert blocked.exit_code == 1
    assert "1 messages of daily may or may not have gone out" in blocked.stderr and "reader7@" in blocked.stderr
    monkeypatch.setenv("PUBLISHER_SECRET", SECRET.decode())  # run_cli clears PUBLISHER_ variables
    resolved = run_cli("-C", str(newsletter.root), "send", "daily", flag)
    assert resolved.exit_code == 0, resolved.stderr
    assert ledger_counts(ddb) == {"sent": 30}
    got = outbox_recipients(newsletter.root / "outbox" / "daily")
    assert set(got) == active_addresses(30)
    assert got["reader7@example.com"] == (2 if flag == "--resend-uncertain" else 1)
    note = raw(ddb, row_key("daily", "reader7@example.com"))
    assert note is not None
    if flag == "--mark-uncertain-sent":
        assert note["last_error"]["S"] == "marked sent by --mark-uncertain-sent"


def test_two_senders_at_once_never_send_a_row_twice(atomic_aws, newsletter):
    """Two senders, each with its own ledger client, snapshot the audience at once (conditional puts: one row
    each) and then run their send loops at once on the same rows: every address lands in the outbox once."""
    config = atomic_aws
    subscribe(config, 200)
    issues = load_issues(config)
    issue = find_issue(issues, "daily")
    rendered = render_email(config, issue, markdown.to_html(issue.body),
                            pages={str(i.path): i.url_path for i in issues})
    factory = MessageFactory(rendered, sender_of(config), SECRET, date=NOW)
    start = threading.Barrier(2)
    reports = [SendReport("daily"), SendReport("daily")]
    sizes: list[int] = [0, 0]
    errors: list[BaseException] = []

    def sender(k: int) -> None:
        ledger, store = DynamoDBLedger(config), DynamoDBStore(config)
        try:
            start.wait()
            sizes[k] = ledger.snapshot("daily", rendered.subject, store, now=NOW)
            start.wait()
            loop = SendLoop(config, rendered, OutboxTransport(newsletter.root / "outbox", "daily"), factory, ledger,
                            join_status=True)
            loop.run(reports[k], None)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            ledger.close()
            store.close()

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sizes == [200, 200]
    got = outbox_recipients(newsletter.root / "outbox" / "daily")
    assert set(got) == active_addresses(200) and set(got.values()) == {1}
    assert reports[0].sent + reports[1].sent == 200
    assert ledger_counts(config) == {"sent": 200}
    print(f"two senders: {reports[0].sent} + {reports[1].sent}")


def test_sigkill_mid_send_leaves_only_sending_rows_uncertain_and_resumes(ddb, newsletter):
    """Kill `publisher send` with SIGKILL once rows are being sent, several times; each check run reports the
    rows left `sending` as uncertain, and they are resolved by turns with --resend-uncertain (they may arrive
    twice) and --mark-uncertain-sent (they may not arrive). Nobody else is skipped or sent twice."""
    subscribe(ddb, 300)
    config_text = newsletter.root.joinpath("publisher.toml").read_text()
    newsletter.root.joinpath("publisher.toml").write_text(config_text.replace("[email]\n",
                                                                              "[email]\nrate = 150\nworkers = 4\n"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env.update(PUBLISHER_SECRET=SECRET.decode(), PUBLISHER_NOW=NOW.isoformat())
    command = [sys.executable, "-m", "publisher", "-C", str(newsletter.root), "send", "daily"]
    resent: set[str] = set()
    marked: set[str] = set()
    reported = 0
    for round_, threshold in enumerate((1, 100, 200)):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda t=threshold: ledger_counts(ddb).get("sent", 0) >= t, timeout=120,
                 what=f"{threshold} rows sent")
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL
        assert ledger_counts(ddb).get("sent", 0) < 300
        uncertain = items_in(ddb, "sending")
        check = subprocess.run(command + ["--limit", "1"], env=env, capture_output=True, text=True, timeout=120)
        match = re.search(r"(\d+) messages of daily may or may not have gone out", check.stderr)
        assert (int(match.group(1)) if match else 0) == len(uncertain), check.stderr
        if match:
            reported += len(uncertain)
            flag = "--resend-uncertain" if round_ % 2 == 0 else "--mark-uncertain-sent"
            (resent if flag == "--resend-uncertain" else marked).update(uncertain)
            done = subprocess.run(command + [flag, "--limit", "1"], env=env, capture_output=True, text=True,
                                  timeout=120)
            assert done.returncode == 0, done.stderr
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    got = outbox_recipients(newsletter.root / "outbox" / "daily")
    missing = active_addresses(300) - set(got)
    twice = {address for address, n in got.items() if n > 1}
    assert missing <= marked and twice <= resent and max(got.values()) <= 2
    assert ledger_counts(ddb) == {"sent": 300}
    print(f"SIGKILL x3: {reported} rows reported uncertain ({len(resent)} resent, {len(marked)} marked sent); "
          f"{len(twice)} sent twice, {len(missing)} never sent")


def test_dry_run_writes_nothing_to_the_table(ddb, requests):
    subscribe(ddb, 12)
    requests.calls.clear()
    dry = send_issue(ddb, "daily", now=NOW, secret=SECRET, dry_run=True)
    assert (dry.audience, dry.remaining, len(dry.preview)) == (12, 12, 3)
    assert requests.writes() == 0 and raw(ddb, send_key("daily")) is None


def test_two_send_processes_at_once_never_send_a_row_twice(atomic_aws, newsletter):
    """Two `publisher send` processes started together on one issue, as on two machines (two copies of the
    folder, so two outboxes; on one machine the folder lock serializes them), one table: each snapshots
    (conditional puts) and sends; one may instead stop at the other's in-flight `sending` rows (reported
    uncertain, exit 1), never send them. Every address lands once across both outboxes."""
    import shutil

    config = atomic_aws
    subscribe(config, 200)
    other = newsletter.root.parent / "machine-2"
    shutil.copytree(newsletter.root, other)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env.update(PUBLISHER_SECRET=SECRET.decode(), PUBLISHER_NOW=NOW.isoformat())
    commands = [[sys.executable, "-m", "publisher", "-C", str(root), "send", "daily"]
                for root in (newsletter.root, other)]
    senders = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for c in commands]
    outcomes = []
    for sender in senders:
        _, err = sender.communicate(timeout=180)
        outcomes.append(sender.returncode)
        assert sender.returncode == 0 or "may or may not have gone out" in err, err
    assert 0 in outcomes
    if ledger_counts(config).get("pending"):  # the one that stopped left its share for a later run
        assert subprocess.run(commands[0], env=env, capture_output=True, timeout=180).returncode == 0
    got = outbox_recipients(newsletter.root / "outbox" / "daily") + outbox_recipients(other / "outbox" / "daily")
    assert set(got) == active_addresses(200) and set(got.values()) == {1}
    assert ledger_counts(config) == {"sent": 200}
    print(f"two processes: exit codes {outcomes}, "
          f"{sum(outbox_recipients(other / 'outbox' / 'daily').values())} sent by the second")


def test_forgetting_a_person_anonymizes_their_rows_in_the_table_and_a_later_send_skips_them(ddb, newsletter):
    from publisher.privacy import forget

    subscribe(ddb, 6)
    send_issue(ddb, "daily", now=NOW, secret=SECRET, limit=3)  # some sent, some still pending
    report = forget(ddb, "reader4@example.com", secret=SECRET)
    assert report.removed["deliveries made anonymous (DynamoDB)"] == 1
    assert raw(ddb, row_key("daily", "reader4@example.com")) is None
    table = boto3.client("dynamodb").scan(TableName=ddb.subscribers.dynamodb_table)["Items"]
    assert "reader4@example.com" not in str(table) and "读者4" not in str(table)  # no byte of them left
    assert sum(ledger_counts(ddb).values()) == 6  # the counts hold
    DynamoDBStore(ddb).upsert(Subscriber("reader4@example.com", "读者4"))  # they subscribe again
    send_issue(ddb, "daily", now=NOW, secret=SECRET)
    assert "reader4@example.com" not in outbox_recipients(newsletter.root / "outbox" / "daily")
