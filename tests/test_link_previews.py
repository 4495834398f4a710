"""What a chat app, a social network or a search engine sees of a page: Open Graph and Twitter cards with absolute
URLs, icons, robots.txt."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from conftest import CONFIG, NOW
from lxml import html

from publisher.build import build

SITE = "https://news.example.com/daily/"


def meta(doc: html.HtmlElement, key: str) -> list[str]:
    return [m.get("content") for m in doc.xpath(f'//meta[@property="{key}" or @name="{key}"]')]


def local(dist: Path, url: str) -> Path:
    """The file of dist/ an absolute URL of the site names."""
    assert url.startswith(SITE), url
    return dist / unquote(url[len(SITE):])


def newsletter_with_cover(newsletter):  # type: ignore[no-untyped-def]
    newsletter.config(CONFIG)
    (newsletter.content / "img").mkdir()
    (newsletter.content / "img" / "cover.png").write_bytes(b"\x89PNG cover")
    newsletter.issue("2026-11-19-a.md", "title: 有封面的一期\ndate: 2026-11-19\ntags: [模型, 芯片]\n"
                     "image: img/cover.png\nauthors: [张三, 李四]\nsummary: 本期摘要\n")
    newsletter.issue("2026-11-20-b.md", "title: 远程封面\ndate: 2026-11-20\ntags: [模型]\n"
                     "image: https://images.example.org/b.png\n")
    newsletter.issue("2026-11-21-c.md", "title: 没有封面\ndate: 2026-11-21\n")
    return build(newsletter.load_config(), now=NOW, use_cache=False).output


def test_an_issue_page_is_an_article_with_an_absolute_cover(newsletter):
    dist = newsletter_with_cover(newsletter)
    doc = html.fromstring((dist / "issues" / "a" / "index.html").read_bytes())
    assert meta(doc, "og:type") == ["article"]
    assert meta(doc, "og:url") == [SITE + "issues/a/"]
    assert meta(doc, "og:title") == ["有封面的一期"] and meta(doc, "og:description") == ["本期摘要"]
    image = meta(doc, "og:image")
    assert image == [SITE + "img/cover.png"] and local(dist, image[0]).read_bytes() == b"\x89PNG cover"
    assert meta(doc, "article:tag") == ["模型", "芯片"] and meta(doc, "article:author") == ["张三", "李四"]
    assert meta(doc, "article:published_time")[0].startswith("2026-11-19T00:00:00+08:00")
    assert meta(doc, "twitter:card") == ["summary_large_image"]
    assert meta(doc, "og:site_name") == ["AI 日报"] and meta(doc, "og:locale") == ["zh_CN"]
    remote = html.fromstring((dist / "issues" / "b" / "index.html").read_bytes())
    assert meta(remote, "og:image") == ["https://images.example.org/b.png"]


def test_pages_without_a_cover_show_the_themes_picture(newsletter):
    dist = newsletter_with_cover(newsletter)
    for page in ("index.html", "issues/c/index.html", "tags/模型/index.html", "archive/2026/index.html", "404.html"):
        doc = html.fromstring((dist / page).read_bytes())
        image = meta(doc, "og:image")
        assert image == [SITE + "static/social.jpg"], page
        assert local(dist, image[0]).read_bytes()[:3] == b"\xff\xd8\xff", page  # a JPEG, there
        assert meta(doc, "og:image:width") == ["1200"] and meta(doc, "twitter:card") == ["summary_large_image"]
        assert meta(doc, "og:url")[0].startswith(SITE)
    home = html.fromstring((dist / "index.html").read_bytes())
    assert meta(home, "og:type") == ["website"] and meta(home, "og:title") == ["AI 日报"]


def test_every_page_names_icons_that_exist(newsletter):
    dist = newsletter_with_cover(newsletter)
    for path in dist.rglob("index.html"):
        doc = html.fromstring(path.read_bytes())
        icons = {(link.get("rel"), link.get("type")): link.get("href")
                 for link in doc.xpath('//link[@rel="icon" or @rel="apple-touch-icon"]')}
        assert set(icons) == {("icon", "image/svg+xml"), ("icon", "image/png"), ("apple-touch-icon", None)}, path
        for href in icons.values():
            assert (path.parent / href).resolve().is_file(), (path, href)
    assert (dist / "static" / "favicon.svg").read_bytes().startswith(b"<svg")
    assert (dist / "static" / "favicon.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_robots_txt_points_at_the_sitemap_and_keeps_the_email_copies_out(newsletter):
    dist = newsletter_with_cover(newsletter)
    lines = (dist / "robots.txt").read_text().splitlines()
    sitemap = [line.split(": ", 1)[1] for line in lines if line.startswith("Sitemap: ")]
    assert sitemap == [SITE + "sitemap.xml"] and local(dist, sitemap[0]).is_file()
    path = urlsplit(SITE).path
    assert f"Disallow: {path}issues/*/email.html" in lines and "User-agent: *" in lines


def test_an_authors_own_robots_txt_wins(newsletter):
    (newsletter.content / "robots.txt").write_text("User-agent: *\nDisallow: /\n")
    newsletter.issue("2026-11-21-c.md", "title: 一期\ndate: 2026-11-21\n")
    dist = build(newsletter.load_config(), now=NOW, use_cache=False).output
    assert (dist / "robots.txt").read_text() == "User-agent: *\nDisallow: /\n"


def test_a_tag_page_links_its_three_feeds(newsletter):
    dist = newsletter_with_cover(newsletter)
    doc = html.fromstring((dist / "tags" / "模型" / "index.html").read_bytes())
    alternates = [link.get("href") for link in doc.xpath('//link[@rel="alternate"]')][:3]
    assert [a.rsplit("/", 1)[1] for a in alternates] == ["rss.xml", "atom.xml", "feed.json"]
    assert all(local(dist, a).is_file() for a in alternates)
    visible = [a.get("href") for a in doc.cssselect(".lead a")]
    assert [v.rsplit("/", 1)[1] for v in visible] == ["rss.xml", "atom.xml", "feed.json"]
