"""Both languages everywhere: every word around the issues (web pages, emails, the feed stylesheet, `serve`)
comes from the catalogue of `site.language` (themes/default/messages/<language>.po), and none of another
language shows. The repository's sample newsletter is built in each language and its chrome read back."""

from __future__ import annotations

import email
import logging
import re
import shutil
from email import policy

import httpx
import pytest
import uvicorn
from conftest import CONFIG, NOW, REPO, build_in_new_processes, free_port, serve_in_thread
from lxml import html as lxml_html
from waiting import wait_for

from publisher import messages
from publisher.build import build
from publisher.config import builtin_theme_dir, load_config
from publisher.content import load_issues

CATALOGUES = builtin_theme_dir() / "messages"
LANGUAGES = ("zh-CN", "zh-TW", "en")
CJK = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# Names, the same in every language (formats, the example address of the subscribe form).
LATIN_NAMES = {"RSS", "Atom", "JSON", "Feed"}
URL_OR_ADDRESS = re.compile(r"\S+@\S+|https?://\S+")


# ---- the catalogues ----


def read_catalogue(language: str):  # type: ignore[no-untyped-def]
    from babel.messages.pofile import read_po

    with (CATALOGUES / f"{language}.po").open("rb") as fh:
        return read_po(fh, locale=language.replace("-", "_"))


def strings(language: str) -> list[str]:
    """Every translation of a catalogue (each plural form)."""
    out = []
    for message in read_catalogue(language):
        if message.id:
            out += list(message.string) if isinstance(message.string, tuple | list) else [message.string]
    return out


def used_msgids() -> set[object]:
    """Every msgid the built-in theme's templates and publisher's code use (Babel's extraction: Jinja's
    `_()`, `gettext`, `ngettext`, `{% trans %}`; `N_()` in Python)."""
    from babel.messages.extract import extract

    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    options = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true",
               "newstyle_gettext": "true"}
    found: set[object] = set()
    for path in sorted(builtin_theme_dir().rglob("*")):
        if path.is_file() and path.suffix in (".html", ".mjml", ".txt", ".xsl"):
            with path.open("rb") as fh:
                found |= {m for _, m, _, _ in extract("jinja2.ext:babel_extract", fh, keywords, options=options)}
    for path in sorted((REPO / "publisher").glob("*.py")):
        with path.open("rb") as fh:
            found |= {m for _, m, _, _ in extract("python", fh, {"N_": None})}
    return found


def test_the_extraction_finds_the_strings_of_every_part():
    used = used_msgids()
    for msgid in ("No issues yet.", "Page %(number)s of %(count)s", "Source:", "Feeds of this tag:",  # web
                  "Hi %(name)s,", "View in browser",  # email
                  "Check your inbox", "This link does not work",  # serve
                  "Copy feed URL"):  # the feed stylesheet
        assert msgid in used, msgid
    assert ("%(num)s issue", "%(num)s issues") in used


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_catalogue_translates_every_msgid_with_the_same_placeholders(language):
    catalogue = read_catalogue(language)
    for msgid in sorted(used_msgids(), key=str):
        key = msgid[0] if isinstance(msgid, tuple) else msgid
        message = catalogue.get(key)
        assert message is not None, f"{language}.po lacks {msgid!r}"
        translations = message.string if isinstance(message.string, tuple | list) else (message.string,)
        assert all(translations), f"{language}.po leaves {msgid!r} untranslated"
        wanted = set(PLACEHOLDER.findall(" ".join(msgid) if isinstance(msgid, tuple) else msgid))
        for text in translations:  # a placeholder the code does not pass would fail the render
            assert set(PLACEHOLDER.findall(text)) <= wanted | {"num"}, (language, msgid, text)
            if not isinstance(msgid, tuple):
                assert set(PLACEHOLDER.findall(text)) == wanted, (language, msgid, text)


@pytest.mark.parametrize(("language", "catalogue"), [
    ("zh-CN", "zh-CN"), ("zh-Hans", "zh-CN"), ("zh-SG", "zh-CN"), ("zh", "zh-CN"), ("zh-Hans-CN", "zh-CN"),
    ("zh-TW", "zh-TW"), ("zh-Hant", "zh-TW"), ("zh-HK", "zh-TW"), ("zh-MO", "zh-TW"), ("zh-Hant-HK", "zh-TW"),
    ("en", "en"), ("en-US", "en"), ("en-GB", "en"), ("EN-gb", "en"),
])
def test_the_language_picks_the_catalogue_of_its_language_and_script(language, catalogue):
    assert messages.load(language).catalogue == catalogue


