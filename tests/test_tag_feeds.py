"""Each tag has its own RSS, Atom and JSON Feed, holding that tag's issues only."""

from __future__ import annotations

import json

import feedparser
from conftest import NOW

from publisher.build import build


def test_each_tag_has_a_json_feed_of_its_own_issues(newsletter):
    newsletter.issue("2026-11-18-a.md", "title: 第一期\ndate: 2026-11-18\ntags: [模型, 芯片]\n")
    newsletter.issue("2026-11-19-b.md", "title: 第二期\ndate: 2026-11-19\ntags: [模型]\n")
    newsletter.issue("2026-11-20-c.md", "title: 第三期\ndate: 2026-11-20\ntags: [政策]\n")
    dist = build(newsletter.load_config(), now=NOW, use_cache=False).output
    base = "https://news.example.com/daily/"
    expected = {"模型": ["b", "a"], "芯片": ["a"], "政策": ["c"]}
    for tag, slugs in expected.items():
        data = json.loads((dist / "tags" / tag / "feed.json").read_bytes())
        assert data["version"] == "https://jsonfeed.org/version/1.1"
        assert data["feed_url"].endswith("/feed.json") and "/tags/" in data["feed_url"]
        assert data["home_page_url"].startswith(base + "tags/")
        assert [item["url"] for item in data["items"]] == [f"{base}issues/{s}/" for s in slugs]
        assert all(item["id"] == item["url"] and item["date_published"] for item in data["items"])
        atom = feedparser.parse((dist / "tags" / tag / "atom.xml").read_bytes())  # the same issues as its Atom
        assert [e.link for e in atom.entries] == [item["url"] for item in data["items"]]
    assert len(json.loads((dist / "feed.json").read_bytes())["items"]) == 3
