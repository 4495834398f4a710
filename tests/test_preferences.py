"""The preferences page (issue 19, part 3), over real parts: uvicorn on a free port, httpx, SQLite, the outbox
transport, a real send; the link taken from a sent .eml; headless Chromium with JavaScript off; axe-core.

Time is never the wall clock: the server gets a fixed clock, sends get `now=`."""

from __future__ import annotations

import email
import json
import re
import sqlite3
from datetime import timedelta
from email import policy

import httpx
import pytest
import uvicorn
from conftest import CONFIG, NOW, free_port, serve_in_thread
from waiting import wait_for

from publisher.config import load_config
from publisher.errors import PublisherError
from publisher.sending import send_issue
from publisher.subscribers import SqliteStore, Subscriber
from publisher.subscription import SECURITY_HEADERS, create_app
from publisher.tokens import make_token

SECRET = b"preferences-secret-" * 2
LIST_ID = "newsletter.news.example.com"
PUBLIC = "https://news.example.com/daily/"
TOPICS = ('topics = [{ tag = "zh", label = "中文", label_en = "Chinese" }, '
          '{ tag = "en", label = "英文", label_en = "English" }]\n')
LINK = re.compile(r"https://news\.example\.com/daily/preferences\?token=[A-Za-z0-9_.=-]+")


def make_config(newsletter, serve=True, extra=""):
    text = CONFIG + '[email]\nfrom_address = "news@news.example.com"\n[subscribers]\n' + TOPICS
    text += "[serve]\nrate_per_ip = 1000\n" + (f'public_url = "{PUBLIC}"\n' if serve else "") + extra
    newsletter.config(text)
    return newsletter.load_config()


