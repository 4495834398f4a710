"""Long lists in pages: the home page and each tag page, `site.per_page` issues at a time, linked newest to
oldest; one compact page per year; every page in the sitemap."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from urllib.parse import unquote, urljoin

import pytest
from conftest import CONFIG, NOW
from lxml import etree, html

from publisher.build import build
from publisher.errors import PublisherError

SITE = "https://news.example.com/daily/"
FIRST = date(2024, 12, 10)  # 53 daily issues: 22 in 2024, 31 in 2025


def write_issues(newsletter, count: int = 53, per_page: int | None = 10) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    """`count` daily issues tagged "all" (every one), "half" (every other one) and "few" (three); the slugs of
    each tag's issues."""
    newsletter.config(CONFIG + (f"per_page = {per_page}\n" if per_page else ""))
    members: dict[str, set[str]] = {"all": set(), "half": set(), "few": set()}
    for n in range(count):
        day, slug = FIRST + timedelta(days=n), f"issue-{n:02d}"
        tags = ["all"] + (["half"] if n % 2 else []) + (["few"] if n in (0, 26, 52) else [])
        for tag in tags:
            members[tag].add(slug)
        newsletter.issue(f"{day}-{slug}.md", f'title: "第 {n} 期"\ndate: {day}\nslug: {slug}\ntags: {tags}\n')
    return members


def page(dist: Path, url: str) -> html.HtmlElement:
    assert url.startswith(SITE), url
    path = dist / unquote(url[len(SITE):]) / "index.html"
    return html.fromstring(path.read_bytes())


def slug_of(url: str) -> str:
    assert url.startswith(SITE + "issues/") and url.endswith("/"), url
    return url[len(SITE + "issues/"):-1]


def walk(dist: Path, first: str) -> list[tuple[str, list[str]]]:
    """Follow the "older" links from `first`, checking each page's own and rel links: (url, issue slugs) per
    page, in order."""
    pages, url, previous = [], first, None
    while url:
        doc = page(dist, url)
        assert doc.cssselect('link[rel="canonical"]')[0].get("href") == url
        prev = doc.cssselect('link[rel="prev"]')
        assert (prev[0].get("href") if prev else None) == previous, url
        links = [urljoin(url, a.get("href")) for a in doc.cssselect(".issue-item-title a")]
        pages.append((url, [slug_of(link) for link in links]))
        following = doc.cssselect('link[rel="next"]')
        visible = doc.cssselect("a.pager-older")  # what a reader clicks goes where the crawler hint does
        assert len(following) == len(visible), url
        if following:
            assert urljoin(url, visible[0].get("href")) == following[0].get("href")
        previous, url = url, following[0].get("href") if following else None
    return pages


