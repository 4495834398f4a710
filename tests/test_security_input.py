"""Hostile input from subscribers, imports and the store, and config values that once became tracebacks.

Every subscriber-supplied value is checked where it enters a store; the message factory refuses a header value
with a line break whatever its origin; the config refuses what would break a header or overflow; a damaged
database, a formula in an export and an escape code in a name are each handled without harm.
"""

from __future__ import annotations

import contextlib
import csv
import email
import os
import secrets
import sqlite3
from email import policy
from email.header import decode_header, make_header
from pathlib import Path

import httpx
import pytest
import uvicorn
from conftest import NOW, free_port, serve_in_thread
from waiting import wait_for

from publisher.errors import PublisherError
from publisher.sending import send_issue
from publisher.subscribers import SqliteStore, Subscriber

SECRET = b"security-input-secret-" * 2
INJECTED = "Eve\r\nBcc: victim@evil.example\r\nX-Injected: 1"
PHISHING = "Eve\n\nPHISHING: your account is locked, log in at http://evil.example/"
BODY = "正文第一段，原样送达。"


def setup(newsletter, extra: str = ""):  # type: ignore[no-untyped-def]
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + '[email]\nfrom_address = "news@news.example.com"\n' + extra)
    newsletter.issue("2026-11-20-one.md", 'title: "第一期"\ndate: 2026-11-20\n', BODY + "\n")
    return newsletter.load_config()


def sent_messages(newsletter, slug: str = "one") -> list[tuple[bytes, email.message.EmailMessage]]:
    folder = newsletter.root / "outbox" / slug
    raws = [p.read_bytes() for p in sorted(folder.glob("*.eml"))] if folder.exists() else []
    return [(raw, email.message_from_bytes(raw, policy=policy.default)) for raw in raws]


def assert_clean(raw: bytes, message: email.message.EmailMessage) -> None:
    """No header was added by a value, and the body is the issue's."""
    assert "Bcc" not in message and "X-Injected" not in message
    assert b"PHISHING" not in raw and b"\r\nBcc:" not in raw and b"\nX-Injected:" not in raw
    assert message.defects == [] and len(message["To"].addresses) == 1
    assert BODY in message.get_body(("plain",)).get_content()
    assert BODY in message.get_body(("html",)).get_content()


def one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def insert_raw(path: Path, rows: list[tuple[str, str]]) -> None:
    """Rows as a store written before validation existed (or by another tool) may hold them."""
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    db.executemany("INSERT INTO subscribers (email, name, status, tags, created_at, changed_at) "
                   "VALUES (?, ?, 'active', '[]', '2026-01-01', '2026-01-01')", rows)
    db.commit()
    db.close()


# ---- 1. header and body injection ----


@pytest.mark.parametrize(("subscriber", "field"), [
    (Subscriber("eve@example.com", INJECTED), "name"),
    (Subscriber("eve@example.com", PHISHING), "name"),
    (Subscriber("eve@example.com", "Eve\u2028Bcc: victim@evil.example"), "name"),
    (Subscriber("eve@example.com", "\x1b[2J\x1b[31mEve"), "name"),
    (Subscriber("eve@example.com", "Eve\u202egnp.exe"), "name"),  # a direction override
    (Subscriber("eve@example.com", "x" * 101), "name"),
    (Subscriber("eve@example.com", "Eve", tags=("vip\r\nBcc: x",)), "tags"),
    (Subscriber("eve@example.com", "Eve", tags=("t" * 41,)), "tags"),
    (Subscriber("eve@example.com", "Eve", tags=tuple(f"t{n}" for n in range(21))), "tags"),
    (Subscriber("eve@example.com\r\nBcc: victim@evil.example"), "email"),
])
def test_the_store_refuses_unsafe_values_naming_the_field(tmp_path, subscriber, field):
    store = SqliteStore(tmp_path / "subscribers.db")
    with pytest.raises(PublisherError) as info:
        store.upsert(subscriber)
    assert info.value.problems[0].field == field
    with pytest.raises(PublisherError):
        store.upsert_many([Subscriber("ok@example.com"), subscriber])
    assert store.count() == 0  # an import is all or nothing


