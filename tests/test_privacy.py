"""Forgetting a person (every trace in the newsletter folder gone, the ledger's counts and exactly-once kept) and
exporting what we hold about one person: a real SQLite file and its WAL, a real outbox, a real build's cache
folder, and the SES contact list on the moto server."""

from __future__ import annotations

import email
import json
import sqlite3
import uuid
from collections import Counter
from email.message import EmailMessage
from pathlib import Path

import pytest
from conftest import NOW

from publisher.errors import PublisherError
from publisher.privacy import export_person, forget, looks_like_address, marker, person
from publisher.scheduler import State
from publisher.sending import send_issue
from publisher.subscribers import SqliteStore, Subscriber, connect
from publisher.transports import OutboxTransport

SECRET = b"privacy-secret-" * 3
TARGET = "Zora.Quill+news@Example.com"  # as the person typed it; stored lowercased
STORED = TARGET.lower()
NAME = "佐拉·奎尔Zq"


def setup(newsletter, extra: str = ""):  # type: ignore[no-untyped-def]
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + '[email]\nfrom_address = "news@example.com"\npostal_address = "上海市 1 号"\n' + extra)
    newsletter.issue("2026-11-20-daily.md", "title: AI 日报：第一期\ndate: 2026-11-20\n", "第一段。\n")
    return newsletter.load_config()


def fill(newsletter, others: int = 6) -> None:  # type: ignore[no-untyped-def]
    store = SqliteStore(newsletter.root / "subscribers.db")
    store.upsert_many([Subscriber(f"reader{k}@example.com", f"读者{k}") for k in range(others)])
    store.upsert(Subscriber(TARGET, NAME, tags=("vip", "中文")))
    store.add_soft_bounce(STORED)
    store.add_soft_bounce(STORED)
    store.close()


def ledger(newsletter, issue: str = "daily") -> dict[str, int]:  # type: ignore[no-untyped-def]
    db = sqlite3.connect(newsletter.root / "subscribers.db")
    try:
        return dict(db.execute("SELECT state, count(*) FROM deliveries WHERE issue = ? GROUP BY state", (issue,)))
    finally:
        db.close()


def outbox_recipients(folder: Path) -> Counter:
    counts: Counter = Counter()
    for path in folder.rglob("*.eml"):
        counts[email.message_from_bytes(path.read_bytes())["To"].rpartition("<")[2].rstrip(">")] += 1
    return counts


def confirmation_to(config, address: str) -> None:  # type: ignore[no-untyped-def]
    """A confirmation email in the outbox, as `serve` writes one (outbox/confirmations/)."""
    message = EmailMessage()
    message["From"] = "news@example.com"
    message["To"] = address
    message["Subject"] = "请确认订阅"
    message.set_content("https://news.example.com/daily/confirm?token=abc")
    OutboxTransport(config.root / config.email.outbox, "confirmations").send(
        message.as_bytes(), sender="news@example.com", recipient=address, message_id="<c@x>", number=1)


