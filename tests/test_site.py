"""The web archive: pages, tags, escaping, autodiscovery, sitemap, relative URLs, theme overrides."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import NOW
from lxml import etree, html

from publisher.build import build

SAMPLE_PUBLISHED = {"agents-and-evals", "coding-agents", "multimodal-weekend", "chips-and-datacenters",
                    "open-weights-week"}


def page(path: Path) -> html.HtmlElement:
    return html.fromstring(path.read_bytes())


def test_dist_layout(sample_build):
    files = {p.relative_to(sample_build).as_posix() for p in sample_build.rglob("*") if p.is_file()}
    for name in ("index.html", "rss.xml", "atom.xml", "feed.json", "sitemap.xml", "404.html", "static/style.css",
                 "images/chart.png"):
        assert name in files
    issues = {f.split("/")[1] for f in files if f.startswith("issues/")}
    assert issues == SAMPLE_PUBLISHED  # no draft, no scheduled issue
    for tag in ("大模型", "agents", "openai"):
        assert {f"tags/{tag}/index.html", f"tags/{tag}/rss.xml", f"tags/{tag}/atom.xml"} <= files


def test_index_lists_issues_newest_first_with_dates_in_site_timezone(sample_build):
    doc = page(sample_build / "index.html")
    assert doc.get("lang") == "zh-CN"
    titles = [a.text_content() for a in doc.cssselect(".issue-item-title a")]
    assert len(titles) == 5 and titles[0].startswith("AI 日报：Computer-use Agents")
    times = [t.get("datetime") for t in doc.cssselect(".issue-item time")]
    assert times == sorted(times, reverse=True)
    assert all(t.endswith("+08:00") for t in times)
    assert doc.cssselect(".issue-item time")[0].text == "2026年11月24日"
    assert doc.cssselect(".summary")  # summaries shown


def test_every_page_has_lang_and_feed_autodiscovery(sample_build):
    for path in sample_build.rglob("*.html"):
        doc = page(path)
        assert doc.get("lang") == "zh-CN", path
        if path.name == "email.html":  # the email as sent: no feeds in an inbox
            continue
        types = {link.get("type"): link.get("href") for link in doc.cssselect('link[rel="alternate"]')}
        assert types.get("application/rss+xml", "").startswith("https://ai-daily.example.com/"), path
        assert "application/atom+xml" in types and "application/feed+json" in types, path


def test_tag_page_offers_its_own_feeds_first(sample_build):
    doc = page(sample_build / "tags" / "大模型" / "index.html")
    first = doc.cssselect('link[rel="alternate"]')[0]
    assert first.get("href") == "https://ai-daily.example.com/tags/%E5%A4%A7%E6%A8%A1%E5%9E%8B/rss.xml"
    assert len(doc.cssselect(".issue-item")) == 2


def test_relative_links_resolve_on_the_page(sample_build):
    doc = page(sample_build / "issues" / "multimodal-weekend" / "index.html")
    srcs = [img.get("src") for img in doc.cssselect(".content img")]
    assert "../../images/chart.png" in srcs
    assert (sample_build / "issues" / "multimodal-weekend" / "../../images/chart.png").resolve().is_file()
    css = doc.cssselect('link[rel="stylesheet"]')[0].get("href")
    assert (sample_build / "issues" / "multimodal-weekend" / css).resolve().is_file()


def test_internal_links_all_resolve(sample_build):
    """Every relative href/src on every page points at a file in dist/."""
    missing = []
    for path in sample_build.rglob("*.html"):
        if path.name == "404.html":
            continue
        for _element, _attr, link, _pos in page(path).iterlinks():
            if re.match(r"^[a-z]+:|^//|^#", link):
                continue
            target = (path.parent / link.split("#")[0].split("?")[0])
            from urllib.parse import unquote
            target = Path(unquote(str(target)))
            if target.is_dir():
                target = target / "index.html"
            if not target.resolve().is_file():
                missing.append((path.relative_to(sample_build).as_posix(), link))
    assert missing == []


def test_sitemap(sample_build):
    tree = etree.fromstring((sample_build / "sitemap.xml").read_bytes())
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    locs = tree.xpath("//s:loc/text()", namespaces=ns)
    assert "https://ai-daily.example.com/" in locs
    assert "https://ai-daily.example.com/issues/coding-agents/" in locs
    assert all(loc.startswith("https://") for loc in locs)
    assert len(locs) == len(set(locs))


def test_titles_and_user_text_are_escaped(newsletter):
    newsletter.issue("x.md", 'title: "<script>alert(1)</script> & 标题"\ndate: 2026-11-20\n'
                     'tags: ["<b>tag</b>"]\nsummary: "<img src=x onerror=alert(1)>"\n')
    out = newsletter.root / "dist"
    build(newsletter.load_config(), now=NOW, use_cache=False)
    for path in (out / "index.html", out / "issues" / "x" / "index.html"):
        text = path.read_text()
        assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; 标题" in text
        assert "<img src=x" not in text and "<b>tag</b>" not in text


def test_draft_and_future_pages_are_marked_when_included(newsletter):
    newsletter.issue("d.md", "title: 草稿\ndate: 2026-11-20\ndraft: true\n")
    newsletter.issue("f.md", "title: 未来\ndate: 2030-01-01\n")
    build(newsletter.load_config(), now=NOW, drafts=True, future=True, use_cache=False)
    index = (newsletter.root / "dist" / "index.html").read_text()
    assert "badge-draft" in index and "badge-scheduled" in index


def test_user_theme_overrides_one_file(newsletter):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text() + '[build]\ntheme = "mine"\n')
    override = newsletter.root / "themes" / "mine" / "web"
    override.mkdir(parents=True)
    (override / "issue.html").write_text('{% extends "web/base.html" %}{% block main %}<p class="mine">'
                                         "{{ issue.title }}</p>{% endblock %}")
    newsletter.issue("x.md")
    build(newsletter.load_config(), now=NOW, use_cache=False)
    issue = (newsletter.root / "dist" / "issues" / "x" / "index.html").read_text()
    assert '<p class="mine">标题</p>' in issue
    assert "issue-list" in (newsletter.root / "dist" / "index.html").read_text()  # built-in index kept


def test_an_issue_is_keyed_on_where_its_md_links_go_not_on_every_page():
    """The cache key of an issue with `.md` links names each link's target page (any link syntax), and does
    not grow with the number of issues (the whole page map in every key made rebuilds quadratic)."""
    from pathlib import PurePosixPath

    from publisher.markdown import md_link_targets
    from publisher.site import issue_inputs

    body = ('见[上期](2026-11-20-x.md#a)，[r]: ../2026/y.md "t"\n<a href="z.md">z</a> '
            "https://github.com/a/README.md README.mdx `c.md`" + "长" * 3000 + "w.md")
    tokens = md_link_targets(body)
    assert set(tokens) >= {"2026-11-20-x.md", "../2026/y.md", "z.md", "c.md"}
    assert not any(t.endswith(".mdx") or "github.com" in t for t in tokens)  # an absolute URL goes nowhere here
    assert "长" * 511 + "w.md" in tokens  # a long run of text without stops: bounded at 512 characters

    class Stub:  # the fields issue_inputs reads, besides the digest
        path = PurePosixPath("2026/2026-11-21-b.md")
        digest = "d"
        md_links = None  # an Issue made by hand: found from the body

    Stub.body = body
    few = {"2026/2026-11-20-x.md": "issues/x/"}
    many = few | {f"2025/{n}.md": f"issues/{n}/" for n in range(5000)}
    assert issue_inputs(Stub, few) == issue_inputs(Stub, many)  # unrelated pages do not enter the key
    moved = {"2026/2026-11-20-x.md": "issues/renamed/"}
    assert issue_inputs(Stub, few) != issue_inputs(Stub, moved)  # a linked page that moves does