def test_the_store_normalises_and_keeps_what_scripts_need(tmp_path):
    store = SqliteStore(tmp_path / "subscribers.db")
    names = {"a@example.com": "👩‍💻 Ada",  # ZWJ emoji sequence
             "b@example.com": "نامه‌نگار",  # Persian with ZWNJ
             "c@example.com": "张三"}
    for address, name in names.items():
        store.upsert(Subscriber(address, name))
    assert {s.email: s.name for s in store.iter()} == names
    store.upsert(Subscriber("D@Example.com", "  Ｊａｎｅ　Ｄｏｅ  ", tags=("ｖｉｐ", "vip", " 早鸟 ")))
    stored = store.get("d@example.com")
    assert (stored.name, stored.tags) == ("Jane Doe", ("vip", "早鸟"))  # NFKC: one name, one tag


def test_cli_add_refuses_an_injected_name_in_one_line(newsletter, run_cli):
    root = str(newsletter.root)
    line = one_error_line(run_cli("-C", root, "subscribers", "add", "eve@example.com", "--name", INJECTED))
    assert "name: contains the control character U+000D" in line
    assert "eve@example.com" not in run_cli("-C", root, "subscribers", "list").stdout


def test_csv_import_skips_injected_rows_by_line(newsletter, run_cli, tmp_path):
    path = tmp_path / "in.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerows([("email", "name", "tags"), ("ok@example.com", "好", "a"), ("eve@example.com", INJECTED, ""),
                          ("mallory@example.com", "M", "vip\nBcc: x"), ("z@example.com", PHISHING, "")])
    result = run_cli("-C", str(newsletter.root), "subscribers", "import", str(path))
    assert result.exit_code == 1 and "1 added" in result.stdout and "3 bad rows skipped" in result.stdout
    # A quoted cell spans physical lines (read as text, CRLF is LF); the problem names the line the row ends on.
    assert "in.csv:5: name: contains the control character U+000A" in result.stderr
    assert "in.csv:7: tags: contains the control character U+000A" in result.stderr
    assert "in.csv:10: name: contains the control character U+000A" in result.stderr
    assert [s.email for s in SqliteStore(newsletter.root / "subscribers.db").iter()] == ["ok@example.com"]


def test_a_send_from_a_store_with_injected_names_adds_no_header(newsletter):
    config = setup(newsletter)
    insert_raw(newsletter.root / "subscribers.db", [("eve@example.com", INJECTED), ("bob@example.com", "Bob"),
                                                    ("zoe@example.com", PHISHING), ("li@example.com", "李四")])
    report = send_issue(config, "one", now=NOW, secret=SECRET)
    assert (report.sent, report.failed) == (2, 2)  # refused one by one; the run goes on
    messages = sent_messages(newsletter)
    assert sorted(m["To"].addresses[0].addr_spec for _, m in messages) == ["bob@example.com", "li@example.com"]
    for raw, message in messages:
        assert_clean(raw, message)
    db = sqlite3.connect(newsletter.root / "subscribers.db")
    failed = dict(db.execute("SELECT email, last_error FROM deliveries WHERE state = 'failed'"))
    assert set(failed) == {"eve@example.com", "zoe@example.com"} and "control character" in failed["eve@example.com"]


def test_the_message_factory_refuses_a_line_break_whatever_its_origin(newsletter):
    from publisher import markdown
    from publisher.content import load_issues
    from publisher.emails import MessageFactory, Recipient, render_email, sender_of
    from publisher.transports import PermanentError

    config = setup(newsletter)
    issue = load_issues(config)[0]
    factory = MessageFactory(render_email(config, issue, markdown.to_html(issue.body)), sender_of(config), SECRET,
                             date=NOW)
    for recipient in (Recipient("eve@example.com", INJECTED), Recipient("eve@example.com\r\nBcc: x@evil.example"),
                      Recipient("eve@example.com", "Eve\x85Bcc: x"), Recipient("user@münchen.de", "U")):
        with pytest.raises(PublisherError) as info:
            factory.message(recipient)
        assert isinstance(info.value, PermanentError)  # the sending loop fails that message and goes on


@pytest.mark.parametrize("name", ['Ann "the" \\ Smith, PhD', "=?utf-8?b?UGF5UGFsIFN1cHBvcnQ=?=", "张" * 100,
                                  "Zoë 👩‍💻 O'Brien (editor)", "李四"])
