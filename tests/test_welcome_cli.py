"""The welcome email from the command line: `email _welcome`, `subscribers import --welcome`,
`import SOURCE --welcome` and `publish --due` sending what serve left pending."""

from __future__ import annotations

import zipfile

import pytest
from test_welcome import SUBJECT, make_config, welcomes

from publisher import welcome
from publisher.subscribers import SqliteStore, Subscriber

ENV_SECRET = "welcome-cli-secret-7Gq2LmZx9"


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv("PUBLISHER_SECRET", ENV_SECRET)


def test_email_welcome_prints_the_welcome(newsletter, run_cli, secret):
    make_config(newsletter)
    result = run_cli("-C", str(newsletter.root), "email", welcome.SLUG, "--eml")
    assert result.exit_code == 0, result.output
    assert "List-Unsubscribe:" in result.output and "=?utf-8?" in result.output.lower()
    text = run_cli("-C", str(newsletter.root), "email", welcome.SLUG, "--text")
    assert "每天早上" in text.output


def test_subscribers_import_welcomes_only_with_the_flag(newsletter, run_cli, secret, tmp_path):
    make_config(newsletter)
    first = tmp_path / "first.csv"
    first.write_text("email,name\nold@example.com,老读者\n", encoding="utf-8")
    plain = run_cli("-C", str(newsletter.root), "subscribers", "import", str(first))
    assert plain.exit_code == 0 and welcomes(newsletter) == []
    second = tmp_path / "second.csv"
    second.write_text("email,name,status\nold@example.com,,active\nnew@example.com,新读者,active\n"
                      "wait@example.com,,unconfirmed\n", encoding="utf-8")
    result = run_cli("-C", str(newsletter.root), "subscribers", "import", str(second), "--welcome")
    assert result.exit_code == 0, result.output
    assert "welcome: 1 message sent" in result.output
    assert [m["To"] for m in welcomes(newsletter)] == ["新读者 <new@example.com>"]
    assert str(welcomes(newsletter)[0]["Subject"]) == SUBJECT


def test_import_welcome_needs_the_welcome_file(newsletter, run_cli, secret, tmp_path):
    make_config(newsletter, with_welcome=False)
    export = tmp_path / "list.csv"
    export.write_text("email\na@example.com\n", encoding="utf-8")
    result = run_cli("-C", str(newsletter.root), "import", "csv", str(export), "--welcome")
    assert result.exit_code == 1 and "_welcome.md" in result.output
    assert SqliteStore(newsletter.root / "subscribers.db").count() == 0  # refused before anything was stored


def test_a_mailchimp_import_welcomes_the_subscribed_only(newsletter, run_cli, secret, tmp_path):
    make_config(newsletter)
    export = tmp_path / "audience.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.writestr("subscribed_members_export_b6300f8dad.csv", "Email Address,First Name\nin@example.com,甲\n")
        archive.writestr("unsubscribed_members_export_b6300f8dad.csv", "Email Address,UNSUB_TIME\n"
                         "out@example.com,2026-01-01 00:00:00\n")
    dry = run_cli("-C", str(newsletter.root), "import", "mailchimp", str(export), "--welcome", "--dry-run")
    assert dry.exit_code == 0 and welcomes(newsletter) == [] and "welcome:" not in dry.output
    result = run_cli("-C", str(newsletter.root), "import", "mailchimp", str(export), "--welcome")
    assert result.exit_code == 0, result.output
    assert [m["To"] for m in welcomes(newsletter)] == ["甲 <in@example.com>"]
    again = run_cli("-C", str(newsletter.root), "import", "mailchimp", str(export), "--welcome")
    assert "welcome: 0 messages sent" in again.output and len(welcomes(newsletter)) == 1


def test_publish_due_sends_the_welcomes_left_pending(newsletter, run_cli, secret):
    config = make_config(newsletter)
    store = SqliteStore(newsletter.root / "subscribers.db")
    with welcome.queue_activations(config, store):  # as serve's confirm does, before its worker could send
        store.upsert_many([Subscriber("pending@example.com", "待发")])
    store.close()
    assert welcomes(newsletter) == []
    result = run_cli("-C", str(newsletter.root), "publish", "--due")
    assert result.exit_code == 0, result.output
    assert [m["To"] for m in welcomes(newsletter)] == ["待发 <pending@example.com>"]
    run_cli("-C", str(newsletter.root), "publish", "--due")
    assert len(welcomes(newsletter)) == 1