def test_a_language_without_a_catalogue_reads_english_and_says_so(caplog):
    messages._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger="publisher"):
        said = messages.load("ja")
    assert said.catalogue == "en" and said.gettext("Newer") == "Newer"
    assert said.format_date(NOW) == "November 26, 2026"  # the English page's dates are English too
    (record,) = [r for r in caplog.records if r.name == "publisher.messages"]
    assert "'ja'" in record.getMessage() and "\n" not in record.getMessage()


@pytest.mark.parametrize(("language", "date_text", "count"), [
    ("zh-CN", "2026年11月26日", "12,345"), ("zh-TW", "2026年11月26日", "12,345"), ("en", "November 26, 2026", "12,345"),
    ("en-GB", "26 November 2026", "12,345"), ("zh-HK", "2026年11月26日", "12,345"),
])
def test_dates_and_numbers_are_formatted_for_the_language(language, date_text, count):
    said = messages.load(language)
    assert said.format_date(NOW) == date_text and said.format_number(12345) == count


def test_a_missing_msgid_falls_back_to_english(tmp_path):
    theme = tmp_path / "theme"
    (theme / "messages").mkdir(parents=True)
    (theme / "messages" / "fr.po").write_text('msgid "Newer"\nmsgstr "Plus récents"\n', encoding="utf-8")
    said = messages.load("fr-CA", (theme, builtin_theme_dir()))
    assert said.catalogue == "fr"  # a theme may add a language
    assert said.gettext("Newer") == "Plus récents" and said.gettext("Older") == "Older"
    assert said.format_date(NOW) == "26 novembre 2026"


# ---- the sample newsletter in each language ----


def author_strings(config, issues) -> list[str]:  # type: ignore[no-untyped-def]
    """What the author wrote (not chrome): longest first, so that a title goes before a tag inside it."""
    found = {config.site.title, config.site.description, config.site.author, config.email.postal_address,
             config.email.from_name}
    for issue in issues:
        found |= {issue.title, issue.summary, issue.subject, issue.preheader, issue.source, *issue.tags,
                  *issue.authors}
    return sorted((s for s in found if s), key=len, reverse=True)


def chrome_of_html(data: bytes, authored: list[str]) -> tuple[str, str]:
    """The `<html lang>` of a page and its words around the issue: its text and the attributes people read
    (aria-label, title, placeholder, alt), without the issue's body and without what the author wrote."""
    root = lxml_html.fromstring(data)
    for body in root.xpath('//*[contains(concat(" ", normalize-space(@class), " "), " content ")]'
                           '|//script|//style|//noscript'):
        body.drop_tree()
    for hidden in root.xpath('//div[contains(@style, "display:none")]'):  # the email's preheader
        hidden.drop_tree()
    parts = [t for t in root.xpath("//body//text() | //title//text()")]
    parts += root.xpath("//@aria-label | //@title | //@placeholder | //@alt")
    return root.get("lang", ""), strip_authored("\n".join(parts), authored)


def strip_authored(text: str, authored: list[str]) -> str:
    for value in authored:
        text = text.replace(value, " ")
    return text


def assert_in_language(chrome: str, language: str, where: str) -> None:
    chrome = URL_OR_ADDRESS.sub(" ", chrome)
    others = [s for other in LANGUAGES if other != language for s in strings(other)]
    if language == "en":
        assert not CJK.search(chrome), f"{where}: {CJK.findall(chrome)} in the English chrome: {chrome!r}"
        return
    words = set(re.findall(r"[A-Za-z]{2,}", chrome)) - LATIN_NAMES
    assert not words, f"{where}: Latin words {words} in the {language} chrome"
    english = [piece for text in strings("en") for piece in PLACEHOLDER.split(text) if len(piece.strip()) > 3]
    assert not [e for e in english if e in chrome], where
    own = {c for s in strings(language) for c in HAN.findall(s)}
    other_only = {c for s in others for c in HAN.findall(s)} - own  # e.g. 訂 on a zh-CN page, 订 on a zh-TW one
    assert not other_only & set(chrome), f"{where}: {sorted(other_only & set(chrome))} in the {language} chrome"
    assert HAN.search(chrome), f"{where}: no Chinese at all in the chrome"


