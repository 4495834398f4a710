"""Issue 15 ("The first hour"), items 1, 2, 6 and 16: relative links in feeds and emails, missing local files,
the Atom author of a site without `site.author`, and several authors of one RSS item in a real reader."""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import feedparser
import pytest
from conftest import CONFIG
from feedcheck import check_atom, check_json_feed, check_rss
from tools import require_command

from publisher import markdown

SITE = "https://news.example.com/daily/"  # conftest's site.url: a site in a sub-folder of its host
URL_ATTR = re.compile(r'(?:href|src)="([^"]*)"')

X = "title: 上一期\ndate: 2026-11-20\n"
Y_FRONTMATTER = "title: 本期\ndate: 2026-11-21\nimage: cover.png\n"
# Line 7 of content/2026-11-21-y.md (---, 3 keys, ---, a blank line, then the body).
Y_BODY = ("见 [上一期](../2026-11-20-x/)、[归档](/)、[同一期](2026-11-20-x.md)、[订阅](/rss.xml)。\n\n"
          "![图](images/chart.png)\n")


def two_issues(newsletter, body: str = Y_BODY) -> None:
    newsletter.issue("2026-11-20-x.md", X)
    newsletter.issue("2026-11-21-y.md", Y_FRONTMATTER, body)
    (newsletter.content / "images").mkdir(exist_ok=True)
    (newsletter.content / "images" / "chart.png").write_bytes(b"\x89PNG fake")
    (newsletter.content / "cover.png").write_bytes(b"\x89PNG fake")


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ---- item 1: every URL in a feed or an email is absolute ----


def test_relative_links_are_absolute_in_every_feed_but_stay_relative_on_the_web(newsletter, run_cli):
    two_issues(newsletter)
    result = run_cli("-C", str(newsletter.root), "build")
    assert result.exit_code == 0, result.output
    dist = newsletter.root / "dist"
    previous = SITE + "issues/2026-11-20-x/"  # `../2026-11-20-x/` from the page issues/y/
    rss, atom = feedparser.parse(dist / "rss.xml"), feedparser.parse(dist / "atom.xml")
    assert rss.bozo == 0 and atom.bozo == 0
    for parsed in (rss, atom):
        (entry,) = [e for e in parsed.entries if e.link == SITE + "issues/y/"]
        html = entry.content[0].value
        assert f'href="{previous}"' in html
        assert f'href="{SITE}"' in html  # `/`: the site's root, which is under site.url's path
        assert f'href="{SITE}issues/x/"' in html and f'href="{SITE}rss.xml"' in html
        assert f'src="{SITE}images/chart.png"' in html
    item = next(i for i in json.loads((dist / "feed.json").read_text())["items"] if i["id"] == SITE + "issues/y/")
    assert f'href="{previous}"' in item["content_html"] and item["image"] == SITE + "cover.png"
    for name, data in tree(dist).items():
        if name.endswith(("rss.xml", "atom.xml", "feed.json")):
            text = data.decode()
            urls = [u for u in URL_ATTR.findall(text) + re.findall(r'href=\\"([^"\\]*)\\"', text)
                    if u != "static/feed.xsl" and not u.endswith("/static/feed.xsl")]
            assert urls and [u for u in urls if markdown.is_relative(u)] == [], name
    # The W3C validator's rules (ContainsRelRef) agree.
    assert check_rss((dist / "rss.xml").read_bytes(), self_url=SITE + "rss.xml") == []
    assert check_atom((dist / "atom.xml").read_bytes(), self_url=SITE + "atom.xml") == []
    assert check_json_feed((dist / "feed.json").read_bytes(), self_url=SITE + "feed.json") == []
    # The web page keeps the link as written: a browser resolves it against the page, to the same place.
    page = (dist / "issues" / "y" / "index.html").read_text()
    assert 'href="../2026-11-20-x/"' in page and 'href="../../issues/x/"' in page


def test_relative_links_are_absolute_in_the_email(newsletter, run_cli):
    two_issues(newsletter)
    result = run_cli("-C", str(newsletter.root), "email", "y")
    assert result.exit_code == 0, result.output
    assert f'href="{SITE}issues/2026-11-20-x/"' in result.stdout and f'href="{SITE}"' in result.stdout
    assert "../2026-11-20-x/" not in result.stdout
    urls = URL_ATTR.findall(result.stdout)
    assert urls and [u for u in urls if markdown.is_relative(u)] == []
    assert "is not an http(s) or mailto URL" not in result.stderr  # the warning the relative link used to raise