def traces(root: Path, *needles: str) -> list[str]:
    """Every file under `root` (all of it: the database and its -wal and -shm, outbox, dist, caches) that holds one
    of `needles`' bytes."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}: {n}" for n in needles if n.encode("utf-8") in data]
    return found


def test_forget_leaves_no_trace_and_keeps_the_ledger(newsletter):
    from publisher.build import build

    config = setup(newsletter)
    fill(newsletter)
    report = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert report.sent == 7
    send_issue(config, "daily", now=NOW, secret=SECRET, test_to=TARGET)  # a test copy to them too
    confirmation_to(config, STORED)
    build(config, now=NOW)  # dist/ and .publisher-cache/ exist, as in a real folder
    db = connect(newsletter.root / "subscribers.db")
    state = State(db)
    state.published("daily", NOW)
    state.send_state("daily", "failed", NOW, f"stopped after 3 failures (the last: {TARGET}: 550)")
    db.close()
    before = ledger(newsletter)
    assert (newsletter.root / ".publisher-cache").is_dir() and (newsletter.root / "dist").is_dir()
    assert len(traces(newsletter.root, STORED)) >= 4  # the test looks in the right places: db, wal, 3 .eml

    done = forget(config, TARGET, secret=SECRET)
    assert done.address == STORED and done.keyed
    assert done.removed == {"subscriber (subscribers.db)": 1, "deliveries made anonymous": 1,
                            "other notes in subscribers.db": 1, "outbox files": 3}
    assert not done.warnings
    assert traces(newsletter.root, TARGET, STORED, NAME, "Zora.Quill", "zora.quill") == []
    assert ledger(newsletter) == before  # the counts of the issue are unchanged
    db = sqlite3.connect(newsletter.root / "subscribers.db")
    row = db.execute("SELECT email, name, state FROM deliveries WHERE email LIKE 'forgotten:%'").fetchone()
    db.close()
    assert row == (marker(STORED, SECRET), "", "sent")
    assert set(outbox_recipients(newsletter.root / "outbox")) == {f"reader{k}@example.com" for k in range(6)}

    # They subscribe again: a new send of the same issue does not bring it to them twice.
    store = SqliteStore(newsletter.root / "subscribers.db")
    store.upsert(Subscriber(TARGET, NAME))
    store.close()
    again = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert again.sent == 0 and again.already_sent == 7
    assert STORED not in outbox_recipients(newsletter.root / "outbox")


def test_a_forgotten_person_back_in_the_ledger_is_skipped(newsletter):
    """Should a row for the same address reach the ledger of an issue they had (a snapshot taken again, a
    tool's top-up), the send loop recognises them by the hash, keyed or plain, and skips them."""
    config = setup(newsletter)
    fill(newsletter)
    send_issue(config, "daily", now=NOW, secret=SECRET)
    forget(config, TARGET, secret=None)  # no secret at hand when forgetting: the plain hash
    store = SqliteStore(newsletter.root / "subscribers.db")
    store.upsert(Subscriber(TARGET, NAME))
    store.close()
    db = sqlite3.connect(newsletter.root / "subscribers.db")
    db.execute("UPDATE issue_sends SET finished_at = NULL")
    db.execute("INSERT INTO deliveries (issue, email, name, state, created_at, changed_at) "
               "VALUES ('daily', ?, ?, 'pending', 'x', 'x')", (STORED, NAME))
    db.commit()
    db.close()
    report = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert (report.sent, report.skipped) == (0, 1)
    assert STORED not in outbox_recipients(newsletter.root / "outbox")


def test_forget_during_a_send_skips_their_pending_row(newsletter):
    config = setup(newsletter)
    fill(newsletter)
    first = send_issue(config, "daily", now=NOW, secret=SECRET, limit=2)  # the target (added last) is pending
    assert first.remaining == 5
    forget(config, TARGET, secret=SECRET)
    counts = ledger(newsletter)
    assert counts == {"sent": 2, "pending": 4, "skipped": 1}
    rest = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert rest.sent == 4 and sum(ledger(newsletter).values()) == 7
    assert STORED not in outbox_recipients(newsletter.root / "outbox")


def test_export_person(newsletter):
    config = setup(newsletter)
    fill(newsletter)
    send_issue(config, "daily", now=NOW, secret=SECRET)
    confirmation_to(config, STORED)
    data = export_person(config, TARGET)
    json.dumps(data, ensure_ascii=False)  # JSON-ready
    assert data["email"] == STORED and data["store"].endswith("subscribers.db")
    sub = data["subscriber"]
    assert (sub["email"], sub["name"], sub["status"], sub["tags"], sub["soft_bounces"]) == (
        STORED, NAME, "active", ["vip", "中文"], 2)
    assert sub["created"] and sub["changed"]
    assert data["pending_confirmation"] is False
    [delivery] = data["deliveries"]
    assert (delivery["issue"], delivery["state"], delivery["attempts"]) == ("daily", "sent", 1)
    assert delivery["created"] and delivery["changed"] and delivery["message_id"].startswith("<daily.")
    assert sorted(data["outbox_files"]) == ["outbox/confirmations/1.eml", "outbox/daily/7.eml"]


def test_export_of_an_unconfirmed_person_shows_the_pending_confirmation(newsletter):
    config = setup(newsletter)
    store = SqliteStore(newsletter.root / "subscribers.db")
    store.upsert(Subscriber("new@example.com", status="unconfirmed"))
    store.close()
    data = export_person(config, "new@example.com")
    assert data["pending_confirmation"] is True and data["deliveries"] == []


def test_unknown_address_is_an_error(newsletter):
    """Decided: forgetting (or exporting) an address found nowhere is an error (exit 1 in the CLI), so a typo
    never looks like a successful erasure."""
    config = setup(newsletter)
    fill(newsletter)
    with pytest.raises(PublisherError, match="nothing about nobody@example.com was found"):
        forget(config, "nobody@example.com", secret=SECRET)
    with pytest.raises(PublisherError, match="nothing about"):
        export_person(config, "nobody@example.com")


@pytest.mark.parametrize("hostile", [
    f"{TARGET}\r\nBcc: all@example.com", f"{TARGET}\n", "a\x1b[31m@example.com", "\u202eevil@example.com",
    "用户@example.com", "", "   ", "not-an-address", "a@b@example.com", "x" * 400 + "@example.com",
    "a@example.com, b@example.com",
])
def test_hostile_input_is_refused_cleanly(newsletter, hostile):  # type: ignore[no-untyped-def]
    config = setup(newsletter)
    fill(newsletter)
    for action in (forget, export_person):
        with pytest.raises(PublisherError) as caught:
            action(config, hostile)
        assert caught.value.problems[0].field == "ADDRESS"
    assert SqliteStore(newsletter.root / "subscribers.db").count() == 7  # nothing was touched


def test_an_internationalised_domain_is_the_stored_punycode_address(newsletter):
    config = setup(newsletter)
    store = SqliteStore(newsletter.root / "subscribers.db")
    store.upsert(Subscriber("leser@münchen.de", "Leser"))
    store.close()
    assert person("Leser@MÜNCHEN.de") == "leser@xn--mnchen-3ya.de"
    assert forget(config, "leser@münchen.de", secret=SECRET).removed["subscriber (subscribers.db)"] == 1
    assert traces(newsletter.root, "xn--mnchen-3ya", "münchen") == []


@pytest.mark.parametrize(("argument", "person_"), [
    ("reader@example.com", True), ("Reader@Example.CO.uk", True), ("subscribers.csv", False),
    ("out/reader@example.com", False), ("reader@example.csv", False), ("reader@localhost", False),
    ("export.json", False), ("@example.com", False), ("backup@2026", False),
])
def test_export_argument_rule(argument, person_):  # type: ignore[no-untyped-def]
    assert looks_like_address(argument) is person_


def test_forget_in_the_ses_contact_list(newsletter, aws):
    from publisher.ses_contacts import SesContactStore

    name = f"news-{uuid.uuid4().hex[:12]}"
    config = setup(newsletter, f'[subscribers]\nses_contact_list = "{name}"\n')
    store = SesContactStore(config)
    store.upsert_many([Subscriber(TARGET, NAME, tags=("vip",)), Subscriber("other@example.com")])
    store.add_soft_bounce(STORED)
    send_issue(config, "daily", now=NOW, secret=SECRET, store=store)
    data = export_person(config, TARGET, store=store)
    assert data["store"] == f"SES contact list {name}" and data["subscriber"]["soft_bounces"] == 1
    assert [d["state"] for d in data["deliveries"]] == ["sent"]
    done = forget(config, TARGET, store=store, secret=SECRET)
    assert done.removed[f"subscriber (SES contact list {name})"] == 1
    assert done.removed["deliveries made anonymous"] == 1 and done.removed["outbox files"] == 1
    assert store.get(STORED) is None and store.get("other@example.com") is not None
    assert traces(newsletter.root, STORED, NAME) == []
    store.close()
