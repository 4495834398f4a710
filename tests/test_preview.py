"""The local preview, driven in real headless Chromium (Debian's chromium through Playwright, no download)."""

from __future__ import annotations

import shutil

import pytest
from browsers import chromium
from conftest import NOW, REPO
from waiting import wait_for

from publisher.preview import Preview


@pytest.fixture(scope="module")
def browser():
    with chromium() as instance:
        yield instance


@pytest.fixture
def preview(tmp_path):
    root = tmp_path / "news"
    shutil.copytree(REPO / "content", root / "content")
    shutil.copy(REPO / "publisher.toml", root / "publisher.toml")
    running = Preview(root, port=0, clock=lambda: NOW).start()
    yield running
    running.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    yield context.new_page()
    context.close()


def test_serves_only_loopback(preview):
    assert preview.server.server_address[0] == "127.0.0.1"


def test_index_lists_every_issue_with_drafts_and_scheduled_marked(preview, page):
    page.goto(preview.url + "__preview/")
    rows = page.locator("tr.issue-row")
    assert rows.count() == 7 + 1  # the draft and the scheduled issue too, and the welcome email
    text = page.inner_text("table")
    assert "draft" in text and "scheduled" in text and "KB of 102 KB" in text
    assert "the welcome email (not on the site)" in text
    page.goto(preview.url)
    assert page.locator(".issue-item").count() == 7


def test_an_edit_appears_in_the_open_page_without_a_reload(preview, page):
    page.goto(preview.url + "issues/coding-agents/")
    wait_for(lambda: preview.listeners, what="the page's live-reload connection")
    source = preview.root / "content" / "2026-11-23-coding-agents.md"
    source.write_text(source.read_text(encoding="utf-8").replace(
        "编程 Agent 进入“长任务”时代", "编程 Agent 改过的标题"), encoding="utf-8")
    page.wait_for_function("document.title.includes('改过的标题')", timeout=8000)
    assert "改过的标题" in page.inner_text("h1")


def test_broken_frontmatter_shows_the_error_and_fixing_it_recovers(preview, page):
    page.goto(preview.url + "issues/agents-and-evals/")
    wait_for(lambda: preview.listeners, what="the page's live-reload connection")
    source = preview.root / "content" / "2026-11-24-agents-and-evals.md"
    good = source.read_text(encoding="utf-8")
    source.write_text(good.replace("date: 2026-11-24 08:00:00", "date: 2026-13-45"), encoding="utf-8")
    overlay = page.locator("#publisher-error-overlay")
    overlay.wait_for(timeout=8000)
    message = overlay.inner_text()
    assert "content/2026-11-24-agents-and-evals.md" in message and "date:" in message
    assert page.locator("h1.issue-title").count() == 1  # the last good page is still there under it
    source.write_text(good.replace("新基准 OSWorld-Live", "修好了"), encoding="utf-8")
    page.wait_for_function("document.title.includes('修好了')", timeout=8000)
    assert page.locator("#publisher-error-overlay").count() == 0


@pytest.mark.parametrize("width", [375, 600])
def test_email_has_no_horizontal_scrolling(preview, browser, width, tmp_path):
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    for slug in ("coding-agents", "agents-and-evals", "multimodal-weekend"):
        page.goto(f"{preview.url}__preview/email/{slug}.html")
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, (slug, scroll)
        shot = tmp_path / f"{slug}-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    context.close()


def test_dark_mode_simulation_is_dark_and_readable(preview, page):
    page.goto(preview.url + "__preview/email/coding-agents.html?dark=1")
    colors = page.evaluate("""() => {
        const card = document.querySelector('.card');
        const text = card.querySelector('h1');
        return [getComputedStyle(card).backgroundColor, getComputedStyle(text).color];
    }""")

    def luminance(css):
        r, g, b = [int(x) for x in css[css.index("(") + 1:css.index(")")].split(",")[:3]]
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255

    background, text = (luminance(c) for c in colors)
    assert background < 0.2 and text > 0.7  # dark card, light text: nothing vanishes


def test_issue_preview_shows_frames_text_headers_and_size(preview, page):
    page.goto(preview.url + "__preview/issue/coding-agents")
    assert page.locator("iframe").count() == 3
    widths = page.evaluate("[...document.querySelectorAll('iframe')].map(f => f.getBoundingClientRect().width)")
    assert round(widths[0]) in (375, 377) and round(widths[1]) >= 600
    text = page.inner_text("body")
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in text
    assert "你好，读者：" in text and "KB of 102 KB" in text


def test_feeds_read_as_pages_in_the_browser(preview, page):
    page.goto(preview.url + "rss.xml")
    assert page.locator("#feed-url").count() == 1
    assert page.input_value("#feed-url") == "https://ai-daily.example.com/rss.xml"
    assert "复制订阅源地址" in page.inner_text("body")  # the zh-CN catalogue's "Copy feed URL"
    assert "编程 Agent" in page.inner_text("ol")
    page.goto(preview.url + "tags/agents/atom.xml")
    assert page.input_value("#feed-url") == "https://ai-daily.example.com/tags/agents/atom.xml"
