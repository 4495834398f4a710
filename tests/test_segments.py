"""Segments (`audience:` and `send --segment`) and email-only issues (`send_only: true`): 10,000 subscribers with
random tags in a real SQLite file, sends through the outbox, the SES contact-list store on the moto server for
the Python path, and a real build for what must stay off the web."""

from __future__ import annotations

import email
import random
import shutil
import sqlite3
import uuid
from collections import Counter
from pathlib import Path

import pytest
from conftest import NOW

from publisher.audience import Audience, AudienceError, parse_audience, parse_segment
from publisher.content import load_issues
from publisher.errors import PublisherError
from publisher.sending import count_audience, send_issue
from publisher.subscribers import SqliteStore, Subscriber

SECRET = b"segment-secret-" * 3
# Near misses on purpose: "Zh" and "zh-tw" must not match "zh" (exact matching), nor "pai" match "paid".
POOL = ("zh", "Zh", "zh-tw", "en", "paid", "pai", "vip", "paused", "大模型", "中文", "beta")
STATUSES = ("active",) * 9 + ("unsubscribed", "bounced", "complained", "unconfirmed")
SEGMENT = "{any: [zh, 大模型], all: [paid], not: [paused]}"
# The same segment as an independent query: a tag is a JSON string in the tags column, so '"zh"' (quotes
# included) occurs in it exactly when the subscriber has the tag "zh" (no tag of POOL contains a quote).
INDEPENDENT = ("""SELECT email FROM subscribers WHERE status = 'active' AND (instr(tags, '"zh"') OR """
               """instr(tags, '"大模型"')) AND instr(tags, '"paid"') AND NOT instr(tags, '"paused"')""")


def people(n: int, seed: int = 20261203, domain: str = "example.com") -> list[Subscriber]:
    rng = random.Random(seed)
    return [Subscriber(f"reader{k}@{domain}", f"读者{k}", rng.choice(STATUSES),
                       tuple(rng.sample(POOL, rng.randint(0, 4)))) for k in range(n)]


