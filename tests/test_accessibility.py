"""Accessibility, checked by a machine (issue 17): axe-core (npm), loaded into the real headless Chromium, finds no
WCAG 2.1 A/AA violation on the pages of the sample newsletter, the email, and the pages `publisher serve` answers,
in light and in dark mode. Plus what axe cannot see: the email's table header in dark mode, long tables on a
phone-wide screen, and no line break inside a token such as `405B` in an email's table cell."""

from __future__ import annotations

import email
import os
import re
import shutil
from email import policy
from pathlib import Path

import httpx
import pytest
import uvicorn
from browsers import chromium, served_folder
from conftest import CONFIG, NOW, REPO, Newsletter, free_port, serve_in_thread
from tools import require
from waiting import wait_for

from publisher.build import build
from publisher.config import load_config
from publisher.tokens import make_token

WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SCHEMES = ["light", "dark"]
SUBSCRIBE_URL = "https://ai-daily.example.com/subscribe"
SECRET = b"accessibility-secret-" * 2


def axe_path() -> Path:
    """axe.min.js: $AXE_CORE, else <repo>/node_modules/axe-core/axe.min.js (`.ci/run` installs it)."""
    path = Path(os.environ.get("AXE_CORE") or REPO / "node_modules" / "axe-core" / "axe.min.js")
    require(path.is_file(), f"axe-core ({path})", "npm install --no-save axe-core@4")
    return path


def audit(page) -> list[dict]:  # type: ignore[no-untyped-def]
    """The WCAG 2.0/2.1 A and AA violations axe finds on the page as it is now."""
    page.add_script_tag(path=str(axe_path()))
    result = page.evaluate("values => axe.run(document, {runOnly: {type: 'tag', values: values}})", WCAG_AA)
    return result["violations"]


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"][:5]:
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            lines.append(f"    {node['target']}: {summary}")
    return "\n".join(lines)


def assert_no_violations(page) -> None:  # type: ignore[no-untyped-def]
    violations = audit(page)
    assert violations == [], f"axe found WCAG 2.1 AA violations on {page.url}:\n{describe(violations)}"


# ---- the parts: Chromium, the built sample site served over HTTP, the endpoint's pages ----


