"""Feeds: valid for readers and validators, deterministic, absolute URLs, stable ids, any input."""

from __future__ import annotations

import json
from datetime import timedelta

import feedcheck
import feedparser
import pytest
from conftest import NOW
from lxml import etree

from publisher.build import build
from publisher.config import load_config

BASE = "https://ai-daily.example.com/"


def all_feeds(dist):
    for path in sorted(dist.rglob("*")):
        if path.name in ("rss.xml", "atom.xml", "feed.json"):
            yield path


def self_url(dist, path):
    from urllib.parse import quote

    return BASE + quote(path.relative_to(dist).as_posix())


def test_every_feed_passes_the_offline_validator_rules(sample_build):
    checks = {"rss.xml": feedcheck.check_rss, "atom.xml": feedcheck.check_atom, "feed.json": feedcheck.check_json_feed}
    found = list(all_feeds(sample_build))
    assert len(found) == 3 + 3 * 8  # the site's three, three per tag
    for path in found:
        errors = checks[path.name](path.read_bytes(), self_url=self_url(sample_build, path))
        assert errors == [], (path, errors)


@pytest.mark.parametrize("name", ["rss.xml", "atom.xml"])
def test_feedparser_reads_titles_links_dates_and_chinese(sample_build, name):
    parsed = feedparser.parse((sample_build / name).read_bytes())
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.feed.title == "AI 日报 · 每日人工智能要闻"
    titles = [e.title for e in parsed.entries]
    assert titles[0] == "AI 日报：Computer-use Agents 的评测困境与新基准 OSWorld-Live"
    assert len(titles) == 5
    links = [e.link for e in parsed.entries]
    assert links[0] == BASE + "issues/agents-and-evals/"
    dates = [e.published_parsed for e in parsed.entries]
    assert dates == sorted(dates, reverse=True)
    assert dates[0][:4] == (2026, 11, 24, 0)  # 08:00 in Shanghai is 00:00 UTC
    assert "大模型" in {t.term for e in parsed.entries for t in e.get("tags", [])}


def test_json_feed_titles_links_dates_and_chinese(sample_build):
    data = json.loads((sample_build / "feed.json").read_bytes().decode("utf-8"))
    assert data["title"] == "AI 日报 · 每日人工智能要闻" and data["language"] == "zh-CN"
    items = data["items"]
    assert [i["id"] for i in items][:2] == [BASE + "issues/agents-and-evals/", BASE + "issues/coding-agents/"]
    assert items[0]["date_published"] == "2026-11-24T08:00:00+08:00"
    assert items[0]["external_url"].startswith("https://www.technologyreview.com/")
    assert items[0]["image"] == "https://ai-daily.example.com/images/cover-1124.png"
    assert "大模型" in {t for i in items for t in i.get("tags", [])}


def test_rss_has_full_content_summary_guid_and_categories(sample_build):
    tree = etree.fromstring((sample_build / "rss.xml").read_bytes())
    item = tree.find("channel/item")
    ns = {"content": "http://purl.org/rss/1.0/modules/content/", "dc": "http://purl.org/dc/elements/1.1/"}
    assert item.findtext("guid") == BASE + "issues/agents-and-evals/"
    assert item.find("guid").get("isPermaLink") == "true"
    content = item.findtext("content:encoded", namespaces=ns)
    assert "<ul>" in content and len(content) > 3000
    assert item.findtext("description").startswith("能操作浏览器")
    assert [c.text for c in item.findall("category")] == ["Agents", "多模态", "评测"]
    assert item.findtext("dc:creator", namespaces=ns) == "AI 日报编辑部"
    assert tree.findtext("channel/language") == "zh-CN"
    assert tree.findtext("channel/link") == BASE


def test_urls_in_feed_content_are_absolute(sample_build):
    parsed = feedparser.parse((sample_build / "rss.xml").read_bytes())
    weekend = next(e for e in parsed.entries if e.link.endswith("/multimodal-weekend/"))
    html = weekend.content[0].value
    assert f'src="{BASE}images/chart.png"' in html
    data = json.loads((sample_build / "feed.json").read_text())
    item = next(i for i in data["items"] if i["url"].endswith("/multimodal-weekend/"))
    assert f'src="{BASE}images/chart.png"' in item["content_html"]


def test_updated_comes_from_the_newest_issue_not_the_clock(sample_build):
    tree = etree.fromstring((sample_build / "rss.xml").read_bytes())
    assert tree.findtext("channel/lastBuildDate") == "Tue, 24 Nov 2026 08:00:00 +0800"
    atom = etree.fromstring((sample_build / "atom.xml").read_bytes())
    assert atom.findtext("{http://www.w3.org/2005/Atom}updated") == "2026-11-24T08:00:00+08:00"


