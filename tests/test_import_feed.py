"""`publisher import feed`: Atom, RSS and JSON Feed archives served by a real local HTTP server, page by page."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from bs4 import BeautifulSoup

from publisher import content, markdown
from publisher.errors import PublisherError
from publisher.importers.convert import html_to_markdown
from publisher.importers.feed import import_feed
from publisher.importers.network import fetch_url

# One entry's body with everything the converter must keep: a table with `|` in a cell, a nested list, a code
# block, an image, a YouTube embed, footnote-like superscript links, and `*`, `_`, `|` in the text.
RICH_HTML = """\
<h2>今日要闻</h2>
<p>中文里的<strong>OpenAI</strong>发布了 <a href="https://openai.example/news">新模型</a>，
计算 2*3*4 与 snake_case_name，管道 a|b 也在。<sup><a href="#fn1" id="fnref1">1</a></sup></p>
<ul><li>第一项<ul><li>嵌套 <a href="/posts/older">旧文</a></li><li>另一项</li></ul></li><li>第二项</li></ul>
<table><thead><tr><th>模型</th><th>参数</th></tr></thead>
<tbody><tr><td>GPT|mini</td><td>8B</td></tr><tr><td>千问</td><td><code>a|b</code></td></tr></tbody></table>
<pre><code class="language-python">def f(a_b):
    return a_b * 2</code></pre>
<blockquote><p>引用一段话。</p></blockquote>
<p><img src="/images/chart.png" alt="图表"></p>
<iframe src="https://www.youtube.com/embed/dQw4w9WgXcQ" title="演示视频"></iframe>
<div class="footnotes"><ol><li id="fn1">脚注 <a href="#fnref1">↩</a></li></ol></div>
"""


def atom_page(base: str, entries: str, links: str) -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:fh="http://purl.org/syndication/history/1.0"
      xmlns:media="http://search.yahoo.com/mrss/">
  <title>Old blog</title><id>{base}/</id><updated>2026-11-01T00:00:00Z</updated>
  <author><name>Feed Author</name></author>
  {links}
  {entries}
</feed>"""


def atom_bytes(base: str, entries: str, links: str) -> bytes:
    return atom_page(base, entries, links).encode()


