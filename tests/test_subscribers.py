"""The SQLite subscriber store and the `publisher subscribers` commands."""

from __future__ import annotations

import csv
import sqlite3
import threading

import pytest

from publisher.errors import PublisherError
from publisher.subscribers import SqliteStore, Subscriber, normalize_email, read_csv


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "subscribers.db")
    yield s
    s.close()


def test_schema_is_versioned_and_created_on_first_use(tmp_path):
    SqliteStore(tmp_path / "s.db").close()
    db = sqlite3.connect(tmp_path / "s.db")
    assert db.execute("SELECT version FROM schema_versions WHERE component = 'subscribers'").fetchone() == (2,)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.execute("UPDATE schema_versions SET version = 99")
    db.commit()
    with pytest.raises(PublisherError, match="newer publisher"):
        SqliteStore(tmp_path / "s.db")


def test_addresses_are_validated_and_normalized():
    assert normalize_email("  Zhang.San@Example.COM ") == "zhang.san@example.com"
    for bad in ("", "no-at-sign", "a@", "a b@example.com", "a@example..com"):
        with pytest.raises(ValueError):
            normalize_email(bad)


def test_upsert_keeps_suppressed_addresses_unless_reactivated(store):
    assert store.upsert(Subscriber("a@example.com", "张三", tags=("vip",))) == "added"
    assert store.upsert(Subscriber("a@example.com")) == "unchanged"
    assert store.upsert(Subscriber("a@example.com", "张三丰", tags=("beta",))) == "updated"
    assert store.get("a@example.com").tags == ("vip", "beta")
    for status in ("unsubscribed", "bounced", "complained"):
        store.set_status("a@example.com", status)
        assert store.upsert(Subscriber("a@example.com")) == "kept"
        assert store.get("a@example.com").status == status
    assert store.upsert(Subscriber("a@example.com"), reactivate=True) == "updated"
    assert store.get("a@example.com").status == "active"


def test_iter_streams_and_counts(store):
    store.upsert_many(Subscriber(f"u{n}@example.com", status="active" if n % 3 else "unconfirmed")
                      for n in range(2500))
    assert store.count() == 2500 and store.count("unconfirmed") == 834
    emails = [s.email for s in store.iter("active")]
    assert len(emails) == 1666 and len(set(emails)) == 1666
    assert emails[0] == "u1@example.com"  # in the order they subscribed


def test_concurrent_writers_do_not_lock(tmp_path):
    path = tmp_path / "s.db"
    SqliteStore(path).close()
    errors = []

    def add(n):
        try:
            s = SqliteStore(path)
            for k in range(50):
                s.upsert(Subscriber(f"t{n}-{k}@example.com"))
            s.close()
        except Exception as exc:  # "database is locked" would land here
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    s = SqliteStore(path)
    assert s.count() == 400


def test_csv_reports_bad_rows_by_line(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("Email,Name,Tags\nok@example.com,好,a;b\nbroken,坏,\n\nx@example.com,,\n"
                    "ok@example.com,dup,\ny@example.com,,\n", encoding="utf-8")
    good, problems = read_csv(path)
    assert [s.email for s in good] == ["ok@example.com", "x@example.com", "y@example.com"]
    assert good[0].tags == ("a", "b") and good[0].name == "好"
    assert [(p.line, p.field) for p in problems] == [(3, "email")]
    (tmp_path / "nohead.csv").write_text("a@example.com\n")
    with pytest.raises(PublisherError, match="has no 'email' column"):
        read_csv(tmp_path / "nohead.csv")


def test_cli_add_list_count_remove(newsletter, run_cli):
    root = str(newsletter.root)
    assert run_cli("-C", root, "subscribers", "add", "A@Example.com", "--name", "张三").exit_code == 0
    assert run_cli("-C", root, "subscribers", "add", "b@example.com", "--status", "unconfirmed").exit_code == 0
    listed = run_cli("-C", root, "subscribers", "list").stdout
    assert "a@example.com\tactive\t张三" in listed and "b@example.com\tunconfirmed" in listed
    assert "active\t1" in run_cli("-C", root, "subscribers", "count").stdout
    bad = run_cli("-C", root, "subscribers", "add", "nope")
    assert bad.exit_code == 1 and "not a valid email address" in bad.stderr
    assert run_cli("-C", root, "subscribers", "remove", "a@example.com").exit_code == 0
    assert "a@example.com\tunsubscribed" in run_cli("-C", root, "subscribers", "list").stdout
    again = run_cli("-C", root, "subscribers", "add", "a@example.com")
    assert "not reactivated" in again.stdout
    assert "a@example.com\tunsubscribed" in run_cli("-C", root, "subscribers", "list").stdout
    assert run_cli("-C", root, "subscribers", "remove", "a@example.com", "--forget").exit_code == 0
    assert "a@example.com" not in run_cli("-C", root, "subscribers", "list").stdout
    missing = run_cli("-C", root, "subscribers", "remove", "zzz@example.com")
    assert missing.exit_code == 1 and "is not a subscriber" in missing.stderr


def test_cli_import_is_idempotent_and_never_reactivates(newsletter, run_cli, tmp_path):
    root = str(newsletter.root)
    rows = "email,name\n" + "".join(f"p{n}@example.com,读者{n}\n" for n in range(300)) + "bad-row,x\n"
    path = tmp_path / "list.csv"
    path.write_text(rows, encoding="utf-8")
    first = run_cli("-C", root, "subscribers", "import", str(path))
    assert first.exit_code == 1  # some rows were bad: said, and the good ones are in
    assert "300 added" in first.stdout and "list.csv:302: email:" in first.stderr
    run_cli("-C", root, "subscribers", "remove", "p7@example.com")
    second = run_cli("-C", root, "subscribers", "import", str(path))
    assert "0 added" in second.stdout and "299 unchanged" in second.stdout and "1 kept unsubscribed" in second.stdout
    assert "p7@example.com\tunsubscribed" in run_cli("-C", root, "subscribers", "list").stdout
    third = run_cli("-C", root, "subscribers", "import", str(path), "--reactivate")
    assert "1 updated" in third.stdout
    assert "active\t300" in run_cli("-C", root, "subscribers", "count").stdout


def test_cli_export_round_trips(newsletter, run_cli, tmp_path):
    root = str(newsletter.root)
    run_cli("-C", root, "subscribers", "add", "a@example.com", "--name", "张三", "--tag", "vip", "--tag", "早鸟")
    run_cli("-C", root, "subscribers", "add", "b@example.com")
    out = tmp_path / "out.csv"
    assert run_cli("-C", root, "subscribers", "export", str(out)).exit_code == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert rows[0]["email"] == "a@example.com" and rows[0]["name"] == "张三" and rows[0]["tags"] == "vip;早鸟"
    good, problems = read_csv(out)
    assert problems == [] and good[0].tags == ("vip", "早鸟")