def test_rebuild_is_byte_identical(sample_build, tmp_path):
    from conftest import REPO

    out = tmp_path / "again"
    build(load_config(REPO, environ={}), now=NOW + timedelta(hours=3), output=out, use_cache=False)
    for path in all_feeds(sample_build):
        assert (out / path.relative_to(sample_build)).read_bytes() == path.read_bytes(), path


def test_ids_do_not_change_with_title_or_content(newsletter):
    path = newsletter.issue("2026-11-20-x.md", "title: 旧标题\ndate: 2026-11-20\n", "旧内容\n")
    config = newsletter.load_config()
    build(config, now=NOW, use_cache=False)
    before = feedparser.parse((newsletter.root / "dist" / "atom.xml").read_bytes()).entries[0].id
    path.write_text("---\ntitle: 新标题\ndate: 2026-11-20\n---\n新内容\n", encoding="utf-8")
    build(config, now=NOW, use_cache=False)
    after = feedparser.parse((newsletter.root / "dist" / "atom.xml").read_bytes()).entries[0]
    assert after.title == "新标题" and after.id == before == "https://news.example.com/daily/issues/x/"


def test_feed_limit_and_order(newsletter):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text() + "[feeds]\nlimit = 3\n")
    for day in range(1, 8):
        newsletter.issue(f"2026-11-0{day}-d{day}.md", f"title: 第{day}期\ndate: 2026-11-0{day}\ntags: [t]\n")
    build(newsletter.load_config(), now=NOW, use_cache=False)
    for name in ("rss.xml", "atom.xml", "tags/t/rss.xml", "tags/t/atom.xml"):
        parsed = feedparser.parse((newsletter.root / "dist" / name).read_bytes())
        assert [e.title for e in parsed.entries] == ["第7期", "第6期", "第5期"], name
    data = json.loads((newsletter.root / "dist" / "feed.json").read_text())
    assert [i["title"] for i in data["items"]] == ["第7期", "第6期", "第5期"]


def test_summary_only_feeds(newsletter):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text() + "[feeds]\nfull_content = false\n")
    newsletter.issue("x.md", body="第一段摘要。\n\n第二段全文才有。\n")
    build(newsletter.load_config(), now=NOW, use_cache=False)
    rss = (newsletter.root / "dist" / "rss.xml").read_text()
    assert "第一段摘要" in rss and "第二段全文才有" not in rss
    data = json.loads((newsletter.root / "dist" / "feed.json").read_text())
    assert data["items"][0]["content_text"] == "第一段摘要。"


def test_forbidden_xml_characters_are_removed(newsletter):
    newsletter.issue("x.md", 'title: "控制\\v字符\\uFFFE标题"\ndate: 2026-11-20\ntags: ["a\\x0bb"]\n',
                     "正文\x0b含有\x0c控制字符\ufffe。\n")
    build(newsletter.load_config(), now=NOW, use_cache=False)
    dist = newsletter.root / "dist"
    for path in all_feeds(dist):
        checker = {"rss.xml": feedcheck.check_rss, "atom.xml": feedcheck.check_atom,
                   "feed.json": feedcheck.check_json_feed}[path.name]
        assert checker(path.read_bytes()) == [], path
        if path.suffix == ".xml":
            assert feedparser.parse(path.read_bytes()).bozo == 0, path
    parsed = feedparser.parse((dist / "atom.xml").read_bytes())
    assert parsed.entries[0].title == "控制字符标题"
    assert "正文含有控制字符。" in parsed.entries[0].content[0].value


def test_empty_newsletter_still_has_valid_feeds(newsletter):
    build(newsletter.load_config(), now=NOW, use_cache=False)
    dist = newsletter.root / "dist"
    assert feedcheck.check_rss((dist / "rss.xml").read_bytes()) == []
    assert feedcheck.check_atom((dist / "atom.xml").read_bytes()) == []
    assert json.loads((dist / "feed.json").read_text())["items"] == []


def test_rss_and_atom_carry_a_relative_stylesheet(sample_build):
    for name in ("rss.xml", "atom.xml"):
        head = (sample_build / name).read_bytes().split(b"\n")[1]
        assert head == b'<?xml-stylesheet type="text/xsl" href="static/feed.xsl"?>'
        tag_head = (sample_build / "tags" / "agents" / name).read_bytes().split(b"\n")[1]
        assert tag_head == b'<?xml-stylesheet type="text/xsl" href="../../static/feed.xsl"?>'
    assert (sample_build / "static" / "feed.xsl").exists()