def test_relative_links_are_absolute_in_the_emails_plain_text(newsletter, run_cli):
    two_issues(newsletter)
    result = run_cli("-C", str(newsletter.root), "email", "y", "--text")
    assert result.exit_code == 0, result.output
    assert f"{SITE}issues/2026-11-20-x/" in result.stdout and "../2026-11-20-x/" not in result.stdout


@pytest.mark.parametrize(("url", "expected"), [
    ("../2026-11-20-x/", SITE + "issues/2026-11-20-x/"),  # out of content/: against the issue's page
    ("../../about/", SITE + "about/"),
    ("../../../elsewhere/", "https://news.example.com/elsewhere/"),  # above the site: as a browser would
    ("/", SITE), ("/about/?a=1#b", SITE + "about/?a=1#b"),  # root-relative: the site's root (site.url's path)
    ("images/a b.png", SITE + "images/a%20b.png"),  # beside the issue in content/
    ("2026/2026-11-19-z.md#top", SITE + "issues/z/#top"), ("#fn1", SITE + "issues/y/#fn1"),
    ("//cdn.example.com/a.png", "https://cdn.example.com/a.png"), ("https://e.org/", "https://e.org/"),
])
def test_absolute_resolves_what_content_cannot_against_the_page(url, expected):
    from pathlib import PurePosixPath

    pages = {"2026/2026-11-19-z.md": "issues/z/"}
    assert markdown.absolute(url, PurePosixPath("."), pages, SITE, SITE + "issues/y/") == expected


def test_check_warns_about_a_relative_link_to_nothing_naming_file_and_line(newsletter, run_cli):
    two_issues(newsletter, Y_BODY + "\n另见 [附件](files/report.pdf) 和 [旧址](../../../old/)。\n")
    result = run_cli("-C", str(newsletter.root), "check")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "points at" in line]
    # x's slug is `x`: `../2026-11-20-x/` is a page the build does not make (line 7); the rest of line 7 is fine.
    assert warnings[0].startswith("warning: content/2026-11-21-y.md:7: the link '../2026-11-20-x/' points at "
                                  "issues/2026-11-20-x/, which nothing in the build makes")
    assert "2026-11-20-x.md" in warnings[0]  # the hint: link to the Markdown file
    assert warnings[1].startswith("warning: content/2026-11-21-y.md:11: the link 'files/report.pdf' points at "
                                  "files/report.pdf,")
    assert warnings[2].startswith("warning: content/2026-11-21-y.md:11: the link '../../../old/' points at a "
                                  "place above the site's root")
    assert len(warnings) == 3  # not `/`, `2026-11-20-x.md`, `/rss.xml` or the image: they exist


# ---- item 2: a missing local file is an error, in check and in build ----


def test_a_missing_cover_image_fails_check_and_build_naming_the_key_line(newsletter, run_cli):
    two_issues(newsletter)
    (newsletter.content / "cover.png").unlink()
    for command in ("check", "build"):
        result = run_cli("-C", str(newsletter.root), command)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error: content/2026-11-21-y.md:4: image: 'cover.png' is not a file in "
                                        "content/ (it points at content/cover.png) (add the file"), result.stderr
        assert "Traceback" not in result.output
    assert not (newsletter.root / "dist").exists()


def test_a_missing_image_in_the_body_fails_the_build_and_leaves_dist_as_it_was(newsletter, run_cli):
    two_issues(newsletter)
    assert run_cli("-C", str(newsletter.root), "build").exit_code == 0
    before = tree(newsletter.root / "dist")
    body = ("\n\n第一段。\n\n![图](images/nope.png)\n\n<p><img src=\"pics/%E5%9B%BE.png\" alt=\"x\"></p>\n\n"
            "![远程](https://img.example.com/a.png) ![有](../images/chart.png)\n")
    newsletter.issue("2026/2026-11-22-z.md", "title: Z\ndate: 2026-11-22\n", body)
    result = run_cli("-C", str(newsletter.root), "build")
    assert result.exit_code == 1
    errors = result.stderr.splitlines()
    # content/2026/2026-11-22-z.md: ---, 2 keys, ---, 3 blank lines, 第一段 (line 8), blank, the image (line 10)
    assert errors[0].startswith("error: content/2026/2026-11-22-z.md:10: the image 'images/nope.png' is not a file "
                                "in content/ (it points at content/2026/images/nope.png)")
    assert errors[1].startswith("error: content/2026/2026-11-22-z.md:12: the image 'pics/图.png' is not a file")
    assert len(errors) == 2  # the remote image and the one that is there pass
    assert tree(newsletter.root / "dist") == before
    check = run_cli("-C", str(newsletter.root), "check")
    assert check.exit_code == 1 and check.stderr.splitlines() == errors


