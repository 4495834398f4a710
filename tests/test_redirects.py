"""Old addresses keep working: `aliases:` (written by `publisher import --redirects`) become a page per old path
that a real browser follows to the new page, a `_redirects` map, and S3 redirect metadata on a moto server."""

from __future__ import annotations

import boto3
import pytest
from browsers import chromium, served_folder
from conftest import CONFIG, NOW

from publisher import redirects
from publisher.build import build
from publisher.content import load_issues
from publisher.deploy import deploy
from publisher.errors import PublisherError


def test_an_alias_page_sends_a_browser_to_the_new_page(newsletter, tmp_path):
    output = newsletter.root / "dist"
    output.mkdir()
    with served_folder(output) as base:
        newsletter.config(CONFIG.replace("https://news.example.com/daily/", base))
        newsletter.issue("2026-11-20-new-name.md", 'title: 新的一期\ndate: 2026-11-20\n'
                         'aliases: ["/p/old-name", "/2019/05/old.html", "/p/%E6%97%A7/"]\n')
        result = build(newsletter.load_config(), now=NOW)
        files = {p.relative_to(result.output).as_posix() for p in result.output.rglob("*") if p.is_file()}
        assert {"p/old-name/index.html", "2019/05/old.html", "p/旧/index.html", "_redirects"} <= files
        assert (result.output / "_redirects").read_text(encoding="utf-8").splitlines() == [
            "/p/old-name/ /issues/new-name/ 301", "/2019/05/old.html /issues/new-name/ 301",
            "/p/%E6%97%A7/ /issues/new-name/ 301"]
        page = (result.output / "p/old-name/index.html").read_text(encoding="utf-8")
        assert '<html lang="zh-CN">' in page and 'name="robots" content="noindex"' in page
        assert f'<link rel="canonical" href="{base}issues/new-name/">' in page
        assert "old-name" not in (result.output / "sitemap.xml").read_text(encoding="utf-8")
        with chromium() as browser:
            tab = browser.new_page()
            for old in ("p/old-name/", "2019/05/old.html", "p/%E6%97%A7/"):
                tab.goto(base + old)
                tab.wait_for_url(f"{base}issues/new-name/", timeout=10_000)
                assert tab.title().startswith("新的一期")


@pytest.mark.parametrize("alias", ["/../etc/passwd", "javascript:alert(1)", "/a\r\nb", "/a b", "/a?x=1", "/",
                                   "ftp://old.example/p", "/p/%2e%2e/x"])
def test_an_alias_outside_the_site_is_refused_naming_the_file_and_field(newsletter, alias):
    newsletter.issue("2026-11-20-a.md", f"title: A\ndate: 2026-11-20\naliases: [{alias!r}]\n")
    with pytest.raises(PublisherError) as caught:
        load_issues(newsletter.load_config())
    [problem] = caught.value.problems
    assert problem.field == "aliases" and "2026-11-20-a.md" in str(problem.file)


def test_an_alias_may_not_take_a_page_the_site_has(newsletter):
    newsletter.issue("2026-11-20-a.md", "title: A\ndate: 2026-11-20\n")
    newsletter.issue("2026-11-21-b.md", 'title: B\ndate: 2026-11-21\naliases: ["/issues/a/"]\n')
    with pytest.raises(PublisherError) as caught:
        build(newsletter.load_config(), now=NOW)
    assert "issues/a/index.html" in str(caught.value) and "2026-11-21-b.md" in str(caught.value)


def test_s3_gets_the_redirect_location_of_each_alias(newsletter, bucket):
    newsletter.config(CONFIG + f'[deploy]\ntarget = "s3://{bucket}/"\n')
    newsletter.issue("2026-11-20-a.md", 'title: A\ndate: 2026-11-20\naliases: ["/p/old-a/"]\n')
    build(newsletter.load_config(), now=NOW)
    deploy(newsletter.load_config())
    s3 = boto3.client("s3")
    assert s3.head_object(Bucket=bucket, Key="p/old-a/index.html")["WebsiteRedirectLocation"] == "/issues/a/"
    assert "WebsiteRedirectLocation" not in s3.head_object(Bucket=bucket, Key="issues/a/index.html")


def test_import_redirects_keep_the_old_path(newsletter, tmp_path, run_cli):
    feed = tmp_path / "feed.json"
    feed.write_text('{"version": "https://jsonfeed.org/version/1.1", "title": "Old", "items": ['
                    '{"id": "1", "url": "https://old.example/2019/05/first-post.html", "title": "First",'
                    ' "date_published": "2019-05-01T08:00:00Z", "content_html": "<p>正文</p>"},'
                    '{"id": "2", "url": "https://old.example/", "title": "Home page entry",'
                    ' "date_published": "2019-05-02T08:00:00Z", "content_html": "<p>x</p>"}]}', encoding="utf-8")
    result = run_cli("-C", str(newsletter.root), "import", "feed", str(feed), "--redirects")
    assert result.exit_code == 0, result.output
    text = (newsletter.content / "2019-05-01-first-post.md").read_text(encoding="utf-8")
    assert "aliases:\n- /2019/05/first-post.html\n" in text
    assert "no redirect from /" in result.output  # the site's root is not an old issue's address
    issues = load_issues(newsletter.load_config())
    assert [i.aliases for i in issues if i.slug == "first-post"] == [("2019/05/first-post.html",)]


def test_site_paths():
    assert redirects.site_path("https://x.substack.com/p/a-b") == "p/a-b/index.html"
    assert redirects.site_path("/p/%E4%B8%AD/") == "p/中/index.html"
    assert redirects.url_of("p/中/index.html") == "/p/%E4%B8%AD/"
    assert redirects.read_map(b"/p/%E4%B8%AD/ /issues/x/ 301\n# comment\n") == {"p/中/index.html": "/issues/x/"}