@pytest.fixture
def server():
    """start(config, at=NOW) -> base URL of the app on a free port, its clock fixed at `at`."""
    started = []

    def start(config, at=NOW):
        port = free_port()
        app = create_app(config, secret=SECRET, clock=lambda: at.timestamp())
        started.append(serve_in_thread(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")))
        return f"http://127.0.0.1:{port}"

    yield start
    for instance, thread in started:
        instance.should_exit = True
        thread.join(timeout=10)


def store(newsletter) -> SqliteStore:
    return SqliteStore(newsletter.root / "subscribers.db")


def record(newsletter, address):
    s = store(newsletter)
    try:
        return s.get(address)
    finally:
        s.close()


def sent_to(newsletter, slug) -> dict[str, email.message.EmailMessage]:
    folder = newsletter.root / "outbox" / slug
    messages = [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(folder.glob("*.eml"))]
    return {m["To"].addresses[0].addr_spec: m for m in messages}


def confirmations(newsletter):
    folder = newsletter.root / "outbox" / "confirmations"
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(folder.glob("*.eml"))] \
        if folder.exists() else []


def preferences_path(newsletter, slug, address) -> str:
    """The preferences link of the issue email `address` got, from the .eml in the outbox, as a path."""
    message = sent_to(newsletter, slug)[address]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    link = LINK.search(text).group(0)
    assert f'href="{link}"' in html  # the same link in both parts
    return link.split("/daily", 1)[1]


def db_state(newsletter) -> tuple[list[tuple], bytes, bytes]:
    """Every subscriber row, then the bytes of the database and its write-ahead log (after a checkpoint, so that
    only a write can change them, not the closing of the last connection)."""
    root = newsletter.root
    wal = root / "subscribers.db-wal"
    db = sqlite3.connect(root / "subscribers.db")
    try:
        rows = db.execute("SELECT * FROM subscribers ORDER BY id").fetchall()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return rows, (root / "subscribers.db").read_bytes(), wal.read_bytes() if wal.exists() else b""


def with_subscribers(newsletter, *subscribers: Subscriber) -> None:
    s = store(newsletter)
    try:
        s.upsert_many(subscribers)
    finally:
        s.close()


@pytest.fixture
def sent(newsletter):
    """A newsletter with two readers and one issue sent to them; returns (config, preferences path of a@)."""
    config = make_config(newsletter)
    with_subscribers(newsletter, Subscriber("a@example.com", "甲", tags=("vip",)),
                     Subscriber("b@example.com", tags=("zh",)))
    newsletter.issue("2026-11-20-one.md", "title: 一\ndate: 2026-11-20\n")
    send_issue(config, "one", now=NOW, secret=SECRET)
    return config, preferences_path(newsletter, "one", "a@example.com")


# ---- the link ----


def test_every_email_links_to_its_own_preferences_page_only_when_serve_is_configured(newsletter):
    config = make_config(newsletter)
    with_subscribers(newsletter, Subscriber("a@example.com"), Subscriber("b@example.com"))
    newsletter.issue("2026-11-20-one.md", "title: 一\ndate: 2026-11-20\n")
    send_issue(config, "one", now=NOW, secret=SECRET)
    a, b = (preferences_path(newsletter, "one", x) for x in ("a@example.com", "b@example.com"))
    assert a != b  # one token per address
    footer = sent_to(newsletter, "one")["a@example.com"].get_body(("plain",)).get_content()
    assert "偏好设置: https://news.example.com/daily/preferences?token=" in footer  # beside 退订, translated
    assert footer.index("退订:") < footer.index("偏好设置:")

    config = make_config(newsletter, serve=False)  # no serve.public_url: nothing answers there, so no link
    newsletter.issue("2026-11-21-two.md", "title: 二\ndate: 2026-11-21\n")
    send_issue(config, "two", now=NOW, secret=SECRET)
    message = sent_to(newsletter, "two")["a@example.com"]
    for part in ("plain", "html"):
        body = message.get_body((part,)).get_content()
        assert "preferences" not in body and "偏好设置" not in body


def test_the_welcome_email_links_to_the_preferences_page_too(newsletter, server):
    config = make_config(newsletter)
    newsletter.issue("_welcome.md", "title: 欢迎\n", "欢迎订阅。\n")
    base = server(config)
    httpx.post(f"{base}/subscribe", data={"email": "new@example.com"})
    (message,) = wait_for(lambda: confirmations(newsletter), what="the confirmation")
    confirm = re.search(r"/confirm\?token=\S+", message.get_body(("plain",)).get_content()).group(0)
    assert httpx.post(base + confirm).status_code == 200
    (welcome,) = wait_for(lambda: list(sent_to(newsletter, "_welcome").values()), what="the welcome email")
    assert welcome["To"] == "new@example.com"
    path = LINK.search(welcome.get_body(("plain",)).get_content()).group(0).split("/daily", 1)[1]
    assert "new@example.com" in httpx.get(base + path).text


# ---- the page: GET and HEAD change nothing ----


def test_the_page_shows_the_choices_and_get_and_head_change_nothing(newsletter, server, sent):
    config, path = sent
    base = server(config)
    before = db_state(newsletter)
    page = httpx.get(base + path)
    head = httpx.head(base + path)
    assert page.status_code == head.status_code == 200
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value and head.headers[name] == value
    text = page.text
    assert '<html lang="zh-CN">' in text and "你的订阅设置" in text and "a@example.com" in text
    assert text.count('type="checkbox"') == 2 and '<label for="topic-0">中文 <span lang="en">(Chinese)</span>' in text
    assert "checked" not in text  # a@ holds neither declared topic (its "vip" tag is not one)
    assert [v for v in re.findall(r'<option value="(\d+)"', text)] == ["1", "2", "4", "8"]
    assert text.count("<fieldset>") == text.count("<legend>") == 5
    assert 'type="email"' in text and "<script" not in text
    assert "下载我的数据" in text and text.count("<button") == 5
    # every form posts back to the same page with the token; nothing points elsewhere
    token = path.split("token=", 1)[1]
    assert set(re.findall(r'<form method="post" action="([^"]+)"', text)) == {f"?token={token}"}
    assert db_state(newsletter) == before  # the bytes of the database and its log, and every row


# ---- the actions ----


def test_topics_are_saved_and_the_next_segment_send_picks_them_up(newsletter, server, sent):
    config, path = sent
    base = server(config)
    newsletter.issue("2026-11-22-english.md", "title: 英文期\ndate: 2026-11-22\naudience: en\n")
    saved = httpx.post(base + path, data={"action": "topics", "topic-1": "1"})
    assert saved.status_code == 200 and "主题已保存" in saved.text and 'id="topic-1" name="topic-1" value="1" checked' \
        in saved.text
    assert record(newsletter, "a@example.com").tags == ("vip", "en")  # the other tag stays
    report = send_issue(config, "english", now=NOW, secret=SECRET)
    assert report.sent == 1 and list(sent_to(newsletter, "english")) == ["a@example.com"]
    # unticking removes exactly the declared topic tags
    httpx.post(base + path, data={"action": "topics"})
    assert record(newsletter, "a@example.com").tags == ("vip",)


def test_a_pause_skips_the_sends_until_its_date_then_the_reader_gets_issues_again(newsletter, server, sent):
    config, path = sent
    base = server(config, at=NOW)
    paused = httpx.post(base + path, data={"action": "pause", "weeks": "2"})
    assert paused.status_code == 200 and "已暂停至 2026年12月10日" in paused.text and "立即恢复" in paused.text
    assert record(newsletter, "a@example.com").paused_until == "2026-12-10T12:00:00+00:00"
    for n in range(2):  # sent during the pause, then after it
        newsletter.issue(f"2026-11-2{n}-later{n}.md", f"title: 后来{n}\ndate: 2026-11-2{n}\n")
    send_issue(config, "later0", now=NOW + timedelta(days=3), secret=SECRET)
    assert list(sent_to(newsletter, "later0")) == ["b@example.com"]
    dry = send_issue(config, "later1", now=NOW + timedelta(days=3), secret=SECRET, dry_run=True)
    assert (dry.selected, dry.active) == (1, 2)  # --dry-run counts as the send would choose
    send_issue(config, "later1", now=NOW + timedelta(days=15), secret=SECRET)
    assert sorted(sent_to(newsletter, "later1")) == ["a@example.com", "b@example.com"]
    # a pause of any other length is not offered, so not taken
    httpx.post(base + path, data={"action": "resume"})
    assert httpx.post(base + path, data={"action": "pause", "weeks": "52"}).status_code == 200
    assert record(newsletter, "a@example.com").paused_until == ""


def test_resume_now_ends_the_pause_for_the_next_send(newsletter, server, sent):
    config, path = sent
    base = server(config)
    httpx.post(base + path, data={"action": "pause", "weeks": "8"})
    resumed = httpx.post(base + path, data={"action": "resume"})
    assert resumed.status_code == 200 and "已恢复" in resumed.text and "立即恢复" not in resumed.text
    newsletter.issue("2026-11-22-next.md", "title: 下一期\ndate: 2026-11-22\n")
    send_issue(config, "next", now=NOW + timedelta(days=1), secret=SECRET)
    assert "a@example.com" in sent_to(newsletter, "next")


def test_unsubscribe_and_download_my_data(newsletter, server, sent):
    config, path = sent
    base = server(config)
    data = httpx.post(base + path, data={"action": "download"})
    assert data.status_code == 200 and data.headers["content-type"] == "application/json"
    assert data.headers["content-disposition"] == 'attachment; filename="newsletter-data.json"'
    assert data.headers["cache-control"] == "no-store"
    exported = json.loads(data.content)
    assert exported["subscriber"]["email"] == "a@example.com" and exported["subscriber"]["name"] == "甲"
    assert exported["subscriber"]["paused_until"] == ""
    assert [d["issue"] for d in exported["deliveries"]] == ["one"]
    gone = httpx.post(base + path, data={"action": "unsubscribe"})
    assert gone.status_code == 200 and "你不会再收到这份通讯" in gone.text
    assert record(newsletter, "a@example.com").status == "unsubscribed"
    after = httpx.get(base + path)  # still the reader's page: the data stays downloadable, nothing else to set
    assert after.status_code == 200 and 'type="checkbox"' not in after.text and "下载我的数据" in after.text
    httpx.post(base + path, data={"action": "topics", "topic-0": "1"})
    assert record(newsletter, "a@example.com").tags == ("vip",)  # no changes for an unsubscribed address


# ---- change of address ----


def change_link(newsletter, to):
    found = wait_for(lambda: [m for m in confirmations(newsletter) if m["To"] == to], what=f"the mail to {to}")
    text = found[-1].get_body(("plain",)).get_content()
    return re.search(r"/change-address\?token=\S+", text).group(0)


def test_changing_the_address_is_confirmed_by_a_mail_to_the_new_one(newsletter, server, sent):
    config, path = sent
    base = server(config)
    httpx.post(base + path, data={"action": "topics", "topic-0": "1"})
    before = record(newsletter, "a@example.com")
    asked = httpx.post(base + path, data={"action": "address", "email": "A.New@Example.com"})
    assert asked.status_code == 200 and "确认邮件" in asked.text
    link = change_link(newsletter, "a.new@example.com")
    assert [m["To"] for m in confirmations(newsletter)] == ["a.new@example.com"]  # the new address only
    assert confirmations(newsletter)[0]["Subject"] == "请确认《AI 日报》的新邮箱地址"
    state = db_state(newsletter)
    page = httpx.get(base + link)
    assert httpx.head(base + link).status_code == 200
    assert page.status_code == 200 and page.text.count("<button") == 1 and "a.new@example.com" in page.text
    assert db_state(newsletter) == state  # the link opened (by a scanner too) changes nothing
    done = httpx.post(base + link)
    assert done.status_code == 200 and "地址已更换" in done.text
    moved = record(newsletter, "a.new@example.com")
    assert record(newsletter, "a@example.com") is None
    assert (moved.name, moved.status, moved.tags, moved.created) == (before.name, "active", ("vip", "zh"),
                                                                     before.created)
    assert httpx.post(base + link).status_code == 200  # a second click is fine
    assert httpx.get(base + path).text == httpx.get(f"{base}/unsubscribe?token=forged").text  # the old link: dead
    newsletter.issue("2026-11-22-next.md", "title: 下一期\ndate: 2026-11-22\n")
    send_issue(config, "next", now=NOW, secret=SECRET)
    assert sorted(sent_to(newsletter, "next")) == ["a.new@example.com", "b@example.com"]


def test_an_unsubscribe_link_from_before_a_change_of_address_still_unsubscribes(newsletter, server, sent):
    from publisher.privacy import forget

    config, path = sent
    base = server(config)
    old_unsubscribe = re.search(r"/unsubscribe\?token=[^>]+", str(sent_to(newsletter, "one")["a@example.com"][
        "List-Unsubscribe"])).group(0)
    httpx.post(base + path, data={"action": "address", "email": "first@example.com"})
    httpx.post(base + change_link(newsletter, "first@example.com"))
    second = make_token(SECRET, "preferences", "first@example.com", "newsletter.news.example.com")
    httpx.post(f"{base}/preferences?token={second}", data={"action": "address", "email": "second@example.com"})
    httpx.post(base + change_link(newsletter, "second@example.com"))  # moved twice
    assert record(newsletter, "second@example.com").status == "active"
    done = httpx.post(base + old_unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and record(newsletter, "second@example.com").status == "unsubscribed"
    report = forget(config, "second@example.com", secret=SECRET)
    assert report.removed["changes of address"] == 2
    raw = (newsletter.root / "subscribers.db").read_bytes()
    assert b"first@example.com" not in raw and b"second@example.com" not in raw


def test_an_address_already_subscribed_is_answered_as_a_new_one_and_never_widens_consent(newsletter, server, sent):
    config, path = sent
    with_subscribers(newsletter, Subscriber("gone@example.com", status="unsubscribed", tags=("en",)))
    base = server(config)
    answers = [httpx.post(base + path, data={"action": "address", "email": address})
               for address in ("gone@example.com", "fresh@example.com", "b@example.com")]
    assert len({(a.status_code, a.text) for a in answers}) == 1  # known, unknown, suppressed: one answer
    wait_for(lambda: len(confirmations(newsletter)) == 3, what="three confirmations")
    assert sorted(m["To"] for m in confirmations(newsletter)) == ["b@example.com", "fresh@example.com",
                                                                 "gone@example.com"]
    assert all("a@example.com" not in m.get_body(("plain",)).get_content() for m in confirmations(newsletter))
    link = change_link(newsletter, "gone@example.com")
    assert httpx.post(base + link).status_code == 200
    merged = record(newsletter, "gone@example.com")
    assert merged.status == "unsubscribed" and merged.tags == ("vip", "en")  # the stricter status wins
    assert record(newsletter, "a@example.com") is None


def test_an_unsubscribe_after_the_request_voids_the_change_link(newsletter, server, sent):
    config, path = sent
    base = server(config)
    httpx.post(base + path, data={"action": "address", "email": "other@example.com"})
    link = change_link(newsletter, "other@example.com")
    httpx.post(base + path, data={"action": "unsubscribe"})
    assert httpx.post(base + link).status_code == 400
    assert record(newsletter, "a@example.com").status == "unsubscribed" and record(newsletter,
                                                                                  "other@example.com") is None


# ---- tokens ----


def test_forged_expired_and_other_purpose_tokens_get_the_neutral_page(newsletter, server, sent):
    config, path = sent
    base = server(config)
    neutral = httpx.get(f"{base}/unsubscribe?token=forged")
    good = path.split("token=", 1)[1]
    expired = make_token(SECRET, "change-address", "a@example.com", LIST_ID, expires=int(NOW.timestamp()) - 1,
                         new="x@example.com")
    bad = {
        "forged": "/preferences?token=" + good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "empty": "/preferences",
        "unsubscribe token": "/preferences?token=" + make_token(SECRET, "unsubscribe", "a@example.com", LIST_ID),
        "other list": "/preferences?token=" + make_token(SECRET, "preferences", "a@example.com", "other.list"),
        "other secret": "/preferences?token=" + make_token(b"another-secret-" * 3, "preferences", "a@example.com",
                                                           LIST_ID),
        "unknown address": "/preferences?token=" + make_token(SECRET, "preferences", "nobody@example.com", LIST_ID),
        "expired change": f"/change-address?token={expired}",
        "preferences token for a change": f"/change-address?token={good}",
    }
    state = db_state(newsletter)
    for name, target in bad.items():
        for method in ("GET", "POST"):
            answer = httpx.request(method, base + target, data={"action": "unsubscribe"} if method == "POST" else None)
            assert (answer.status_code, answer.text) == (neutral.status_code, neutral.text), (name, method)
    assert db_state(newsletter)[0] == state[0]
    assert httpx.post(f"{base}/unsubscribe?token={good}").status_code == 400  # and the other way round


# ---- config ----


@pytest.mark.parametrize(("topics", "message"), [
    ('"zh"', "must be an array of tables"),
    ('[{ tag = "zh" }]', "[0] needs a tag and a label"),
    ('[{ tag = "a;b", label = "x" }]', "contains ';'"),
    ('[{ tag = "zh", label = "中文" }, { tag = " zh ", label = "x" }]', "[1].tag 'zh' is declared twice"),
    ('[{ tag = "zh", label = "中文", colour = "red" }]', "unknown key 'colour'"),
    (f'[{{ tag = "{"x" * 41}", label = "x" }}]', "at most 40"),
])
def test_bad_topics_are_refused_naming_the_key(newsletter, topics, message):
    newsletter.config(CONFIG + f"[subscribers]\ntopics = {topics}\n")
    with pytest.raises(PublisherError) as caught:
        load_config(newsletter.root)
    (problem,) = caught.value.problems
    assert problem.field == "subscribers.topics" and message in problem.message


def test_an_old_database_gains_the_pause_column(tmp_path):
    db = sqlite3.connect(tmp_path / "old.db")
    db.executescript("""
        CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL);
        INSERT INTO schema_versions VALUES ('subscribers', 1);
        CREATE TABLE subscribers (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '[]', soft_bounces INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL, changed_at TEXT NOT NULL);
        INSERT INTO subscribers (email, status, created_at, changed_at)
            VALUES ('old@example.com', 'active', '2025-01-01T00:00:00+00:00', '2025-01-01T00:00:00+00:00');
    """)
    db.close()
    s = SqliteStore(tmp_path / "old.db")
    try:
        assert s.get("old@example.com").paused_until == ""
        assert s.set_paused("old@example.com", "2027-01-01T00:00:00+00:00")
        assert s.get("old@example.com").paused_until == "2027-01-01T00:00:00+00:00"
    finally:
        s.close()
    assert sqlite3.connect(tmp_path / "old.db").execute(
        "SELECT version FROM schema_versions WHERE component = 'subscribers'").fetchone() == (2,)


# ---- a real browser, JavaScript off; axe ----


def test_a_browser_without_javascript_saves_topics_and_axe_finds_nothing(newsletter, server, sent):
    from browsers import chromium
    from test_accessibility import assert_no_violations, axe_path

    axe_path()  # skips (fails on CI) without axe-core
    config, path = sent
    base = server(config)
    with chromium() as browser:
        context = browser.new_context(java_script_enabled=False)
        page = context.new_page()
        page.goto(base + path)
        page.get_by_label("中文").check()
        page.get_by_role("button", name="保存主题").click()
        page.wait_for_load_state()
        assert "主题已保存" in page.content()
        assert record(newsletter, "a@example.com").tags == ("vip", "zh")
        context.close()
        for scheme in ("light", "dark"):
            context = browser.new_context(color_scheme=scheme)  # axe runs as a script: here JavaScript is on
            page = context.new_page()
            page.set_content(httpx.get(base + path).text)
            assert_no_violations(page)
            context.close()


def test_a_pause_in_the_ses_contact_store_is_an_attribute_and_the_python_path_skips_it(newsletter, aws):
    import uuid

    from publisher.ses_contacts import SesContactStore

    make_config(newsletter)
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text().replace(
        "[subscribers]\n", f'[subscribers]\nses_contact_list = "news-{uuid.uuid4().hex[:12]}"\n'))
    config = newsletter.load_config()
    ses = SesContactStore(config)
    ses.upsert_many([Subscriber("a@example.com"), Subscriber("b@example.com")])
    assert ses.set_paused("a@example.com", "2026-12-10T12:00:00+00:00") and ses.set_tags("a@example.com", ["zh"])
    assert (ses.get("a@example.com").paused_until, ses.get("a@example.com").tags) == ("2026-12-10T12:00:00+00:00",
                                                                                     ("zh",))
    with pytest.raises(PublisherError, match="cannot change a contact's address"):
        ses.change_email("a@example.com", "c@example.com")
    newsletter.issue("2026-11-20-one.md", "title: 一\ndate: 2026-11-20\n")
    newsletter.issue("2026-11-21-two.md", "title: 二\ndate: 2026-11-21\n")
    send_issue(config, "one", now=NOW, secret=SECRET, store=ses)
    assert list(sent_to(newsletter, "one")) == ["b@example.com"]
    send_issue(config, "two", now=NOW + timedelta(weeks=3), secret=SECRET, store=ses)
    assert sorted(sent_to(newsletter, "two")) == ["a@example.com", "b@example.com"]
    message = sent_to(newsletter, "two")["a@example.com"].get_body(("plain",)).get_content()
    assert "preferences" not in message  # SES hosts the preferences page of a contact list: no link to serve


def test_check_warns_when_topics_are_declared_but_no_email_links_to_the_page(newsletter):
    from publisher.emails import email_warnings

    assert not [w for w in email_warnings(make_config(newsletter)) if "subscribers.topics" in w]
    (warning,) = [w for w in email_warnings(make_config(newsletter, serve=False)) if "subscribers.topics" in w]
    assert "serve.public_url" in warning


@pytest.mark.parametrize(("language", "title"), [("en", "Daily Notes"), ("zh-TW", "AI 日報"), ("zh-CN", "AI 日报")])
def test_the_pages_and_the_change_email_speak_the_site_language_only(newsletter, server, language, title):
    from test_i18n import assert_in_language, chrome_of_html, strip_authored

    make_config(newsletter)
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      .replace('"zh-CN"', f'"{language}"').replace('"AI 日报"', f'"{title}"'))
    config = newsletter.load_config()
    with_subscribers(newsletter, Subscriber("a@example.com", "Ann"))
    base = server(config)
    path = "/preferences?token=" + make_token(SECRET, "preferences", "a@example.com", LIST_ID)
    authored = [title, "每日 AI 要闻", "编辑部", "中文", "英文", "Chinese", "English", "Ann"]
    pages = [httpx.get(base + path), httpx.post(base + path, data={"action": "topics", "topic-0": "1"}),
             httpx.post(base + path, data={"action": "pause", "weeks": "4"}),
             httpx.post(base + path, data={"action": "address", "email": "new@example.com"})]
    link = change_link(newsletter, "new@example.com")
    pages += [httpx.get(base + link), httpx.post(base + link)]
    for page in pages:
        assert page.status_code == 200
        lang, chrome = chrome_of_html(page.content, authored)
        assert lang == language
        assert_in_language(chrome, language, page.request.url.path)
    (message,) = confirmations(newsletter)
    assert_in_language(strip_authored(str(message["Subject"]), authored), language, "the subject")
    for part in ("plain", "html"):
        body = message.get_body((part,)).get_content()
        if part == "html":
            body = chrome_of_html(body.encode(), authored)[1]
        assert_in_language(strip_authored(body, authored), language, f"the change email's {part} part")