def test_the_to_header_carries_any_valid_name_exactly(newsletter, name):
    config = setup(newsletter)
    SqliteStore(newsletter.root / "subscribers.db").upsert(Subscriber("reader@example.com", name))
    send_issue(config, "one", now=NOW, secret=SECRET)
    ((raw, message),) = sent_messages(newsletter)
    assert_clean(raw, message)
    (address,) = message["To"].addresses
    assert address.addr_spec == "reader@example.com"
    if name.isascii() and "=?" not in name:
        assert address.display_name == name
    else:  # encoded words; CPython's parser keeps the folding space between two of them (RFC 2047 drops it)
        to = raw.split(b"\r\nTo: ", 1)[1].split(b"\r\nMessage-ID:", 1)[0].decode("ascii")
        assert str(make_header(decode_header(to))) == f"{name} <reader@example.com>"
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and max(len(line) for line in head.split(b"\r\n")) <= 998
    assert all(len(word) <= 75 for word in head.replace(b"\r\n", b" ").split(b" ") if word.startswith(b"=?utf-8?"))


def test_the_endpoint_stores_no_injected_name(newsletter):
    from publisher.subscription import create_app

    config = setup(newsletter, "[serve]\nrate_per_ip = 1000\n")
    port = free_port()
    server, thread = serve_in_thread(uvicorn.Config(create_app(config, secret=SECRET), host="127.0.0.1", port=port,
                                                    log_level="critical"))
    try:
        base = f"http://127.0.0.1:{port}"
        for name in (INJECTED, PHISHING):
            httpx.post(f"{base}/subscribe", data={"email": "eve@example.com", "name": name})
            httpx.post(f"{base}/subscribe", json={"email": "zoe@example.com", "name": name})
        # Sign-ups are handled in order: once this one is stored, the ones before it were handled too.
        httpx.post(f"{base}/subscribe", data={"email": "last@example.com", "name": "Last"})
        path = newsletter.root / "subscribers.db"

        def stored(address: str) -> bool:
            if not path.exists():
                return False
            store = SqliteStore(path)
            try:
                return store.get(address) is not None
            finally:
                store.close()

        wait_for(lambda: stored("last@example.com"), timeout=10, what="the last sign-up to be stored")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    names = {s.email: s.name for s in SqliteStore(path).iter()}
    assert names.get("eve@example.com", "") == "" and names.get("zoe@example.com", "") == ""
    assert all("\n" not in n and "\r" not in n for n in names.values())


def test_the_ses_contact_store_validates_too(newsletter, aws):
    import uuid

    import boto3

    from publisher.ses_contacts import SesContactStore

    name = f"news-{uuid.uuid4().hex[:12]}"
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + f'[subscribers]\nses_contact_list = "{name}"\n')
    store = SesContactStore(newsletter.load_config())
    with pytest.raises(PublisherError) as info:
        store.upsert(Subscriber("eve@example.com", INJECTED))
    assert info.value.problems[0].field == "name"
    assert store.upsert(Subscriber("ok@example.com", "Ｏｋ")) == "added"
    assert store.get("ok@example.com").name == "Ok"
    contacts = boto3.client("sesv2").list_contacts(ContactListName=name)["Contacts"]
    assert [c["EmailAddress"] for c in contacts] == ["ok@example.com"]


# ---- 2. internationalised addresses ----


def test_an_idn_address_is_stored_as_punycode_and_gets_a_valid_message(newsletter, run_cli):
    config = setup(newsletter)
    root = str(newsletter.root)
    added = run_cli("-C", root, "subscribers", "add", "User@MÜNCHEN.de", "--name", "Jürgen")
    assert added.exit_code == 0 and added.stdout.strip() == "Added user@xn--mnchen-3ya.de."
    assert run_cli("-C", root, "subscribers", "list").stdout == "user@xn--mnchen-3ya.de\tactive\tJürgen\n"
    again = run_cli("-C", root, "subscribers", "add", "user@münchen.de")  # the same mailbox, written the other way
    assert "already subscribed" in again.stdout
    report = send_issue(config, "one", now=NOW, secret=SECRET)
    assert report.sent == 1
    ((raw, message),) = sent_messages(newsletter)
    assert_clean(raw, message)
    assert raw.isascii() and message["To"].addresses[0].addr_spec == "user@xn--mnchen-3ya.de"