@pytest.fixture(scope="module")
def browser():
    axe_path()
    with chromium() as instance:
        yield instance


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The repository's sample newsletter (search on), with a subscribe form in every page's footer, built and
    served over a local HTTP server; yields its base URL."""
    root = tmp_path_factory.mktemp("a11y") / "news"
    shutil.copytree(REPO / "content", root / "content")
    toml = (REPO / "publisher.toml").read_text(encoding="utf-8")
    (root / "publisher.toml").write_text(toml.replace("[site]\n", f'[site]\nsubscribe_url = "{SUBSCRIBE_URL}"\n', 1),
                                         encoding="utf-8")
    output = root / "dist"
    build(load_config(root, environ={}), now=NOW, output=output, use_cache=False)
    assert (output / "search" / "index.html").is_file()
    assert 'id="subscribe-email"' in (output / "index.html").read_text(encoding="utf-8")
    with served_folder(output) as base:
        yield base


@pytest.fixture
def context_for(browser):
    contexts = []

    def make(scheme: str, width: int = 1280):  # type: ignore[no-untyped-def]
        context = browser.new_context(color_scheme=scheme, viewport={"width": width, "height": 900})
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


# Pages of the site: the home page, an issue with a table, nested lists and images, a tag page, the archive of a
# year, the 404 page, the search page with results, and the email ("view in browser": the HTML sent).
SITE_PAGES = {
    "index": "index.html",
    "issue": "issues/agents-and-evals/",
    "tag": "tags/agents/",
    "archive": "archive/2026/",
    "404": "404.html",
    "search": "search/?q=OSWorld",
    "email": "issues/agents-and-evals/email.html",
}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("name", list(SITE_PAGES))
def test_site_pages_have_no_wcag_violations(site, context_for, name, scheme):
    page = context_for(scheme).new_page()
    response = page.goto(site + SITE_PAGES[name])
    assert response is not None and response.status == 200
    if name == "search":
        page.wait_for_selector(".pagefind-ui__result-link", timeout=15000)
        assert page.locator(".pagefind-ui__result-link").count() >= 1
    if name == "issue":
        assert page.locator(".content table").count() >= 1 and page.locator(".content li ul, .content li ol").count()
        assert page.locator(".content img").count() >= 1
    assert_no_violations(page)


# ---- the pages of `publisher serve`: subscribe answer, confirm (button, done, bad link), unsubscribe ----


@pytest.fixture(scope="module")
def endpoint_pages(tmp_path_factory):
    """The HTML of each page the subscribe endpoint answers, from a real uvicorn server."""
    from publisher.subscription import create_app

    n = Newsletter(tmp_path_factory.mktemp("endpoint") / "news")
    n.config(CONFIG + '[email]\nfrom_address = "news@news.example.com"\n[serve]\nrate_per_ip = 1000\n')
    config = n.load_config()
    port = free_port()
    server, thread = serve_in_thread(uvicorn.Config(create_app(config, secret=SECRET), host="127.0.0.1", port=port,
                                                    log_level="warning"))
    base = f"http://127.0.0.1:{port}"
    pages = {}
    try:
        subscribed = httpx.post(f"{base}/subscribe", data={"email": "reader@example.com"})
        pages["subscribe"] = subscribed.text
        folder = n.root / "outbox" / "confirmations"
        (message,) = wait_for(lambda: sorted(folder.glob("*.eml")) if folder.exists() else [],
                              what="the confirmation")
        text = email.message_from_bytes(message.read_bytes(), policy=policy.default).get_body(("plain",)).get_content()
        path = re.search(r"/confirm\?token=\S+", text).group(0)
        pages["confirm"] = httpx.get(base + path).text
        pages["confirmed"] = httpx.post(base + path).text
        pages["bad link"] = httpx.get(f"{base}/confirm?token=nonsense").text
        token = make_token(SECRET, "unsubscribe", "reader@example.com", "newsletter.news.example.com")
        pages["unsubscribe"] = httpx.get(f"{base}/unsubscribe?token={token}").text
        pages["unsubscribed"] = httpx.post(f"{base}/unsubscribe?token={token}", data={"confirm": "1"}).text
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return pages


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("name", ["subscribe", "confirm", "confirmed", "bad link", "unsubscribe", "unsubscribed"])
def test_endpoint_pages_have_no_wcag_violations(endpoint_pages, context_for, name, scheme):
    assert "<html" in endpoint_pages[name]
    page = context_for(scheme).new_page()
    page.set_content(endpoint_pages[name])
    assert_no_violations(page)


# ---- what axe does not judge: the email's table header in dark mode, long tables, tokens split in two ----

CONTRAST = """e => {
  const rgb = s => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = c => {
    const [r, g, b] = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const style = getComputedStyle(e);
  let under = e;  // the colour behind the text: the nearest box with an opaque background
  const clear = c => /^rgba\\(.*, 0\\)$/.test(c);
  while (under.parentElement && clear(getComputedStyle(under).backgroundColor)) under = under.parentElement;
  const background = getComputedStyle(under).backgroundColor;
  const [a, b] = [lum(rgb(style.color)), lum(rgb(background))];
  return {color: style.color, background,
          ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)};
}"""
WIDE_TABLE = """\
| 模型 | 参数量 | 上下文 | 输入价格（每百万 token） | 输出价格（每百万 token） | 许可证 | 说明 |
| --- | ---: | ---: | ---: | ---: | --- | --- |
| Llama 3.1 | 405B | 128K | $0.80 | $0.80 | Llama 3.1 Community License | \
开源权重中参数量最大的稠密模型之一，适合需要长上下文和多语言能力的企业私有化部署场景 |
| DeepSeek-V4 | 671B | 128K | $0.20 | $0.85 | MIT | 混合专家架构，推理时只激活一小部分参数 |
"""


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """A newsletter with one issue holding a table far wider than a phone, built (web page and email) and served."""
    n = Newsletter(tmp_path_factory.mktemp("wide") / "news")
    n.config()
    n.issue("2026-11-20-wide.md", 'title: "价格表"\ndate: 2026-11-20\n',
            f"本期价格一览。\n\n{WIDE_TABLE}\n表后的一段文字。\n")
    output = n.root / "dist"
    build(n.load_config(), now=NOW, output=output, use_cache=False)
    with served_folder(output) as base:
        yield base + "issues/wide/"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_email_table_header_is_readable_in_both_schemes(site, context_for, scheme):
    page = context_for(scheme).new_page()
    page.goto(site + SITE_PAGES["email"])
    headers = page.locator(".content th")
    assert headers.count() >= 4
    for i in range(headers.count()):
        found = headers.nth(i).evaluate(CONTRAST)
        assert found["ratio"] >= 4.5, f"table header {i} in {scheme} mode: {found}"
    body = page.locator(".content td").first.evaluate(CONTRAST)
    assert body["ratio"] >= 4.5, f"table cell in {scheme} mode: {body}"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_wide_table_scrolls_in_its_own_box_on_a_phone(wide, context_for, scheme):
    page = context_for(scheme, width=375).new_page()
    page.goto(wide)
    table = page.locator(".content table")
    size = table.evaluate("e => ({scroll: e.scrollWidth, client: e.clientWidth,"
                          " overflow: getComputedStyle(e).overflowX, image: getComputedStyle(e).backgroundImage})")
    assert size["scroll"] > size["client"] and size["overflow"] in ("auto", "scroll"), size
    page_width = page.evaluate("({scroll: document.documentElement.scrollWidth,"
                               " client: document.documentElement.clientWidth})")
    assert page_width["scroll"] <= page_width["client"], page_width  # the page itself does not scroll sideways
    assert "gradient" in size["image"], size  # the affordance: a shadow at the edge that hides more columns
    table.evaluate("e => { e.scrollLeft = e.scrollWidth; }")
    assert table.evaluate("e => e.scrollLeft") > 0  # and it really scrolls


def test_a_wide_table_that_scrolls_is_reachable_by_keyboard(wide, context_for):
    page = context_for("light", width=375).new_page()
    page.goto(wide)
    assert_no_violations(page)  # scrollable-region-focusable: Safari cannot scroll an unfocusable box by keyboard


def line_boxes(page, text: str) -> int:  # type: ignore[no-untyped-def]
    """How many line boxes the first text node equal to `text` in a table cell takes."""
    return page.evaluate("""text => {
      const cell = [...document.querySelectorAll('td, th')].find(c => c.textContent.trim() === text);
      const range = document.createRange();
      range.selectNodeContents(cell);
      return new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top))).size;
    }""", text)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_email_table_cells_keep_tokens_whole_on_a_phone(wide, context_for, scheme):
    page = context_for(scheme, width=375).new_page()
    page.goto(wide + "email.html")
    for token in ("405B", "128K", "671B", "$0.80"):
        assert line_boxes(page, token) == 1, f"{token} is broken across lines"
    # Chinese text in a cell still wraps between characters (no overflow from keeping words whole)
    long_cell = page.locator(".content table td", has_text="开源权重中参数量最大")
    assert line_boxes(page, long_cell.inner_text().strip()) > 1
    sizes = page.evaluate("""() => { const table = document.querySelector('.content table');
      return {page: document.documentElement.scrollWidth, viewport: document.documentElement.clientWidth,
              table: table.scrollWidth, box: table.clientWidth, right: table.getBoundingClientRect().right,
              card: document.querySelector('.card').getBoundingClientRect().right}; }""")
    # the message does not scroll sideways, nor is the table cut off by the card: the table scrolls in its own box
    assert sizes["page"] <= sizes["viewport"] and sizes["right"] <= sizes["card"], sizes
    assert sizes["table"] > sizes["box"], sizes
