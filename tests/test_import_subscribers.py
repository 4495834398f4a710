"""`publisher import mailchimp|listmonk|substack|csv`: every status mapping, consent never widened, idempotence,
dry runs, bad exports named. Fixtures are written here in the shape docs/import-formats.md documents (with its
sources): Mailchimp's per-status files in a zip, listmonk's CSV, Substack's email list beside posts.csv."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from conftest import CONFIG

from publisher.errors import PublisherError
from publisher.importers import buttondown, csv_file, ghost, listmonk, mailchimp, substack, writer
from publisher.subscribers import SqliteStore, Subscriber

COMMON = ("Email Address,First Name,Last Name,Company,Position,ZIP Code,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,"
          "CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION")
MAILCHIMP = {
    "members_export_b6300f8dad/subscribed_members_export_b6300f8dad.csv":
        f"{COMMON},LAST_CHANGED,LEID,EUID,NOTES,TAGS\n"
        's1@example.com, 张 , 三 ,,,,2,2018-02-05 19:28:23,,2018-02-05 19:29:00,,,,,,,,,2018-02-05 19:29:00,1,a,,'
        '"""读者"",""AI, ML"""\n'
        "s2@example.com,Ada,Lovelace,,,,2,,,,,,,,,,,,,2,b,,\n"
        "both@example.com,Bo,,,,,2,,,,,,,,,,,,,3,c,,\n"
        "was-unsubscribed-here@example.com,Here,,,,,2,,,,,,,,,,,,,4,d,,\n",
    "members_export_b6300f8dad/unsubscribed_members_export_b6300f8dad.csv":
        f"{COMMON},UNSUB_TIME,UNSUB_CAMPAIGN_TITLE,UNSUB_CAMPAIGN_ID,UNSUB_REASON,UNSUB_REASON_OTHER,LEID,EUID,"
        "NOTES,TAGS\n"
        "u1@example.com,U,,,,,1,,,,,,,,,,,,2019-01-01 00:00:00,,,,,5,e,,\n"
        "both@example.com,Bo,,,,,1,,,,,,,,,,,,2019-01-01 00:00:00,,,,,3,c,,\n",
    "members_export_b6300f8dad/cleaned_members_export_b6300f8dad.csv":
        f"{COMMON},CLEAN_TIME,CLEAN_CAMPAIGN_TITLE,CLEAN_CAMPAIGN_ID,LEID,EUID,NOTES,TAGS\n"
        "c1@example.com,C,,,,,1,,,,,,,,,,,,2019-01-01 00:00:00,,,6,f,,\n",
    "members_export_b6300f8dad/nonsubscribed_members_export_b6300f8dad.csv":
        f"{COMMON},LAST_CHANGED,LEID,EUID,NOTES,TAGS\n"
        "n1@example.com,N,,,,,1,,,,,,,,,,,,,7,g,,\n"
        "n2@example.com,N,,,,,1,,,,,,,,,,,,,8,h,,\n",
}


def write_zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text.encode("utf-8"))
    return path


@pytest.fixture
def store(newsletter):
    newsletter.config(CONFIG)
    db = SqliteStore(newsletter.root / "subscribers.db")
    yield db
    db.close()


def statuses(db: SqliteStore) -> dict[str, str]:
    return {s.email: s.status for s in db.iter()}


def test_mailchimp_takes_each_status_from_the_files_name(tmp_path, store):
    store.upsert(Subscriber("was-unsubscribed-here@example.com", "", "unsubscribed"))
    imported = mailchimp.read_subscribers(write_zip(tmp_path / "audience.zip", MAILCHIMP))
    report = writer.store(imported, store)
    assert statuses(store) == {
        "s1@example.com": "active", "s2@example.com": "active",
        "both@example.com": "unsubscribed",  # in two files: the more restrictive status
        "u1@example.com": "unsubscribed", "c1@example.com": "bounced",  # cleaned: hard bounces
        "was-unsubscribed-here@example.com": "unsubscribed",  # an import never brings an address back
    }
    assert "n1@example.com" not in statuses(store)  # never subscribed: not imported
    assert imported.skipped == {"never subscribed (Mailchimp non-subscribed)": 2}
    first = store.get("s1@example.com")
    assert first.name == "张 三" and first.tags == ("读者", "AI, ML")  # trimmed; a tag may hold a comma
    assert report.verdicts["kept"] == 1 and any("never brings an address back" in line for line in report.lines())
    again = writer.store(mailchimp.read_subscribers(tmp_path / "audience.zip"), store)
    assert set(again.verdicts) <= {"unchanged", "kept"}
    assert again.lines()[-1] == "  nothing changed: the list already holds this export"


def test_a_mailchimp_file_of_unknown_status_is_an_error_not_a_guess(tmp_path):
    export = write_zip(tmp_path / "x.zip", {"members.csv": f"{COMMON},LEID\na@example.com,A,,,,,1,,,,,,,,,,,,1\n"})
    with pytest.raises(PublisherError, match="members' status is unknown") as caught:
        mailchimp.read_subscribers(export)
    assert "members.csv" in str(caught.value)
    cleaned = f"{COMMON},CLEAN_TIME\na@example.com,A,,,,,1,,,,,,,,,,,,x\n"
    renamed = write_zip(tmp_path / "y.zip", {"export.csv": cleaned})
    assert mailchimp.read_subscribers(renamed).by_status() == {"bounced": 1}  # the columns prove it


def test_listmonk_enabled_is_unconfirmed_unless_the_export_was_filtered_on_confirmed(tmp_path, store):
    export = tmp_path / "subscribers.csv"
    export.write_text(
        "uuid,email,name,attributes,status,created_at,updated_at\n"
        'a1,e1@example.com,李四,"{""city"": ""上海""}",enabled,2024-01-02 03:04:05.123456 +0800 CST,'
        "2024-01-02 03:04:05 +0800 CST\n"
        "a2,b1@example.com,B,{},blocklisted,2024-01-02 03:04:05 +0000 UTC,2024-01-02 03:04:05 +0000 UTC\n"
        "a3,d1@example.com,D,{},disabled,2024-01-02 03:04:05 +0000 UTC,2024-01-02 03:04:05 +0000 UTC\n"
        "a4,x1@example.com,X,{},deleted?,2024-01-02 03:04:05 +0000 UTC,2024-01-02 03:04:05 +0000 UTC\n",
        encoding="utf-8")
    plain = listmonk.read_subscribers(export)
    assert {e: r.subscriber.status for e, r in plain.rows.items()} == {
        "e1@example.com": "unconfirmed", "b1@example.com": "unsubscribed", "d1@example.com": "unsubscribed"}
    assert plain.notes and "subscription_status=confirmed" in plain.notes[0]
    assert [(p.line, p.field) for p in plain.problems] == [(5, "status")]  # the row, named; the rest imported
    confirmed = listmonk.read_subscribers(export, subscription_status="confirmed")
    assert confirmed.rows["e1@example.com"].subscriber.status == "active"
    assert confirmed.rows["e1@example.com"].subscriber.name == "李四"
    writer.store(confirmed, store)
    assert statuses(store)["b1@example.com"] == "unsubscribed"


def test_substack_email_disabled_decides_not_the_paid_flag(tmp_path, store):
    export = write_zip(tmp_path / "substack.zip", {
        "posts.csv": "post_id,post_date,is_published,email_sent_at,type,audience,title,subtitle,podcast_url\n"
                     "1.hello,2019-07-26T20:48:19.814Z,TRUE,,newsletter,everyone,Hello,,\n",
        "email_list.ai-daily.csv": "email,active_subscription,expiry,email_disabled,prefer_digests,created_at\n"
                                   "on@example.com,false,,false,false,2018-08-27T15:06:27.713Z\n"
                                   "paid-but-off@example.com,true,,true,false,2018-08-27T15:06:27.713Z\n"
                                   "off@example.com,false,,true,false,2018-08-27T15:06:27.713Z\n",
    })
    writer.store(substack.read_subscribers(export), store)
    assert statuses(store) == {"on@example.com": "active", "paid-but-off@example.com": "unsubscribed",
                               "off@example.com": "unsubscribed"}
    only_posts = write_zip(tmp_path / "posts-only.zip", {"posts.csv": "post_id,title\n1.a,A\n"})
    with pytest.raises(PublisherError, match="no subscriber list"):
        substack.read_subscribers(only_posts)


def test_any_csv_with_a_column_map(tmp_path, store):
    export = tmp_path / "名单.csv"
    export.write_text("邮箱,姓名,分组,状态\nz1@example.com,赵一,AI;芯片,active\nz2@example.com,赵二,,bounced\n"
                      "z3@example.com,赵三,,subscribed\n", encoding="utf-8-sig")
    imported = csv_file.read_subscribers(export, csv_file.parse_map("email=邮箱,name=姓名,tags=分组,status=状态"))
    assert {e: r.subscriber.status for e, r in imported.rows.items()} == {"z1@example.com": "active",
                                                                         "z2@example.com": "bounced"}
    assert imported.rows["z1@example.com"].subscriber.tags == ("AI", "芯片")
    assert [(p.line, p.field) for p in imported.problems] == [(4, "状态")]
    with pytest.raises(PublisherError, match="--map"):
        csv_file.parse_map("mail=邮箱")
    with pytest.raises(PublisherError, match="'email'") as caught:
        csv_file.read_subscribers(export)  # no map: the default column names are not there
    assert "名单.csv" in str(caught.value)


def test_a_dry_run_stores_nothing_and_says_what_it_would_do(tmp_path, store):
    imported = mailchimp.read_subscribers(write_zip(tmp_path / "audience.zip", MAILCHIMP))
    report = writer.store(imported, store, dry_run=True)
    assert store.count() == 0
    assert report.verdicts == {"added": 6} and report.lines()[-1] == "  (dry run: nothing was stored)"


def test_a_damaged_archive_is_named(tmp_path):
    broken = tmp_path / "audience.zip"
    data = write_zip(broken, MAILCHIMP).read_bytes()
    broken.write_bytes(data[:200] + b"\0" * 50 + data[250:])
    with pytest.raises(PublisherError) as caught:
        mailchimp.read_subscribers(broken)
    assert "audience.zip" in str(caught.value) or "members_export" in str(caught.value)
    page = tmp_path / "download.zip"  # what a browser saves when the export link has expired: an HTML page
    page.write_text("<html><body>Sign in</body></html>", encoding="utf-8")
    for reader in (mailchimp.read_subscribers, listmonk.read_subscribers, csv_file.read_subscribers):
        with pytest.raises(PublisherError, match="download.zip: is not a zip archive"):
            reader(page)


def test_the_cli_imports_and_reports(newsletter, run_cli, tmp_path):
    newsletter.config(CONFIG)
    export = write_zip(tmp_path / "audience.zip", MAILCHIMP)
    result = run_cli("-C", str(newsletter.root), "import", "mailchimp", str(export))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == ("mailchimp: 6 addresses (3 active, 1 bounced, 2 unsubscribed)")
    assert "not imported: 2 never subscribed (Mailchimp non-subscribed)" in result.output
    again = run_cli("-C", str(newsletter.root), "import", "mailchimp", str(export))
    assert "nothing changed" in again.output
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("email,status\ngood@example.com,active\nbad@example.com,subscribed\n", encoding="utf-8")
    partly = run_cli("-C", str(newsletter.root), "import", "csv", str(mixed))
    assert partly.exit_code == 1 and "refused: mixed.csv:3: status" in partly.output  # named, and exit 1
    assert SqliteStore(newsletter.root / "subscribers.db").get("good@example.com").status == "active"  # kept
    members = tmp_path / "members.csv"
    members.write_text("id,email,name,subscribed_to_emails,deleted_at,labels\n1,m@example.com,M,true,,\n",
                       encoding="utf-8")
    ghost_list = run_cli("-C", str(newsletter.root), "import", "ghost", str(members))
    assert ghost_list.exit_code == 0 and "nothing written" not in ghost_list.output  # a list only: no issue total


def test_buttondown_maps_every_subscriber_type(tmp_path, store):
    header = ("id,secondary_id,email,notes,subscriber_type,referrer_url,utm_source,utm_medium,utm_campaign,"
              "creation_date,ip_address,subscription_date,unsubscription_date,tags,metadata\n")

    def row(n: int, email: str, kind: str, tags: str = "") -> str:
        return (f"id{n},{n},{email},,{kind},,,,,2024-03-13 00:03:09.183465+00:00,,2024-03-13 00:03:09+00:00,,{tags},"
                "\"{'staff': 'true'}\"\n")

    export = write_zip(tmp_path / "buttondown.zip", {
        "emails.csv": "id,secondary_id,subject,publish_date,source,email_type,slug\n",
        "subscribers.csv": header + row(1, "r@example.com", "regular", "corporate;nyc") + row(2, "p@example.com",
                                                                                          "premium")
        + row(3, "u@example.com", "unactivated") + row(4, "x@example.com", "unsubscribed")
        + row(5, "b@example.com", "blocked") + row(6, "m@example.com", "removed") + row(7, "n@example.com", "unpaid")
        + row(8, "w@example.com", "weird"),
    })
    imported = buttondown.read_subscribers(export)
    assert {e: r.subscriber.status for e, r in imported.rows.items()} == {
        "r@example.com": "active", "p@example.com": "active", "u@example.com": "unconfirmed",
        "x@example.com": "unsubscribed", "b@example.com": "unsubscribed", "m@example.com": "unsubscribed"}
    assert imported.rows["r@example.com"].subscriber.tags == ("corporate", "nyc")
    assert sum(imported.skipped.values()) == 1 and [(p.line, p.field) for p in imported.problems] == [
        (9, "subscriber_type")]


def test_ghost_members_subscribed_to_emails_and_deleted(tmp_path, store):
    export = tmp_path / "members.csv"
    export.write_text(
        "id,email,name,note,subscribed_to_emails,complimentary_plan,stripe_customer_id,created_at,deleted_at,"
        "labels,tiers\n"
        "1,g1@example.com,王五,,true,false,,2022-01-01T00:00:00.000Z,,\"读者,VIP\",\n"
        "2,g2@example.com,G2,,false,false,,2022-01-01T00:00:00.000Z,,,\n"
        "3,g3@example.com,G3,,true,false,,2022-01-01T00:00:00.000Z,2023-01-01T00:00:00.000Z,,\n", encoding="utf-8")
    imported = ghost.read_subscribers(export)
    assert {e: r.subscriber.status for e, r in imported.rows.items()} == {
        "g1@example.com": "active", "g2@example.com": "unsubscribed", "g3@example.com": "unsubscribed"}
    assert imported.rows["g1@example.com"].subscriber.tags == ("读者", "VIP")
    with pytest.raises(PublisherError, match="JSON export holds no members"):
        ghost.read_subscribers(write_zip(tmp_path / "ghost.zip", {"posts.csv": "id,title\n1,a\n"}))


def test_hostile_rows_are_refused_by_line_and_the_rest_imported(tmp_path, store):
    """What an export hands us is hostile: a CR/LF or control character in a name, a huge name, an address that
    is not one; an internationalised domain comes in as punycode, as the store keeps it."""
    export = tmp_path / "people.csv"
    export.write_text(
        "email,name\n"
        '"crlf@example.com","Eve\r\nBcc: victim@example.com"\n'
        "ctrl@example.com,Mal\x07lory\n"
        f"huge@example.com,{'长' * 5000}\n"
        "not-an-address,Nobody\n"
        "读者@例子.中国,读者\n"
        "fine@例子.中国,好人\n", encoding="utf-8")
    imported = csv_file.read_subscribers(export)
    assert sorted(imported.rows) == ["fine@xn--fsqu00a.xn--fiqs8s"]
    assert sorted(p.line for p in imported.problems) == [3, 4, 5, 6, 7]  # each refused row, by its line
    report = writer.store(imported, store)
    assert report.verdicts == {"added": 1} and statuses(store) == {"fine@xn--fsqu00a.xn--fiqs8s": "active"}
    empty = tmp_path / "empty.csv"
    empty.write_text("email,name\n", encoding="utf-8")
    report = writer.store(csv_file.read_subscribers(empty), store)
    assert report.lines()[-1] == "  the export holds no address to import"