def test_a_non_ascii_local_part_is_refused_clearly_at_every_entry(newsletter, run_cli, tmp_path):
    root = str(newsletter.root)
    line = one_error_line(run_cli("-C", root, "subscribers", "add", "用户@例子.中国"))
    assert "EMAIL: '用户@例子.中国' is not supported" in line and "non-ASCII characters before the @" in line
    path = tmp_path / "in.csv"
    path.write_text("email,name\n用户@例子.中国,用户\nok@例子.中国,好\n", encoding="utf-8")
    result = run_cli("-C", root, "subscribers", "import", str(path))
    assert "in.csv:2: email: '用户@例子.中国' is not supported" in result.stderr and "1 added" in result.stdout
    assert run_cli("-C", root, "subscribers", "list").stdout.split("\t")[0] == "ok@xn--fsqu00a.xn--fiqs8s"
    with pytest.raises(PublisherError, match="non-ASCII characters before the @"):
        SqliteStore(newsletter.root / "subscribers.db").upsert(Subscriber("用户@example.com"))


# ---- 3. config ----


@pytest.mark.parametrize(("section", "line", "key"), [
    ("site", 'title = "AI\\r\\nBcc: victim@evil.example"', "site.title"),
    ("site", 'url = "https://-bad-.例子/"', "site.url"),
    ("email", 'subject_prefix = "[AI]\\nX-Injected: 1"', "email.subject_prefix"),
    ("email", 'from_name = "Eve\\r\\nBcc: victim@evil.example"', "email.from_name"),
    ("email", 'default_name = "读\\u2028者"', "email.default_name"),
    ("email", 'from_address = "新闻@news.example.com"', "email.from_address"),
    ("email", 'rate = nan', "email.rate"),
    ("email", 'rate = inf', "email.rate"),
    ("feeds", "limit = 99999999999", "feeds.limit"),
    ("schedule", 'every = "99999999999d"', "schedule.every"),
    ("schedule", f'max_lateness = "{"9" * 400}s"', "schedule.max_lateness"),
    ("serve", 'confirm_within = "99999999999d"', "serve.confirm_within"),
    ("serve", 'rate_window = "400d"', "serve.rate_window"),
])
def test_config_values_that_break_headers_or_overflow_are_one_line_errors(newsletter, run_cli, section, line, key):
    text = newsletter.root.joinpath("publisher.toml").read_text()
    if section == "site":
        name = line.split(" = ")[0]
        text = "\n".join(line if old.startswith(name + " = ") else old for old in text.splitlines()) + "\n"
    else:
        text += f"[{section}]\n{line}\n"
    newsletter.config(text)
    newsletter.issue("2026-11-20-one.md")
    error = one_error_line(run_cli("-C", str(newsletter.root), "check"))
    assert error.startswith(f"error: publisher.toml: {key}: {key} ")


def test_config_overflow_from_the_environment_is_one_line(newsletter, run_cli, monkeypatch):
    monkeypatch.setenv("PUBLISHER_SERVE_MAX_BODY", "9" * 30)
    error = one_error_line(run_cli("-C", str(newsletter.root), "check"))
    assert "serve.max_body" in error and "environment variable PUBLISHER_SERVE_MAX_BODY" in error


def test_config_idn_addresses_and_urls_become_ascii_and_send(newsletter):
    setup(newsletter, 'reply_to = "editor@例子.中国"\nunsubscribe_url = "https://例子.中国/退订?列表=日报"\n')
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      .replace('from_address = "news@news.example.com"', 'from_address = "news@münchen.de"'))
    config = newsletter.load_config()
    assert config.email.from_address == "news@xn--mnchen-3ya.de"
    assert config.email.reply_to == "editor@xn--fsqu00a.xn--fiqs8s"
    assert config.email.unsubscribe_url == ("https://xn--fsqu00a.xn--fiqs8s/%E9%80%80%E8%AE%A2"
                                            "?%E5%88%97%E8%A1%A8=%E6%97%A5%E6%8A%A5")
    SqliteStore(newsletter.root / "subscribers.db").upsert(Subscriber("reader@example.com", "读者"))
    assert send_issue(config, "one", now=NOW, secret=SECRET).sent == 1
    ((raw, message),) = sent_messages(newsletter)
    assert_clean(raw, message)
    assert raw.isascii() and message["From"].addresses[0].addr_spec == "news@xn--mnchen-3ya.de"
    assert message["List-Unsubscribe"].startswith("<https://xn--fsqu00a.xn--fiqs8s/%E9%80%80%E8%AE%A2?")