@pytest.fixture(scope="module", params=LANGUAGES)
def built(request, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The sample newsletter (drafts and scheduled issues too, two issues a page, a subscribe form) built in one
    language; yields (language, config, issues, dist)."""
    language = request.param
    root = tmp_path_factory.mktemp(f"sample-{language}")
    shutil.copy(REPO / "publisher.toml", root / "publisher.toml")
    shutil.copytree(REPO / "content", root / "content")
    environ = {"PUBLISHER_SITE_LANGUAGE": language, "PUBLISHER_SITE_PER_PAGE": "2",
               "PUBLISHER_SITE_SUBSCRIBE_URL": "https://ai-daily.example.com/subscribe"}
    config = load_config(root, environ=environ)
    assert config.site.language == language
    dist = root / "dist"
    build(config, now=NOW, output=dist, drafts=True, future=True, use_cache=False)
    issues = load_issues(config)
    return language, config, issues, dist


def test_every_page_and_email_speaks_the_site_language_only(built):
    language, config, issues, dist = built
    authored = author_strings(config, issues)
    pages = sorted(dist.rglob("*.html"))
    kinds = {p.relative_to(dist).parts[0] for p in pages}
    assert {"index.html", "404.html", "issues", "tags", "archive", "page"} <= kinds
    assert any(p.name == "email.html" for p in pages)
    for page in pages:
        lang, chrome = chrome_of_html(page.read_bytes(), authored)
        where = str(page.relative_to(dist))
        if page.name != "email.html":
            assert lang == language, where
        assert_in_language(chrome, language, where)


def test_the_badges_pager_and_counts_are_translated(built):
    language, _, _, dist = built
    index = lxml_html.fromstring((dist / "index.html").read_bytes())
    badges = {b.text for b in index.cssselect(".badge")}
    position = index.cssselect(".pager-position")[0].text
    lead = lxml_html.fromstring((dist / "archive" / "2026" / "index.html").read_bytes()).cssselect(".lead")[0].text
    expected = {"zh-CN": ({"草稿", "定时发布"}, "第 1 / 4 页", "共 6 期"),
                "zh-TW": ({"草稿", "排程發布"}, "第 1 / 4 頁", "共 6 期"),
                "en": ({"draft", "scheduled"}, "Page 1 of 4", "6 issues")}[language]
    assert (badges, position, lead) == expected


def test_dates_on_the_pages_are_the_language_s(built):
    language, _, _, dist = built
    page = lxml_html.fromstring((dist / "issues" / "coding-agents" / "index.html").read_bytes())
    shown = page.cssselect("article .meta time")[0].text
    assert shown == {"en": "November 23, 2026"}.get(language, "2026年11月23日")
    email_html = (dist / "issues" / "coding-agents" / "email.html").read_text(encoding="utf-8")
    assert shown in email_html


def test_the_email_text_part_speaks_the_site_language_only(built):
    import dataclasses

    from publisher.emails import fill, neutral_values, render_email

    language, config, issues, _ = built
    authored = author_strings(config, issues)
    for issue in issues:
        # the issue without its body: what is left of the text part is chrome and what the author wrote
        text = render_email(config, dataclasses.replace(issue, body=""), "").text
        text = fill(text, neutral_values(config), escape=False)  # as "view in browser" fills it in
        assert_in_language(strip_authored(text, authored), language, f"the text part of {issue.slug}")


def test_the_feed_stylesheet_speaks_the_site_language(built):
    language, _, _, dist = built
    xsl = (dist / "static" / "feed.xsl").read_text(encoding="utf-8")
    assert {"zh-CN": "复制订阅源地址", "zh-TW": "複製訂閱來源網址", "en": "Copy feed URL"}[language] in xsl
    assert ("Copy feed URL" in xsl) == (language == "en")


# ---- a theme's own words ----


def override_newsletter(newsletter, po: str):  # type: ignore[no-untyped-def]
    newsletter.config(CONFIG + "[build]\ntheme = \"mine\"\n")
    newsletter.issue("2026-11-20-a.md", 'title: "第一期"\ndate: 2026-11-20\nsource: https://example.com/x\n')
    folder = newsletter.root / "themes" / "mine" / "messages"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zh-CN.po").write_text(po, encoding="utf-8")
    return folder / "zh-CN.po"


def test_a_theme_catalogue_overrides_one_string_and_a_warm_rebuild_shows_its_edit(newsletter):
    po = override_newsletter(newsletter, 'msgid "Source:"\nmsgstr "原文："\n\nmsgid "View in browser"\nmsgstr ""\n')
    config = newsletter.load_config()
    build(config, now=NOW)  # with the render cache
    dist = newsletter.root / "dist"
    page = (dist / "issues" / "a" / "index.html").read_text(encoding="utf-8")
    assert '<p class="source">原文： <a' in page  # the theme's entry wins
    email_html = (dist / "issues" / "a" / "email.html").read_text(encoding="utf-8")
    assert "在浏览器中查看" in email_html  # an empty msgstr leaves the built-in one; the rest come from it too
    po.write_text('msgid "Source:"\nmsgstr "出处："\n\nmsgid "View in browser"\nmsgstr "网页版"\n', encoding="utf-8")
    build(newsletter.load_config(), now=NOW)
    page = (dist / "issues" / "a" / "index.html").read_text(encoding="utf-8")
    email_html = (dist / "issues" / "a" / "email.html").read_text(encoding="utf-8")
    assert '<p class="source">出处： <a' in page and "网页版" in email_html and "在浏览器中查看" not in email_html


def test_a_broken_theme_catalogue_is_an_error_naming_the_file(newsletter):
    from publisher.errors import PublisherError

    override_newsletter(newsletter, 'msgid "Source:"\nmsgstr "原文："\nthis is not a PO file\n')
    with pytest.raises(PublisherError) as info:
        build(newsletter.load_config(), now=NOW, use_cache=False)
    assert "themes/mine/messages/zh-CN.po" in str(info.value)


def test_a_site_in_a_language_without_a_catalogue_is_english_and_warned_about(newsletter, run_cli):
    newsletter.config(CONFIG.replace('"zh-CN"', '"ko"'))
    newsletter.issue("2026-11-20-a.md", 'title: "첫 호"\ndate: 2026-11-20\ntags: [뉴스]\n')
    messages._warn_once.cache_clear()
    result = run_cli("-C", str(newsletter.root), "build")
    assert result.exit_code == 0
    assert "site.language is 'ko'" in result.stderr
    page = (newsletter.root / "dist" / "tags" / "뉴스" / "index.html")
    if not page.exists():
        page = next((newsletter.root / "dist" / "tags").rglob("index.html"))
    config = newsletter.load_config()
    lang, chrome = chrome_of_html(page.read_bytes(), author_strings(config, load_issues(config)))
    assert lang == "ko" and "Feeds of this tag:" in chrome and "November 20, 2026" in chrome
    assert_in_language(chrome, "en", "a ko page")


# ---- serve ----


@pytest.mark.parametrize(("language", "title"), [("en", "Daily Notes"), ("zh-TW", "AI 日報")])
def test_serve_answers_and_confirms_in_the_site_language(newsletter, language, title):
    from publisher.subscription import create_app

    newsletter.config(CONFIG.replace('"zh-CN"', f'"{language}"').replace('"AI 日报"', f'"{title}"')
                      + '[email]\nfrom_address = "news@news.example.com"\n')
    config = newsletter.load_config()
    port = free_port()
    server, thread = serve_in_thread(uvicorn.Config(create_app(config, secret=b"i18n-secret-" * 3),
                                                    host="127.0.0.1", port=port, log_level="warning"))
    base = f"http://127.0.0.1:{port}"
    authored = [title, "每日 AI 要闻", "编辑部"]
    try:
        answers = [httpx.post(f"{base}/subscribe", data={"email": "reader@example.com"}),
                   httpx.post(f"{base}/subscribe", data={"email": "not an address"}),
                   httpx.get(f"{base}/confirm?token=forged"), httpx.get(f"{base}/unsubscribe?token=forged"),
                   httpx.post(f"{base}/unsubscribe?token=forged"), httpx.get(f"{base}/nowhere")]
        outbox = newsletter.root / "outbox" / "confirmations"
        (path,) = wait_for(lambda: sorted(outbox.glob("*.eml")) if outbox.exists() else [], what="the confirmation")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert [a.status_code for a in answers] == [200, 400, 400, 400, 400, 404]
    for answer in answers:
        chrome = answer.text
        if answer.headers["content-type"].startswith("text/html"):
            lang, chrome = chrome_of_html(answer.content, authored)
            assert lang == language
        assert_in_language(strip_authored(chrome, authored), language, f"{answer.request.url}")
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert_in_language(strip_authored(str(message["Subject"]), authored), language, "the confirmation's subject")
    for part in ("plain", "html"):
        body = message.get_body((part,)).get_content()
        if part == "html":
            lang, body = chrome_of_html(body.encode(), authored)
            assert lang == language
        assert_in_language(strip_authored(body, authored), language, f"the confirmation's {part} part")
    expected = {"en": "Confirm your subscription to Daily Notes", "zh-TW": "請確認訂閱《AI 日報》"}[language]
    assert message["Subject"] == expected


# ---- startup ----


def test_babel_is_loaded_only_to_render(newsletter):
    """`import publisher.cli` and a build that changes nothing never import Babel (nor Jinja); the first build
    does: the catalogues and formats are read on the render path only."""
    newsletter.issue("2026-11-20-a.md")
    runs = build_in_new_processes(newsletter.root, ("babel", "jinja2"))
    assert runs == [([], ["babel", "jinja2"]), ([], [])]
