"""`publisher review` (publisher/review.py) with real parts: Chromium through Playwright for the screenshots, local
HTTP servers for the links (a broken one, redirects, a slow one), SpamAssassin, a throwaway git repository."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import CONFIG, NOW
from tools import require, require_command, require_module

from publisher import emails, review
from publisher.errors import PublisherError

# Settings that leave a clean issue with nothing to warn about (a postal address, an unsubscribe endpoint).
CLEAN = CONFIG + ('[email]\npostal_address = "编辑部 · 上海市徐汇区 1 号"\nfrom_address = "news@news.example.com"\n'
                  '[serve]\npublic_url = "https://news.example.com/daily/"\n')

BODY = """\
第一段：本期要闻，包括 [一个链接](https://example.com/a) 与 [下文](#细节)。

## 要闻

- **OpenAI** 发布了新模型
- 另一条新闻

## 细节

更多内容。
"""


def options(tmp_path: Path, **changes) -> review.Options:
    values = {"out": tmp_path / "review", "offline": True, "screenshots": False, "spam": False}
    values.update(changes)
    return review.Options(**values)


@pytest.fixture
def clean(newsletter):
    newsletter.config(CLEAN)
    return newsletter


@pytest.fixture(autouse=True)
def fixed_secret(monkeypatch):
    monkeypatch.setenv("PUBLISHER_SECRET", "review-test-secret-7Hq2xZ9pLm4Rt8Vb")


# ---------------------------------------------------------------- screenshots


def png_rows(data: bytes, rows: int) -> tuple[int, int, list[bytes], int]:
    """(width, height, the first `rows` rows of pixels, bytes per pixel) of an 8-bit non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, header = 8, b"", b""
    while at < len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        kind, chunk = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        at += 12 + length
    width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:8], "big")
    depth, color, interlace = header[8], header[9], header[12]
    assert depth == 8 and interlace == 0 and color in (2, 6), header
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    out, previous = [], bytearray(stride)
    for y in range(min(rows, height)):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = previous[x]
            c = previous[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out.append(bytes(line))
        previous = line
    return width, height, out, bpp


def pixels(rows: list[bytes], bpp: int) -> list[tuple[int, ...]]:
    return [tuple(row[i:i + 3]) for row in rows for i in range(0, len(row), bpp)]


def test_screenshots_exist_with_the_expected_sizes_and_content(clean, tmp_path):
    require(review.chromium_path() is not None, "Chromium", "apt-get install chromium")
    require_module("playwright")
    clean.issue("2026-11-20-a.md", 'title: "本周要闻"\ndate: 2026-11-20\n', BODY * 3)
    result = review.review(clean.load_config(), options(tmp_path, screenshots=True, slugs=["a"]), now=NOW)
    (item,) = result.issues
    assert item.shots_note == ""
    shots = {s.name: s for s in item.shots}
    expected = {"a-page-375.png": 375, "a-page-1280.png": 1280, "a-email-375.png": 375, "a-email-600.png": 600,
                "a-email-dark-375.png": 375}
    assert set(shots) == set(expected)
    screens = tmp_path / "review" / "screens"
    means = {}
    for name, width in expected.items():
        data = (screens / name).read_bytes()
        w, h, rows, bpp = png_rows(data, 400)
        assert (w, h) == (width, shots[name].height) == (shots[name].width, shots[name].height)
        assert 200 < h <= review.SHOT_MAX_HEIGHT, (name, h)
        colours = set(pixels(rows, bpp))
        assert len(colours) > 20, f"{name} looks blank ({len(colours)} colours)"  # text, antialiased
        means[name] = sum(sum(p) for p in pixels(rows, bpp)) / (3 * len(pixels(rows, bpp)))
    assert means["a-email-dark-375.png"] < 100 < means["a-email-375.png"], means  # dark mode is dark
    page = (tmp_path / "review" / "report.html").read_text(encoding="utf-8")
    assert 'src="screens/a-email-dark-375.png"' in page and "<script" not in page and "http://" not in page.replace(
        'href="https://example.com/a"', "")


def test_without_playwright_the_report_says_how_to_get_screenshots(clean, tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_playwright(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name.startswith("playwright"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_playwright)
    clean.issue("2026-11-20-a.md")
    result = review.review(clean.load_config(), options(tmp_path, screenshots=True, slugs=["a"]), now=NOW)
    assert result.issues[0].shots == [] and "pip install 'publisher[review]'" in result.issues[0].shots_note
    assert "pip install 'publisher[review]'" in (tmp_path / "review" / "report.md").read_text(encoding="utf-8")


# ---------------------------------------------------------------- links


class LinkServer:
    """A local HTTP server with a good page, a broken one, redirects, a HEAD-refusing one and a slow one (it
    holds the request until the test releases it: no sleep anywhere)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.requests: list[tuple[str, str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # type: ignore[no-untyped-def]
                pass

            def answer(self) -> None:
                server.requests.append((self.command, self.path, self.headers.get("User-Agent", "")))
                path = self.path.split("?", 1)[0]
                if path == "/slow":
                    server.release.wait(30)
                    return
                if path.startswith("/page") or path == "/%E6%96%B0%E9%97%BB%20x":
                    self.send_response(200)
                elif path == "/missing":
                    self.send_response(404)
                elif path == "/broken":
                    self.send_response(500)
                elif path == "/forbidden":
                    self.send_response(403)
                elif path == "/old":
                    self.send_response(301)
                    self.send_header("Location", "/older")
                elif path == "/older":
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{server.port}/page?x=1")
                elif path == "/loop":
                    self.send_response(302)
                    self.send_header("Location", "/loop2")
                elif path == "/loop2":
                    self.send_response(302)
                    self.send_header("Location", "/loop")
                elif path == "/to-ftp":
                    self.send_response(302)
                    self.send_header("Location", "ftp://127.0.0.1/x")
                elif path == "/get-only":
                    self.send_response(405 if self.command == "HEAD" else 200)
                else:
                    self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_HEAD = do_GET = answer  # noqa: N815 (http.server's names)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LinkServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def links():
    with LinkServer() as server:
        yield server


def test_links_are_checked_with_status_redirect_chain_and_timeout(links):
    urls = [f"{links.base}{p}" for p in ("/page", "/missing", "/broken", "/forbidden", "/old", "/loop", "/to-ftp",
                                          "/get-only", "/slow", "/新闻 x")] + ["http://127.0.0.1:99999/bad-port"]
    results = review.check_links(urls, timeout=2, total=30)
    links.release.set()
    got = {url.rsplit("/", 1)[1]: r for url, r in results.items()}
    assert (got["page"].status, got["page"].level) == (200, "ok")
    assert (got["新闻 x"].status, got["新闻 x"].level) == (200, "ok")  # sent percent-encoded
    assert got["bad-port"].level == "error" and got["bad-port"].error.startswith("invalid URL: Port out of range")
    assert (got["missing"].status, got["missing"].level) == (404, "error")
    assert (got["broken"].status, got["broken"].level) == (500, "error")
    assert (got["forbidden"].status, got["forbidden"].level) == (403, "warning")
    old = got["old"]
    assert old.chain == [(301, f"{links.base}/old"), (302, f"{links.base}/older")]
    assert (old.status, old.final_url, old.level) == (200, f"{links.base}/page?x=1", "ok")
    assert got["loop"].error.startswith("redirect loop") and got["loop"].level == "error"
    assert "not an http(s) URL" in got["to-ftp"].error and got["to-ftp"].level == "error"
    assert (got["get-only"].status, got["get-only"].method) == (200, "GET")
    slow = got["slow"]
    assert slow.error == "timeout after 2 s" and slow.level == "warning"
    assert slow.seconds < 4, "the timeout holds"
    assert {agent for _, _, agent in links.requests} == {"publisher-review/1"}
    assert [m for m, p, _ in links.requests if p == "/page"] == ["HEAD"]
    assert ("GET", "/get-only") in [(m, p) for m, p, _ in links.requests]


def test_the_time_limit_for_all_links_leaves_the_rest_not_checked(links):
    urls = [f"{links.base}/slow?{n}" for n in range(4)]
    results = review.check_links(urls, concurrency=1, timeout=0.3, total=0.5)
    links.release.set()
    errors = [r.error for r in results.values()]
    assert errors[0] == "timeout after 0.3 s"
    assert any(e.startswith("not checked: the time limit") for e in errors[1:]), errors
    assert not any(r.url.startswith("file:") for r in results.values())


def test_review_flags_broken_links_anchors_and_shows_redirects(clean, tmp_path, links):
    clean.issue("2026-11-19-b.md", 'title: "前一期"\ndate: 2026-11-19\n', "## 旧闻\n\n内容。\n")
    body = (f"第一段 [好]({links.base}/page)、[坏]({links.base}/missing)、[搬家]({links.base}/old)、"
            f"[慢]({links.base}/slow)、[邮件](mailto:a@example.com)。\n\n"
            f"![图]({links.base}/page.png)\n\n[本页锚点](#细节) [不存在](#nowhere) "
            "[上一期](2026-11-19-b.md#旧闻) [上一期坏锚](2026-11-19-b.md#nothing)\n\n## 细节\n\n正文。\n")
    clean.issue("2026-11-20-a.md", 'title: "链接"\ndate: 2026-11-20\n', body)
    opts = options(tmp_path, offline=False, slugs=["a"], link_timeout=2)
    result = review.review(clean.load_config(), opts, now=NOW)
    links.release.set()
    (item,) = result.issues
    by_url = {link.url.replace(links.base, ""): link for link in item.links}
    assert by_url["/missing"].status == 404 and by_url["/missing"].level == "error"
    assert by_url["/slow"].error == "timeout after 2 s"
    assert by_url["/page.png"].kind == "image"
    assert by_url["mailto:a@example.com"].error.startswith("not checked")
    own = [link for link in item.links if link.local]
    assert {link.status for link in own} == {200} and own, "the site's own pages are checked in the rendered site"
    anchors = " ".join(f.message for f in item.anchors)
    assert "#nowhere" in anchors and "'nothing'" in anchors and "细节" not in anchors and "旧闻" not in anchors
    assert (item.verdict, result.verdict, result.exit_code) == ("errors", "errors", 1)
    md = (tmp_path / "review" / "report.md").read_text(encoding="utf-8")
    assert f"301 {links.base}/old → 302 {links.base}/older → 200 {links.base}/page?x=1" in md
    assert "`" + links.base + "/missing` link: 404" in md and "timeout after 2 s" in md
    data = json.loads((tmp_path / "review" / "report.json").read_text(encoding="utf-8"))
    assert data["exit_code"] == 1 and data["issues"][0]["links"][0]["level"] == "error"


def test_offline_skips_the_network(clean, tmp_path, links):
    clean.issue("2026-11-20-a.md", 'title: "链接"\ndate: 2026-11-20\n', f"第一段 [坏]({links.base}/missing)。\n")
    result = review.review(clean.load_config(), options(tmp_path, slugs=["a"]), now=NOW)
    assert links.requests == []
    assert result.issues[0].links[0].error == "not checked: offline" and result.exit_code == 0


# ---------------------------------------------------------------- the email as inboxes see it


def test_spam_section_matches_spamassassin_run_by_hand(clean, tmp_path):
    path = require_command("spamassassin", "apt-get install spamassassin")
    clean.issue("2026-11-20-a.md", 'title: "本周要闻"\ndate: 2026-11-20\n', BODY)
    result = review.review(clean.load_config(), options(tmp_path, spam=True, slugs=["a"]), now=NOW)
    (item,) = result.issues
    eml = (tmp_path / "review" / "a.eml").read_bytes()
    by_hand = subprocess.run([path, "-L", "-t"], input=eml, capture_output=True, timeout=120).stdout.decode()
    status = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+) required=([\d.]+) tests=(.*?) autolearn",
                       by_hand, re.M | re.S)
    assert status, by_hand[:2000]
    rules = {r for r in re.split(r"[\s,]+", status.group(3)) if r and r != "none"}
    assert item.spam.checked and (item.spam.score, item.spam.required) == (float(status.group(1)),
                                                                           float(status.group(2)))
    assert {name for _, name, _ in item.spam.rules} == rules
    assert all(description for _, _, description in item.spam.rules)
    md = (tmp_path / "review" / "report.md").read_text(encoding="utf-8")
    assert f"**SpamAssassin**: {status.group(1)} points" in md
    assert all(f"`{rule}`" in md for rule in rules)


def test_spam_not_checked_without_spamassassin(clean, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    clean.issue("2026-11-20-a.md")
    result = review.review(clean.load_config(), options(tmp_path, spam=True, slugs=["a"]), now=NOW)
    assert result.issues[0].spam.note.startswith("not checked: spamassassin is not installed")
    assert "**SpamAssassin**: not checked" in (tmp_path / "review" / "report.md").read_text(encoding="utf-8")


def test_parse_spamassassin_reads_wrapped_descriptions():
    output = ("X-Spam-Status: No, score=1.2 required=5.0 tests=A_RULE,B_RULE\n\n"
              "Content analysis details:   (1.2 points, 5.0 required)\n\n"
              " pts rule name              description\n---- ---------------------- -------------------------\n"
              " 1.0 A_RULE                 First line\n                            and its continuation\n"
              " 0.2 B_RULE                 Other\n\nrest of the message\n")
    spam = review.parse_spamassassin(output)
    assert (spam.score, spam.required) == (1.2, 5.0)
    assert spam.rules == [(1.0, "A_RULE", "First line and its continuation"), (0.2, "B_RULE", "Other")]


def test_the_inbox_view_subject_from_preheader_size_text_and_headers(clean, tmp_path):
    clean.issue("2026-11-20-a.md", 'title: "本周要闻"\ndate: 2026-11-20\npreheader: "收件箱里的预览"\n', BODY)
    result = review.review(clean.load_config(), options(tmp_path, slugs=["a"]), now=NOW)
    (item,) = result.issues
    assert item.subject == "本周要闻" and item.preheader == "收件箱里的预览"
    assert "news@news.example.com" in item.from_ and "OpenAI" in item.text
    assert item.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert item.headers["List-Unsubscribe"].startswith("<https://news.example.com/daily/unsubscribe?token=")
    assert 0 < item.html_size < emails.GMAIL_CLIP_BYTES
    md = (tmp_path / "review" / "report.md").read_text(encoding="utf-8")
    assert "| Preheader | 收件箱里的预览 |" in md and "of Gmail's 102 KB clip" in md


# ---------------------------------------------------------------- content checks and the verdict


def test_exit_codes_ok_warnings_strict_and_errors(clean, tmp_path):
    clean.issue("2026-11-20-a.md", 'title: "好"\ndate: 2026-11-20\n', BODY)
    config = clean.load_config()
    ok = review.review(config, options(tmp_path, slugs=["a"]), now=NOW)
    assert [f.message for f in ok.issues[0].findings if f.level != "info"] == []
    assert (ok.verdict, ok.exit_code) == ("ok", 0)
    clean.issue("2026-11-21-w.md", 'title: "空节"\ndate: 2026-11-21\n',
                "第一段。\n\n## 空的一节\n\n## 下一节\n\n内容。\n")
    warned = review.review(config, options(tmp_path, slugs=["w"]), now=NOW)
    assert (warned.verdict, warned.exit_code) == ("warnings", 0)
    assert "the section '空的一节' is empty" in " ".join(f.message for f in warned.issues[0].findings)
    assert review.review(config, options(tmp_path, slugs=["w"], strict=True), now=NOW).exit_code == 1
    clean.issue("2026-11-22-e.md", 'title: "坏锚"\ndate: 2026-11-22\n', "第一段 [x](#nowhere)。\n")
    failed = review.review(config, options(tmp_path, slugs=["e"]), now=NOW)
    assert (failed.verdict, failed.exit_code) == ("errors", 1)


def test_content_checks_long_summary_large_image_and_check_warnings(clean, tmp_path):
    (clean.content / "big.png").write_bytes(b"\x89PNG" + b"0" * 30_000)
    clean.issue("2026-11-20-a.md", f'title: "图"\ndate: 2026-11-20\nsummary: "{"长" * 300}"\ntgas: [x]\n',
                "第一段 ![大图](big.png) ![](big.png)\n\n[坏链接](nowhere.html)\n")
    result = review.review(clean.load_config(), options(tmp_path, slugs=["a"], max_image_kb=20), now=NOW)
    messages = " ".join(f.message for f in result.issues[0].findings)
    assert "summary: 300 characters" in messages
    assert "big.png is 29 KB (over 20 KB)" in messages
    assert "an image has no alt text" in messages  # as `check` says
    assert "tgas" in messages  # an unknown key, as `check` warns
    assert "nowhere.html" in messages  # a relative link to nothing the build makes


def test_a_missing_local_image_is_an_error_of_that_issue(clean, tmp_path):
    clean.issue("2026-11-19-ok.md", 'title: "好"\ndate: 2026-11-19\n')
    clean.issue("2026-11-20-a.md", 'title: "缺图"\ndate: 2026-11-20\n', "第一段 ![图](missing.png)\n")
    result = review.review(clean.load_config(), options(tmp_path, slugs=["a"]), now=NOW)
    (item,) = result.issues
    assert (item.slug, item.status) == ("a", "does not load") and "missing.png" in item.findings[0].message
    assert result.exit_code == 1


def test_diff_against_the_copy_last_sent(clean, tmp_path):
    path = clean.issue("2026-11-20-a.md", 'title: "要闻"\ndate: 2026-11-20\n', "第一段：旧的说法。\n")
    config = clean.load_config()
    first = review.review(config, options(tmp_path, slugs=["a"]), now=NOW)
    assert first.issues[0].diff == "" and first.issues[0].diff_note == "no sent copy to compare"
    # What the outbox transport keeps of a sent message: the message itself.
    from publisher import content, markdown

    (issue,) = content.load_issues(config)
    rendered = emails.render_email(config, issue, markdown.to_html(issue.body))
    factory = emails.MessageFactory(rendered, emails.sender_of(config), b"another-secret-" * 3, date=NOW)
    outbox = clean.root / "outbox" / "a"
    outbox.mkdir(parents=True)
    (outbox / "1.eml").write_bytes(factory.message(emails.Recipient("reader@example.net", "小王")))
    same = review.review(config, options(tmp_path, slugs=["a"]), now=NOW)
    assert same.issues[0].diff == "" and same.issues[0].diff_note.startswith("unchanged since it was sent")
    path.write_text(path.read_text(encoding="utf-8").replace("旧的说法", "新的说法"), encoding="utf-8")
    edited = review.review(config, options(tmp_path, slugs=["a"]), now=NOW)
    diff = edited.issues[0].diff
    assert "-第一段：旧的说法。" in diff and "+第一段：新的说法。" in diff
    assert "token=" not in diff.replace("token=…", "")
    assert edited.verdict == "warnings"
    assert "```diff" in (tmp_path / "review" / "report.md").read_text(encoding="utf-8")


def test_review_reads_and_writes_nothing_but_its_report(clean, tmp_path):
    clean.issue("2026-11-20-a.md")

    def files() -> list[Path]:  # the compiled templates are a cache `check` makes too
        return sorted(p.relative_to(clean.root) for p in clean.root.rglob("*")
                      if ".publisher-cache" not in p.relative_to(clean.root).parts)

    before = files()
    out = tmp_path / "elsewhere"
    review.review(clean.load_config(), options(tmp_path, out=out, slugs=["a"]), now=NOW)
    assert files() == before  # no dist/, no subscribers.db, no outbox
    assert {p.name for p in out.iterdir()} == {"report.html", "report.md", "report.json", "a.eml", ".publisher-review"}
    with pytest.raises(PublisherError, match="inside content/"):
        review.review(clean.load_config(), options(tmp_path, out=clean.content / "r", slugs=["a"]), now=NOW)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(PublisherError, match="holds other files"):
        review.review(clean.load_config(), options(tmp_path, out=busy, slugs=["a"]), now=NOW)


def test_the_default_is_the_next_issue_due(clean, tmp_path):
    clean.issue("2026-11-20-a.md", 'title: "已发"\ndate: 2026-11-20\n')
    clean.issue("2026-12-01-later.md", 'title: "更晚"\ndate: 2026-12-01\n')
    clean.issue("2026-11-28-next.md", 'title: "下一期"\ndate: 2026-11-28\n')
    clean.issue("2026-11-27-draft.md", 'title: "草稿"\ndate: 2026-11-27\ndraft: true\n')
    result = review.review(clean.load_config(), options(tmp_path), now=NOW)
    assert [i.slug for i in result.issues] == ["next"] and result.issues[0].status == "scheduled"
    assert result.selection == "the next issue due"


def test_markdown_stays_under_a_comment_with_thousands_of_links(clean, tmp_path):
    links = "\n".join(f"- [链接 {n}](https://example.com/{n}/{'x' * 60})" for n in range(3000))
    clean.issue("2026-11-20-a.md", 'title: "很多链接"\ndate: 2026-11-20\n', f"第一段。\n\n{links}\n")
    result = review.review(clean.load_config(), options(tmp_path, slugs=["a"]), now=NOW)
    for item in result.issues[0].links:  # as if they had all been checked and had all failed
        item.error, item.status = "", 404
    md = review.markdown_report(result)
    assert len(md) < review.MARKDOWN_LIMIT
    assert re.search(r"- … and \d+ more \(see report\.json\)", md)


# ---------------------------------------------------------------- --changed-since


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextmanager
def repository(clean) -> Iterator[Path]:
    require(shutil.which("git") is not None, "git", "apt-get install git")
    root = clean.root
    for name in ("a", "b", "c"):
        clean.issue(f"2026-11-2{ord(name) - 96}-{name}.md", f'title: "{name}"\ndate: 2026-11-2{ord(name) - 96}\n')
    (clean.content / "chart.png").write_bytes(b"png")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    yield root


def test_changed_since_picks_exactly_the_changed_issues(clean, tmp_path):
    with repository(clean) as root:
        git(root, "checkout", "-q", "-b", "pr")
        a = clean.content / "2026-11-21-a.md"
        a.write_text(a.read_text(encoding="utf-8") + "\n改了一句。\n", encoding="utf-8")
        git(root, "commit", "-qam", "edit a")
        clean.issue("2026-11-24-new.md", 'title: "new"\ndate: 2026-11-24\n')  # new, not even added
        (clean.content / "chart.png").write_bytes(b"png2")  # an asset: not an issue
        (clean.content / "2026-11-23-c.md").unlink()  # deleted: nothing to review
        # main moves on after the branch: its changes are not this branch's
        git(root, "stash", "-q", "-u")
        git(root, "checkout", "-q", "main")
        b = clean.content / "2026-11-22-b.md"
        b.write_text(b.read_text(encoding="utf-8") + "\nmain 上的修改。\n", encoding="utf-8")
        git(root, "commit", "-qam", "edit b on main")
        git(root, "checkout", "-q", "pr")
        git(root, "stash", "pop", "-q")

        files = review.changed_files(root, "main")
        assert [p.name for p in files] == ["2026-11-21-a.md", "2026-11-24-new.md"]
        result = review.review(clean.load_config(), options(tmp_path, changed_since="main"), now=NOW)
        assert sorted(i.slug for i in result.issues) == ["a", "new"]
        assert result.selection == "the issues changed since main"
        git(root, "checkout", "-q", "main")
        (clean.content / "2026-11-24-new.md").unlink()
        nothing = review.review(clean.load_config(), options(tmp_path, changed_since="HEAD"), now=NOW)
        assert nothing.issues == [] and nothing.exit_code == 0
        assert "Nothing to review." in (tmp_path / "review" / "report.md").read_text(encoding="utf-8")
        with pytest.raises(PublisherError, match="is not a commit"):
            review.changed_files(root, "no-such-branch")
        with pytest.raises(PublisherError, match="is not a git revision"):
            review.changed_files(root, "--output=/tmp/x")