def test_a_chinese_site_url_gives_an_ascii_default_unsubscribe_link(newsletter):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      .replace("https://news.example.com/daily/", "https://news.example.com/日报/"))
    config = setup(newsletter)
    SqliteStore(newsletter.root / "subscribers.db").upsert(Subscriber("reader@example.com"))
    assert send_issue(config, "one", now=NOW, secret=SECRET).sent == 1
    ((raw, message),) = sent_messages(newsletter)
    assert raw.isascii()
    assert message["List-Unsubscribe"].startswith("<https://news.example.com/%E6%97%A5%E6%8A%A5/unsubscribe?token=")


@pytest.mark.parametrize(("frontmatter", "field"), [
    ('title: "第一期\\r\\nBcc: victim@evil.example"\ndate: 2026-11-20\n', "title"),
    ('title: "第一期"\nsubject: "Hi\\nX-Injected: 1"\ndate: 2026-11-20\n', "subject"),
])
def test_a_line_break_in_an_issue_subject_is_a_check_error(newsletter, run_cli, frontmatter, field):
    setup(newsletter)
    newsletter.issue("2026-11-20-one.md", frontmatter, BODY + "\n")
    error = one_error_line(run_cli("-C", str(newsletter.root), "check"))
    assert error.startswith(f"error: content/2026-11-20-one.md: {field}: contains a line break (U+000")


# ---- 4. a damaged database ----


def damage(path: Path, how: str) -> bytes:
    store = SqliteStore(path)
    store.upsert_many(Subscriber(f"r{n}@example.com", "读者" * 20) for n in range(2000))
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    damaged = os.urandom(len(data)) if how == "random" else data[: len(data) // 2]
    path.write_bytes(damaged)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return damaged


@pytest.mark.parametrize("how", ["random", "truncated"])
def test_a_damaged_database_is_one_clear_line(newsletter, run_cli, monkeypatch, how):
    setup(newsletter)
    path = newsletter.root / "subscribers.db"
    damaged = damage(path, how)
    monkeypatch.setenv("PUBLISHER_SECRET", secrets.token_urlsafe(32))
    root = str(newsletter.root)
    for command in (("subscribers", "list"), ("subscribers", "count"), ("subscribers", "add", "a@example.com"),
                    ("send", "one")):
        error = one_error_line(run_cli("-C", root, *command))
        assert error.startswith("error: subscribers.db: is damaged and cannot be read (")
        assert "restore it from a backup" in error
    assert path.read_bytes() == damaged  # never repaired or replaced behind the user's back


# ---- 5. export and list ----


def test_export_neutralises_formulas_and_import_round_trips(newsletter, run_cli, tmp_path):
    root = str(newsletter.root)
    names = ['=HYPERLINK("http://evil.example","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "'quoted",
             "'=kept"]
    for n, name in enumerate(names):
        assert run_cli("-C", root, "subscribers", "add", f"r{n}@example.com", "--name", name, "--tag",
                       "=tag").exit_code == 0
    out = tmp_path / "out.csv"
    assert run_cli("-C", root, "subscribers", "export", str(out)).exit_code == 0
    rows = list(csv.reader(out.open(encoding="utf-8", newline="")))[1:]
    assert [row[1] for row in rows] == ["'" + name for name in names]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row)
    other = tmp_path / "other"
    other.mkdir()
    (other / "publisher.toml").write_text(newsletter.root.joinpath("publisher.toml").read_text(), encoding="utf-8")
    result = run_cli("-C", str(other), "subscribers", "import", str(out))
    assert result.exit_code == 0 and f"{len(names)} added" in result.stdout
    imported = list(SqliteStore(other / "subscribers.db").iter())
    assert [(s.name, s.tags) for s in imported] == [(name, ("=tag",)) for name in names]


def test_list_shows_control_characters_escaped(newsletter, run_cli):
    insert_raw(newsletter.root / "subscribers.db", [("a@example.com", "\x1b[2J\x1b[31mred\x1b[0m"),
                                                    ("b@example.com", "evil\u202etxt.exe"),
                                                    ("c@example.com", INJECTED)])
    out = run_cli("-C", str(newsletter.root), "subscribers", "list").stdout
    assert "\x1b" not in out and "\u202e" not in out and "\r" not in out
    assert out.splitlines() == ["a@example.com\tactive\t\\x1b[2J\\x1b[31mred\\x1b[0m",
                                "b@example.com\tactive\tevil\\u202etxt.exe",
                                "c@example.com\tactive\tEve\\r\\nBcc: victim@evil.example\\r\\nX-Injected: 1"]