def atom_entry(base: str, path: str, title: str, date: str | None, body: str = "<p>正文。</p>",
               extra: str = "", id_: str | None = None) -> str:
    published = f"<published>{date}</published>" if date else ""
    return f"""<entry><id>{id_ or base + path}</id><title type="html">{_esc(title)}</title>
<link rel="alternate" href="{base}{path}"/>{published}{extra}
<content type="html">{_esc(body)}</content></entry>"""


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def make_site(base: str) -> dict[str, tuple[bytes, str]]:
    """path -> (body, content type) for every document the test server serves."""
    atom = "application/atom+xml"
    rich = atom_entry(base, "/posts/rich-post/", "Rich &amp; <b>bold</b> post", "2026-11-03T08:00:00+08:00",
                      RICH_HTML,
                      extra='<summary type="text">A short summary, not the body.</summary>'
                            '<category term="ai" label="人工智能"/><category term="news"/>'
                            '<author><name>张三</name></author>'
                            '<media:thumbnail url="https://cdn.example/thumb.jpg"/>')
    site = {
        "/atom.xml": (atom_bytes(base, rich + atom_entry(base, "/posts/undated", "No date here", None),
                                f'<link rel="self" href="{base}/atom.xml"/>'
                                f'<link rel="prev-archive" href="{base}/atom-2.xml"/>'), atom),
        "/atom-2.xml": (atom_bytes(base,
                                  atom_entry(base, "/posts/%E4%B8%AD%E6%96%87%E6%A0%87%E9%A2%98", "中文标题的文章",
                                             "2026-10-20T09:30:00+08:00", "<p>全是中文的正文。</p>")
                                  + atom_entry(base, "/2026/10/same-slug.html", "Same slug one",
                                               "2026-10-10T10:00:00Z"),
                                  '<fh:archive/>'
                                  f'<link rel="current" href="{base}/atom.xml"/>'
                                  f'<link rel="next-archive" href="{base}/atom.xml"/>'
                                  f'<link rel="prev-archive" href="{base}/atom-3.xml"/>'), atom),
        "/atom-3.xml": (atom_bytes(base,
                                  atom_entry(base, "/2026/09/same-slug/", "Same slug two", "2026-09-01T10:00:00Z")
                                  + atom_entry(base, "/posts/rich-post/", "An older copy", "2026-11-03T08:00:00+08:00",
                                               id_=base + "/posts/rich-post/"),
                                  '<fh:archive/>'
                                  f'<link rel="next-archive" href="{base}/atom-2.xml"/>'), atom),
    }
    rss = "application/rss+xml"
    for n in (1, 2, 3):
        nxt = f'<atom:link rel="next" href="{base}/rss-{n + 1}.xml"/>' if n < 3 else ""
        site[f"/rss-{n}.xml" if n > 1 else "/rss.xml"] = (f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>RSS blog</title><link>{base}/</link><description>d</description>{nxt}
<item><title>RSS post {n}</title><link>{base}/rss/post-{n}</link><guid>{base}/rss/post-{n}</guid>
<pubDate>Tue, 0{n} Sep 2026 08:00:00 +0800</pubDate><category>RSS</category><category>第{n}期</category>
<dc:creator>李四</dc:creator><enclosure url="https://cdn.example/rss-{n}.png" type="image/png" length="10"/>
<description>{_esc(f"<p>摘要 {n}：与正文不同。</p>")}</description>
<content:encoded><![CDATA[<p>RSS 正文 {n}，带 <a href="https://example.org/{n}">链接</a>。</p>]]></content:encoded>
</item></channel></rss>""".encode(), rss)
    for n in (1, 2, 3):
        doc = {
            "version": "https://jsonfeed.org/version/1.1", "title": "JSON 日报",
            "items": [{
                "id": f"json-{n}", "url": f"{base}/日报/第{n}期", "title": f"AI 日报 第{n}期",
                "content_html": f"<p>今天的要闻{n}：<strong>大模型</strong>降价。</p><p>第二段。</p>",
                "summary": f"第{n}期摘要", "date_published": f"2026-08-0{n}T07:00:00+08:00",
                "tags": ["日报", "大模型"], "image": f"https://cdn.example/json-{n}.jpg",
                "authors": [{"name": "编辑部"}],
            }],
        }
        if n < 3:
            doc["next_url"] = f"{base}/feed-{n + 1}.json"
        site[f"/feed-{n}.json" if n > 1 else "/feed.json"] = (json.dumps(doc, ensure_ascii=False).encode(),
                                                              "application/feed+json")
    for a, b in ((1, 2), (2, 1)):  # a loop: 1 -> 2 -> 1
        site[f"/loop-{a}.json"] = (json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "loop",
                                               "next_url": f"{base}/loop-{b}.json", "items": [{
                                                   "id": f"loop-{a}", "url": f"{base}/loop/{a}", "title": f"L{a}",
                                                   "content_html": "<p>x</p>",
                                                   "date_published": "2026-07-01T00:00:00Z"}]}).encode(),
                                   "application/feed+json")
    site["/to-file.json"] = (json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "t",
                                         "next_url": "file:///etc/passwd", "items": []}).encode(),
                             "application/feed+json")
    site["/relative.json"] = (json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "r", "items": [{
        "id": "r1", "url": "/posts/relative-post", "title": "Relative", "image": "img/cover.png",
        "summary": "开头一句", "content_html": "<p>开头一句，后面还有。</p>",
        "date_published": "2026-06-01T12:00:00-05:00"}]}).encode(), "application/feed+json")
    site["/huge.xml"] = (b"<rss>" + b" " * (5 * 1024 * 1024 + 10) + b"</rss>", rss)
    site["/entities.xml"] = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
                             b'<!ENTITY b "&a;&a;&a;&a;">]><rss version="2.0"><channel><title>&b;</title>'
                             b"</channel></rss>", rss)
    return site


class _Handler(http.server.BaseHTTPRequestHandler):
    site: dict[str, tuple[bytes, str]] = {}
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.requests.append(self.path)
        from urllib.parse import unquote
        if self.path == "/stream":  # no Content-Length: the size is only known by reading
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b" " * 4096)
            return
        found = self.site.get(unquote(self.path))
        if found is None:
            self.send_error(404)
            return
        body, kind = found
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 serving the feeds of make_site; yields (base URL, requested paths)."""
    handler = type("Handler", (_Handler,), {"requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    handler.site = make_site(base)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield base, handler.requests
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def front(path: Path) -> tuple[dict, str]:
    text = path.read_text(encoding="utf-8")
    _, fm, body = text.split("---\n", 2)
    assert body.startswith("\n")
    return yaml.safe_load(fm), body[1:]


def test_atom_archive_pages_become_issues(newsletter, server):
    base, requests = server
    config = newsletter.load_config()
    report = import_feed(config, f"{base}/atom.xml")

    assert report.pages == [f"{base}/atom.xml", f"{base}/atom-2.xml", f"{base}/atom-3.xml"]
    assert sorted(requests) == ["/atom-2.xml", "/atom-3.xml", "/atom.xml"]  # next-archive / current not re-read
    written = {Path(w.path).name for w in report.written}
    old_url = f"{base}/posts/%E4%B8%AD%E6%96%87%E6%A0%87%E9%A2%98"  # a Chinese slug: a hash of the link instead
    chinese = f"2026-10-20-post-{hashlib.sha256(old_url.encode()).hexdigest()[:8]}.md"
    # the older of two entries with one slug keeps it (oldest first, so the same feed always gives the same names)
    assert written == {"2026-11-03-rich-post.md", "2026-09-01-same-slug.md", "2026-10-10-same-slug-2.md", chinese}
    reasons = {s.what: s.reason for s in report.skipped}
    assert "no date" in reasons[f"{base}/posts/undated"]
    assert "earlier page" in reasons[f"{base}/posts/rich-post/"]

    meta, body = front(newsletter.content / "2026-11-03-rich-post.md")
    assert meta == {
        "title": "Rich & bold post", "date": "2026-11-03T08:00:00+08:00", "tags": ["人工智能", "news"],
        "summary": "A short summary, not the body.", "source": f"{base}/posts/rich-post/",
        "image": "https://cdn.example/thumb.jpg", "authors": ["张三"], "send": False,
    }
    assert body.startswith("## 今日要闻\n")
    assert "- 第一项\n  - 嵌套 [旧文](" + base + "/posts/older)" in body
    assert "| 模型 | 参数 |\n| --- | --- |\n| GPT\\|mini | 8B |" in body
    assert "```python\ndef f(a_b):\n    return a_b * 2\n```" in body
    assert "> 引用一段话。" in body
    assert f"![图表]({base}/images/chart.png)" in body
    assert "[演示视频](https://www.youtube.com/watch?v=dQw4w9WgXcQ)" in body

    # Rendered back by publisher itself: the text, `*`, `_` and `|` survive, and every link is still a link.
    html = markdown.to_html(body)
    text = BeautifulSoup(html, "html.parser").get_text()
    for kept in ("中文里的OpenAI发布了", "2*3*4", "snake_case_name", "a|b 也在", "GPT|mini"):
        assert kept in text
    before = BeautifulSoup(RICH_HTML, "html.parser")
    links_before = len(before.select("a[href]")) + len(before.select("iframe[src]"))
    assert links_before == 5  # 4 <a href> and the iframe
    assert len(BeautifulSoup(html, "html.parser").select("a[href]")) == links_before
    assert len(BeautifulSoup(html, "html.parser").select("img[src]")) == len(before.select("img[src]"))

    assert len(content.load_issues(config)) == 4  # every file loads with publisher's own parser


def test_rss_and_json_feed_with_chinese(newsletter, server):
    base, _ = server
    config = newsletter.load_config()
    rss = import_feed(config, f"{base}/rss.xml")
    assert [Path(w.path).name for w in rss.written] == [f"2026-09-0{n}-post-{n}.md" for n in (1, 2, 3)]
    meta, body = front(newsletter.content / "2026-09-02-post-2.md")
    assert meta == {"title": "RSS post 2", "date": "2026-09-02T08:00:00+08:00", "tags": ["RSS", "第2期"],
                    "summary": "摘要 2：与正文不同。", "source": f"{base}/rss/post-2",
                    "image": "https://cdn.example/rss-2.png", "authors": ["李四"], "send": False}
    assert body == "RSS 正文 2，带 [链接](https://example.org/2)。\n"

    feed = import_feed(config, f"{base}/feed.json")
    assert len(feed.pages) == 3 and len(feed.written) == 3
    names = sorted(Path(w.path).name for w in feed.written)
    assert all(re.fullmatch(r"2026-08-0\d-post-[0-9a-f]{8}\.md", n) for n in names), names
    meta, body = front(newsletter.content / names[0])
    assert meta["title"] == "AI 日报 第1期" and meta["tags"] == ["日报", "大模型"]
    assert meta["summary"] == "第1期摘要" and meta["authors"] == ["编辑部"]
    assert meta["image"] == "https://cdn.example/json-1.jpg" and meta["source"] == f"{base}/日报/第1期"
    assert body == "今天的要闻1：**大模型**降价。\n\n第二段。\n"
    issues = content.load_issues(config)
    assert len(issues) == 6 and {i.title for i in issues} >= {"AI 日报 第3期", "RSS post 1"}


def test_second_import_writes_nothing_and_dry_run_writes_nothing(newsletter, server):
    base, _ = server
    config = newsletter.load_config()
    dry = import_feed(config, f"{base}/atom.xml", dry_run=True)
    assert not list(newsletter.content.glob("*.md"))
    assert "would write" in str(dry) and "dry run" in str(dry)

    first = import_feed(config, f"{base}/atom.xml")
    assert [w.path for w in first.written] == [w.path for w in dry.written] and len(first.written) == 4
    before = {p: p.read_bytes() for p in newsletter.content.glob("*.md")}

    again = import_feed(config, f"{base}/atom.xml")
    assert again.written == []
    assert str(again).splitlines()[-1].startswith("nothing written")
    assert sum(s.reason == "already imported" for s in again.skipped) == 4
    assert {p: p.read_bytes() for p in newsletter.content.glob("*.md")} == before
    assert import_feed(config, f"{base}/atom.xml", dry_run=True).written == []


def test_an_existing_file_is_never_overwritten(newsletter, server):
    base, _ = server
    config = newsletter.load_config()
    mine = newsletter.issue("2026-09-01-same-slug.md", 'title: "mine"\ndate: 2026-09-01\n')  # not from the feed
    before = mine.read_bytes()
    report = import_feed(config, f"{base}/atom-3.xml")
    assert mine.read_bytes() == before
    assert [Path(w.path).name for w in report.written] == ["2026-11-03-rich-post.md"]
    assert [(s.path, s.reason) for s in report.skipped] == [
        ("content/2026-09-01-same-slug.md", "the file exists (not overwritten)")]
    assert len(content.load_issues(config)) == 2


def test_a_loop_in_next_links_stops(newsletter, server):
    base, requests = server
    report = import_feed(newsletter.load_config(), f"{base}/loop-1.json")
    assert report.pages == [f"{base}/loop-1.json", f"{base}/loop-2.json"]
    assert requests == ["/loop-1.json", "/loop-2.json"]
    assert any("loop" in note and "loop-1.json" in note for note in report.notes)
    assert len(report.written) == 2


def test_the_page_limit_stops_the_walk(newsletter, server):
    base, requests = server
    report = import_feed(newsletter.load_config(), f"{base}/atom.xml", max_pages=2)
    assert len(report.pages) == 2 and "/atom-3.xml" not in requests
    assert any("page limit" in note for note in report.notes)


@pytest.mark.parametrize("source", ["file:///etc/passwd", "ftp://127.0.0.1/feed.xml", "javascript:alert(1)"])
def test_a_non_http_url_is_refused(newsletter, source):
    with pytest.raises(PublisherError, match="not an http\\(s\\) URL"):
        import_feed(newsletter.load_config(), source)


def test_a_link_to_a_file_url_is_not_followed(newsletter, server):
    base, _ = server
    report = import_feed(newsletter.load_config(), f"{base}/to-file.json")
    assert report.pages == [f"{base}/to-file.json"]
    assert any("file:///etc/passwd" in note for note in report.notes)


def test_a_too_large_response_is_refused(newsletter, server):
    base, _ = server
    with pytest.raises(PublisherError, match=re.escape(f"{base}/huge.xml") + " is larger than the limit"):
        import_feed(newsletter.load_config(), f"{base}/huge.xml")
    with pytest.raises(PublisherError, match=re.escape(f"{base}/stream") + " is larger than the limit of 64 KiB"):
        import_feed(newsletter.load_config(), f"{base}/stream", fetch=lambda url: fetch_url(url, limit=64 * 1024))
    assert not list(newsletter.content.glob("*.md"))


def test_xml_entities_are_refused(newsletter, server):
    base, _ = server
    with pytest.raises(PublisherError, match="entities|DTD"):
        import_feed(newsletter.load_config(), f"{base}/entities.xml")


def test_a_feed_file_and_its_archive_file(newsletter, tmp_path):
    base = "https://old.example"
    (tmp_path / "feed.xml").write_text(atom_page(base, atom_entry(base, "/a/first-post", "First", "2026-01-02"),
                                                 '<link rel="prev-archive" href="older.xml"/>'), encoding="utf-8")
    (tmp_path / "older.xml").write_text(atom_page(base, atom_entry(base, "/a/second-post", "Second", "2025-12-31"),
                                                  '<link rel="prev-archive" href="../outside.xml"/>'),
                                        encoding="utf-8")
    report = import_feed(newsletter.load_config(), str(tmp_path / "feed.xml"))
    assert [Path(w.path).name for w in report.written] == ["2025-12-31-second-post.md", "2026-01-02-first-post.md"]
    assert any("outside" in note for note in report.notes)


def test_unsafe_links_in_a_body_are_dropped_to_text():
    md = html_to_markdown('<p><a href="javascript:alert(1)">x</a> <img src="data:image/png;base64,AA" alt="pic">'
                          '<a href="rel/p">r</a></p>', "https://old.example/posts/")
    assert md == "x pic[r](https://old.example/posts/rel/p)\n"


def test_relative_links_in_a_served_feed_are_made_absolute(newsletter, server):
    base, _ = server
    config = newsletter.load_config()
    report = import_feed(config, f"{base}/relative.json")
    assert [w.path for w in report.written] == ["content/2026-06-01-relative-post.md"]
    meta, _ = front(newsletter.content / "2026-06-01-relative-post.md")
    assert meta["source"] == f"{base}/posts/relative-post" and meta["image"] == f"{base}/img/cover.png"
    assert meta["date"] == "2026-06-01T12:00:00-05:00"
    assert "summary" not in meta  # the summary only repeats the start of the body
    [issue] = content.load_issues(config)
    assert issue.source == meta["source"] and issue.date.utcoffset().total_seconds() == -5 * 3600


def test_the_cli_prints_the_report(newsletter, server, run_cli):
    base, _ = server
    dry = run_cli("-C", str(newsletter.root), "import", "feed", f"{base}/rss.xml", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would write content/2026-09-01-post-1.md" in dry.output and not list(newsletter.content.glob("*.md"))
    done = run_cli("-C", str(newsletter.root), "import", "feed", f"{base}/rss.xml")
    assert done.output.splitlines()[-1] == "3 issues written, 0 skipped"
    again = run_cli("-C", str(newsletter.root), "import", "feed", f"{base}/rss.xml")
    assert "already imported (content/2026-09-03-post-3.md)" in again.output
    assert again.output.splitlines()[-1] == "nothing written, 3 skipped"
    refused = run_cli("-C", str(newsletter.root), "import", "feed", "file:///etc/passwd")
    assert refused.exit_code == 1 and "not an http(s) URL" in refused.stderr