def test_paginated_pages_link_every_issue_exactly_once_newest_first(newsletter):
    members = write_issues(newsletter)
    dist = build(newsletter.load_config(), now=NOW, use_cache=False).output
    lists = {SITE: members["all"]} | {f"{SITE}tags/{tag}/": slugs for tag, slugs in members.items()}
    for first, expected in lists.items():
        pages = walk(dist, first)
        listed = [slug for _, slugs in pages for slug in slugs]
        assert sorted(listed) == sorted(expected), first  # every issue once: none missing, none twice
        assert listed == sorted(listed, reverse=True), first  # newest first, across pages
        assert [len(slugs) for _, slugs in pages[:-1]] == [10] * (len(pages) - 1), first
        assert len(pages) == -(-len(expected) // 10), first
        assert [u for u, _ in pages[1:]] == [f"{first}page/{n}/" for n in range(2, len(pages) + 1)]
        numbers = [int(page(dist, u).cssselect("ol.issue-list")[0].get("start")) for u, _ in pages]
        assert numbers == [len(expected) - 10 * k for k in range(len(pages))]  # <ol reversed> counts on


def test_page_titles_say_which_page_and_the_first_page_has_no_number(newsletter):
    write_issues(newsletter)
    dist = build(newsletter.load_config(), now=NOW, use_cache=False).output
    assert page(dist, SITE).findtext(".//title") == "AI 日报"
    assert page(dist, SITE + "page/3/").findtext(".//title") == "AI 日报 · 第 3 页"
    assert page(dist, SITE + "page/3/").cssselect(".pager-position")[0].text == "第 3 / 6 页"
    assert not page(dist, SITE + "tags/few/").cssselect(".pager")  # one page: no pager at all
    assert not (dist / "page" / "1").exists() and not (dist / "page" / "7").exists()


def test_each_year_page_lists_its_issues_and_every_issue_is_two_clicks_from_home(newsletter):
    members = write_issues(newsletter)
    dist = build(newsletter.load_config(), now=NOW, use_cache=False).output
    home = page(dist, SITE)
    years = [urljoin(SITE, a.get("href")) for a in home.cssselect(".year-links a")]
    assert years == [SITE + "archive/2025/", SITE + "archive/2024/"]
    reached: list[str] = []
    for url in years:
        doc = page(dist, url)
        reached += [slug_of(urljoin(url, a.get("href"))) for a in doc.cssselect(".archive-list a")]
        assert not doc.cssselect(".summary")  # titles and dates only: a year stays a small page
    assert sorted(reached) == sorted(members["all"])
    assert len(page(dist, SITE + "archive/2024/").cssselect(".archive-list li")) == 22


def test_the_sitemap_lists_every_page_once(newsletter):
    write_issues(newsletter)
    dist = build(newsletter.load_config(), now=NOW, use_cache=False).output
    tree = etree.fromstring((dist / "sitemap.xml").read_bytes())
    locs = tree.xpath("//s:loc/text()", namespaces={"s": "http://www.sitemaps.org/schemas/sitemap/0.9"})
    pages = {SITE + p.parent.relative_to(dist).as_posix() + "/" for p in dist.rglob("index.html")}
    pages = {p.replace("daily/./", "daily/") for p in pages}
    assert len(locs) == len(set(locs))
    assert {unquote(loc) for loc in locs} == pages  # 404.html and the email copies are not pages to index
    assert SITE + "page/6/" in pages and SITE + "tags/all/page/6/" in pages and SITE + "archive/2024/" in pages
    newest = tree.xpath(f"//s:url[s:loc='{SITE}page/6/']/s:lastmod/text()",
                        namespaces={"s": "http://www.sitemaps.org/schemas/sitemap/0.9"})
    assert newest and newest[0].startswith(str(FIRST + timedelta(days=52)))  # a list changes with its newest


def test_a_longer_archive_does_not_make_longer_pages(newsletter, tmp_path):
    write_issues(newsletter, count=30)
    small = build(newsletter.load_config(), now=NOW, use_cache=False).output
    sizes = {p.relative_to(small).as_posix(): p.stat().st_size for p in small.rglob("index.html")}
    write_issues(newsletter, count=120)
    big = build(newsletter.load_config(), now=NOW, use_cache=False).output
    for name in ("index.html", "tags/all/index.html", "tags/half/index.html"):
        grown = (big / name).stat().st_size - sizes[name]
        assert grown < 600, (name, grown)  # the same 10 entries; only counts and the year links differ


def test_per_page_defaults_to_25_and_is_validated(newsletter):
    write_issues(newsletter, count=30, per_page=None)
    dist = build(newsletter.load_config(), now=NOW, use_cache=False).output
    assert len(page(dist, SITE).cssselect(".issue-item")) == 25
    assert len(page(dist, SITE + "page/2/").cssselect(".issue-item")) == 5
    newsletter.config(CONFIG + "per_page = 0\n")
    with pytest.raises(PublisherError, match="site.per_page") as caught:
        newsletter.load_config()
    assert "1 to 1000" in str(caught.value)


def test_a_one_issue_change_does_not_rerender_every_page_of_a_list(newsletter):
    write_issues(newsletter)
    config = newsletter.load_config()
    build(config, now=NOW)
    oldest = newsletter.content / f"{FIRST}-issue-00.md"
    oldest.write_text(oldest.read_text(encoding="utf-8").replace("第 0 期", "第零期"), encoding="utf-8")
    result = build(config, now=NOW)
    # the issue's page and email, its neighbour, the last page of the home page and of its three tags, its year
    # page, and the feeds of its tags: not the 6 pages of each list
    assert result.written <= 16, result.written
    assert "第零期" in (result.output / "page" / "6" / "index.html").read_text(encoding="utf-8")
    assert "第零期" not in (result.output / "page" / "5" / "index.html").read_text(encoding="utf-8")