@pytest.fixture(scope="module")
def ten_thousand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A subscribers.db with 10,000 subscribers (random tags and statuses, seeded), made once per module."""
    path = tmp_path_factory.mktemp("segments") / "subscribers.db"
    store = SqliteStore(path)
    store.upsert_many(people(10_000))
    store.close()
    return path


def setup(newsletter, db: Path | None = None, audience: str | None = None, extra: str = ""):  # type: ignore[no-untyped-def]
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + '[email]\nfrom_address = "news@example.com"\npostal_address = "上海市 1 号"\n' + extra)
    front = "title: AI 日报：分众\ndate: 2026-11-20\n" + (f"audience: {audience}\n" if audience else "")
    newsletter.issue("2026-11-20-daily.md", front, "第一段。\n")
    if db is not None:
        shutil.copy(db, newsletter.root / "subscribers.db")
    return newsletter.load_config()


def outbox_recipients(folder: Path) -> Counter:
    counts: Counter = Counter()
    for path in folder.glob("*.eml"):
        counts[email.message_from_bytes(path.read_bytes())["To"].rpartition("<")[2].rstrip(">")] += 1
    return counts


def independent(db_path: Path) -> set[str]:
    db = sqlite3.connect(db_path)
    try:
        return {r[0] for r in db.execute(INDEPENDENT)}
    finally:
        db.close()


# ---- the grammar ----


@pytest.mark.parametrize(("value", "expected"), [
    ("paid", Audience(any=("paid",))),
    (["paid", "vip", "paid"], Audience(any=("paid", "vip"))),
    ({"any": ["zh", "en"], "all": ["x"], "not": ["paused"]}, Audience(("zh", "en"), ("x",), ("paused",))),
    ({"not": ["paused"]}, Audience(none=("paused",))),
    (2026, Audience(any=("2026",))),
    (" 中文 ", Audience(any=("中文",))),
])
def test_the_grammar(value, expected):  # type: ignore[no-untyped-def]
    assert parse_audience(value) == expected
    assert Audience.from_key(expected.key()) == Audience(*(tuple(sorted(t)) for t in
                                                            (expected.any, expected.all, expected.none)))


@pytest.mark.parametrize("value", [None, True, [], {}, {"any": []}, {"some": ["x"]}, {"any": "zh"}, [["a"]],
                                   [""], {"any": ["zh"], "not": ["zh"]}, {"all": ["a"], "not": ["a"]}, 1.5j])
def test_bad_values_are_refused(value):  # type: ignore[no-untyped-def]
    with pytest.raises(AudienceError):
        parse_audience(value)


def test_segment_flow_text():
    assert parse_segment("paid") == Audience(any=("paid",))
    assert parse_segment("[paid, vip]") == Audience(any=("paid", "vip"))
    assert parse_segment("{any: [zh], not: [paused]}") == Audience(any=("zh",), none=("paused",))
    for bad in ("{any: [zh]", "", "a\nb", "{any: [zh], not: *a}", "{bogus: [x]}", "true"):
        with pytest.raises(PublisherError) as caught:
            parse_segment(bad)
        assert caught.value.problems[0].field == "--segment"


@pytest.mark.parametrize("value", ["true", "[]", "{any: []}", "{some: [x]}", "{any: zh}", "{}", "[[a]]", "",
                                   "{any: [zh], not: [zh]}"])
def test_bad_audience_in_frontmatter_names_file_and_field(newsletter, value):  # type: ignore[no-untyped-def]
    config = setup(newsletter)
    newsletter.issue("2026-11-21-bad.md", f"title: 坏\ndate: 2026-11-21\naudience: {value}\n")
    with pytest.raises(PublisherError) as caught:
        load_issues(config)
    [problem] = caught.value.problems
    assert (str(problem.file), problem.field, problem.line) == ("content/2026-11-21-bad.md", "audience", 4)
    assert problem.hint


def test_send_only_must_be_a_bool_and_not_with_send_false(newsletter):
    config = setup(newsletter)
    newsletter.issue("2026-11-21-a.md", "title: A\ndate: 2026-11-21\nsend_only: yes please\n")
    newsletter.issue("2026-11-22-b.md", "title: B\ndate: 2026-11-22\nsend_only: true\nsend: false\n")
    with pytest.raises(PublisherError) as caught:
        load_issues(config)
    found = {(str(p.file), p.field) for p in caught.value.problems}
    assert found == {("content/2026-11-21-a.md", "send_only"), ("content/2026-11-22-b.md", "send_only")}


# ---- SQL and Python agree ----


def test_sql_and_python_matchers_agree_on_10000_subscribers(ten_thousand):
    """Every audience over the pool (100 random ones): the SQL condition selects exactly the rows the Python
    matcher does."""
    db = sqlite3.connect(ten_thousand)
    rows = db.execute("SELECT id, tags FROM subscribers").fetchall()
    import json

    tags = {row_id: json.loads(text) for row_id, text in rows}
    rng = random.Random(7)
    for _ in range(100):
        audience = Audience(*(tuple(rng.sample(POOL, rng.randint(0, 3))) for _ in range(3)))
        where, args = audience.sql("subscribers.tags")
        in_sql = {r[0] for r in db.execute(f"SELECT id FROM subscribers WHERE {where}", args)}
        assert in_sql == {row_id for row_id, held in tags.items() if audience.matches(held)}, audience
    db.close()


def test_segment_send_of_10000_matches_an_independent_count(newsletter, ten_thousand):
    config = setup(newsletter, ten_thousand, audience=SEGMENT)
    expected = independent(newsletter.root / "subscribers.db")
    assert 300 < len(expected) < 3000  # a real segment, neither everyone nor no one
    report = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert (report.audience, report.sent, report.failed) == (len(expected), len(expected), 0)
    got = outbox_recipients(newsletter.root / "outbox" / "daily")
    assert set(got) == expected and set(got.values()) == {1}
    again = send_issue(config, "daily", now=NOW, secret=SECRET)
    assert again.sent == 0 and again.already_sent == len(expected)


def test_segment_override_and_dry_run_counts(newsletter, ten_thousand):
    config = setup(newsletter, ten_thousand)
    expected = independent(newsletter.root / "subscribers.db")
    db = sqlite3.connect(newsletter.root / "subscribers.db")
    active = db.execute("SELECT count(*) FROM subscribers WHERE status = 'active'").fetchone()[0]
    db.close()
    dry = send_issue(config, "daily", now=NOW, secret=SECRET, dry_run=True, segment=SEGMENT)
    assert (dry.selected, dry.active, dry.audience) == (len(expected), active, len(expected))
    assert dry.segment_line == (f"audience: any of zh, 大模型, all of paid, none of paused: {len(expected):,} of "
                                f"{active:,} active subscribers")
    assert all("reader" in p for p in dry.preview) and not (newsletter.root / "outbox").exists()
    everyone = send_issue(config, "daily", now=NOW, secret=SECRET, dry_run=True)
    assert (everyone.selected, everyone.active, everyone.segment) == (active, active, "everyone")
    report = send_issue(config, "daily", now=NOW, secret=SECRET, segment=SEGMENT)
    assert report.sent == len(expected)
    assert set(outbox_recipients(newsletter.root / "outbox" / "daily")) == expected


def test_a_started_send_refuses_another_audience(newsletter, ten_thousand):
    config = setup(newsletter, ten_thousand)
    first = send_issue(config, "daily", now=NOW, secret=SECRET, segment="paid", limit=5)
    assert first.sent == 5
    for other in (None, "vip", "[paid, vip]"):
        with pytest.raises(PublisherError, match="started with the audience any of paid") as caught:
            send_issue(config, "daily", now=NOW, secret=SECRET, segment=other)
        assert "--segment" in (caught.value.problems[0].hint or "")
    with pytest.raises(PublisherError, match="started with"):
        send_issue(config, "daily", now=NOW, secret=SECRET, segment="vip", dry_run=True)
    rest = send_issue(config, "daily", now=NOW, secret=SECRET, segment="[paid]")  # the same audience, written
    assert rest.sent + 5 == rest.audience                                          # another way: it goes on
    assert len(outbox_recipients(newsletter.root / "outbox" / "daily")) == rest.audience


def test_the_python_path_agrees_through_the_ses_contact_store(newsletter, aws):
    """The Python path with the real non-SQLite store: the SES contact list on the moto server (fewer people:
    every contact is an HTTP call). The SQLite store is filled with the same people, and both choose alike."""
    from publisher.ses_contacts import SesContactStore

    crowd = people(160, seed=5)
    name = f"news-{uuid.uuid4().hex[:12]}"
    config = setup(newsletter, extra=f'[subscribers]\nses_contact_list = "{name}"\n')
    ses = SesContactStore(config)
    ses.upsert_many(crowd)
    twin = SqliteStore(newsletter.root / "twin.db")
    twin.upsert_many(crowd)
    expected = independent(newsletter.root / "twin.db")
    audience = parse_segment(SEGMENT)
    assert count_audience(ses, audience) == count_audience(twin, audience) == (len(expected),
                                                                               twin.count("active"))
    report = send_issue(config, "daily", now=NOW, secret=SECRET, segment=SEGMENT, store=ses)
    assert report.sent == len(expected) > 0
    assert set(outbox_recipients(newsletter.root / "outbox" / "daily")) == expected
    ses.close()
    twin.close()


# ---- send_only: emailed, not published ----


def test_send_only_issue_is_off_the_web_but_sendable(newsletter, tmp_path):
    from publisher.build import build

    config = setup(newsletter)
    newsletter.issue("2026-11-22-secret.md", "title: 只发邮件的特刊\ndate: 2026-11-22\ntags: [独家特刊]\n"
                     "send_only: true\naudience: paid\n", "订阅者专享内容 exclusive-body-text。\n")
    store = SqliteStore(newsletter.root / "subscribers.db")
    store.upsert_many([Subscriber("paid@example.com", tags=("paid",)), Subscriber("free@example.com")])
    store.close()
    out = tmp_path / "dist"
    result = build(config, now=NOW, output=out, use_cache=False)
    assert [i.slug for i in result.issues] == ["daily"] and result.scheduled_left_out == 0
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"index.html", "rss.xml", "atom.xml", "feed.json", "sitemap.xml", "issues/daily/index.html"} <= names
    assert not any("secret" in n or "独家" in n for n in names)
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in ("只发邮件的特刊", "exclusive-body-text", "issues/secret", "独家特刊"):
                assert needle.encode() not in data, (path, needle)
    report = send_issue(config, "secret", now=NOW, secret=SECRET)
    assert report.sent == 1
    assert set(outbox_recipients(newsletter.root / "outbox" / "secret")) == {"paid@example.com"}