def test_an_image_deleted_after_a_cached_build_fails_the_next_build(newsletter, run_cli):
    two_issues(newsletter)
    assert run_cli("-C", str(newsletter.root), "build").exit_code == 0  # the parsed issues are now in the cache
    (newsletter.content / "images" / "chart.png").unlink()
    result = run_cli("-C", str(newsletter.root), "build")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: content/2026-11-21-y.md:9: the image 'images/chart.png' is not a file")


def test_images_that_exist_pass(newsletter, run_cli):
    two_issues(newsletter, Y_BODY + "\n![上层](../images/chart.png)\n")  # .. from content/: the page's folder
    (newsletter.content / "issues" / "images").mkdir(parents=True)
    (newsletter.content / "issues" / "images" / "chart.png").write_bytes(b"\x89PNG")
    result = run_cli("-C", str(newsletter.root), "build")
    assert result.exit_code == 0, result.output


# ---- item 6: Atom needs an author; without site.author it is the site's title ----


def test_without_site_author_the_feeds_name_the_site_and_check_says_so(newsletter, run_cli):
    newsletter.config(CONFIG.replace('author = "编辑部"\n', 'author = ""\n'))
    newsletter.issue("2026-11-20-x.md", X)
    assert run_cli("-C", str(newsletter.root), "build").exit_code == 0
    dist = newsletter.root / "dist"
    atom_bytes = (dist / "atom.xml").read_bytes()
    assert check_atom(atom_bytes, self_url=SITE + "atom.xml") == []  # "MissingAuthor" before
    atom = feedparser.parse(atom_bytes)
    assert atom.bozo == 0 and atom.feed.author_detail.name == "AI 日报"
    result = run_cli("-C", str(newsletter.root), "check")
    assert result.exit_code == 0
    assert ("warning: publisher.toml: site.author is empty; the Atom feeds name the site title ('AI 日报')"
            in result.stderr)


# ---- item 16: several authors, one dc:creator that readers show whole ----


def newsboat_authors(tmp_path: Path, dist: Path, feed: str) -> dict[str, str]:
    """Title -> author of each item, as the real newsboat stored them after fetching `feed` over HTTP."""
    newsboat = require_command("newsboat", "apt-get install newsboat")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(dist))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        home = tmp_path / "newsboat-home"
        home.mkdir()
        (home / "urls").write_text(f"http://127.0.0.1:{server.server_port}/{feed}\n")
        (home / "config").write_text("")
        subprocess.run([newsboat, "-u", str(home / "urls"), "-c", str(home / "cache.db"), "-C", str(home / "config"),
                        "-x", "reload"], env={"HOME": str(home), "PATH": "/usr/bin:/bin"}, timeout=120, check=False,
                       capture_output=True)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    with sqlite3.connect(home / "cache.db") as db:  # newsboat exits 0 even on errors: the items tell
        return dict(db.execute("SELECT title, author FROM rss_item").fetchall())


@pytest.mark.parametrize(("language", "authors", "shown"), [
    ("zh-CN", '["张三", "Jane Doe"]', "张三、Jane Doe"),
    ("en", '["Ann Lee", "Bo Chen", "Cy"]', "Ann Lee, Bo Chen, Cy"),
])
def test_an_rss_item_with_several_authors_shows_them_all_in_newsboat(newsletter, run_cli, tmp_path, language,
                                                                      authors, shown):
    newsletter.config(CONFIG.replace('"zh-CN"', f'"{language}"'))
    newsletter.issue("2026-11-20-x.md", X + f"authors: {authors}\n")
    newsletter.issue("2026-11-21-y.md", "title: 一人\ndate: 2026-11-21\n")
    assert run_cli("-C", str(newsletter.root), "build").exit_code == 0
    dist = newsletter.root / "dist"
    rss_bytes = (dist / "rss.xml").read_bytes()
    # newsboat keeps the last of several dc:creator ("Jane Doe" alone, before)
    assert newsboat_authors(tmp_path, dist, "rss.xml") == {"上一期": shown, "一人": "编辑部"}
    assert rss_bytes.count(b"<dc:creator>") == 2  # one an item
    rss = feedparser.parse(rss_bytes)
    assert rss.bozo == 0 and [e.author for e in rss.entries] == ["编辑部", shown]
    assert check_rss(rss_bytes, self_url=SITE + "rss.xml") == []
    # Atom keeps one <author> per person (feedparser lists them all), and the JSON Feed a list.
    atom = feedparser.parse(dist / "atom.xml")
    assert [a.name for a in atom.entries[1].authors] == json.loads(authors)
    item = json.loads((dist / "feed.json").read_text())["items"][1]
    assert [a["name"] for a in item["authors"]] == json.loads(authors)
