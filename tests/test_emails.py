"""Emails: MJML HTML, the plain-text part, the MIME message, and per-recipient fill-in."""

from __future__ import annotations

import base64
import email
import random
import re
import subprocess
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from conftest import NOW, REPO
from lxml import html as lxml_html
from tools import require_command

from publisher import markdown
from publisher.build import build
from publisher.config import load_config
from publisher.content import load_issues
from publisher.emails import (
    GMAIL_CLIP_BYTES,
    MessageFactory,
    Recipient,
    RenderedEmail,
    _EncodedPart,
    fill,
    render_email,
    sender_of,
)
from publisher.errors import PublisherError
from publisher.tokens import InvalidToken, verify_token

SECRET = b"k" * 32
WHEN = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def sample():
    config = load_config(REPO, environ={})
    issues = load_issues(config)
    pages = {str(i.path): i.url_path for i in issues}
    rendered = {i.slug: render_email(config, i, markdown.to_html(i.body), pages=pages) for i in issues}
    return config, issues, rendered


def factory(config, rendered):
    return MessageFactory(rendered, sender_of(config), SECRET, date=WHEN)


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=policy.default)


def test_chinese_subject_and_from_survive_the_round_trip(sample):
    config, issues, rendered = sample
    issue = next(i for i in issues if i.slug == "coding-agents")
    raw = factory(config, rendered[issue.slug]).message(Recipient("zhang@example.com", "张三"))
    assert raw.isascii()  # everything non-ASCII is encoded (RFC 2047 headers, base64 bodies)
    msg = email.message_from_bytes(raw)  # the compat32 parser, as old clients would
    assert str(make_header(decode_header(msg["Subject"]))) == issue.title
    assert str(make_header(decode_header(msg["From"]))) == "AI 日报 <news@ai-daily.example.com>"
    assert str(make_header(decode_header(msg["To"]))) == "张三 <zhang@example.com>"
    modern = parse(raw)
    assert modern["Subject"] == issue.title
    assert modern["From"].addresses[0].display_name == "AI 日报"


def test_subject_from_frontmatter_and_prefix(newsletter):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + '[email]\nfrom_address = "n@news.example.com"\nsubject_prefix = "[周报]"\n')
    newsletter.issue("x.md", "title: 标题\ndate: 2026-11-20\nsubject: 自定义主题\npreheader: 预览文字\n")
    config = newsletter.load_config()
    (issue,) = load_issues(config)
    rendered = render_email(config, issue, markdown.to_html(issue.body))
    assert rendered.subject == "[周报] 自定义主题"
    assert rendered.preheader == "预览文字"
    assert "预览文字" in rendered.html


def test_message_structure_and_list_headers(sample):
    config, issues, rendered = sample
    f = factory(config, rendered["agents-and-evals"])
    raw = f.message(Recipient("reader@example.org"))
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in msg.iter_parts())
    assert msg["Reply-To"] == "editor@ai-daily.example.com"
    assert msg["Date"] == "Thu, 26 Nov 2026 00:00:00 +0000"
    assert re.fullmatch(r"<agents-and-evals\.[0-9a-f]{24}@ai-daily\.example\.com>", msg["Message-ID"])
    assert msg["List-Id"].endswith("<newsletter.ai-daily.example.com>")
    assert msg["Precedence"] == "bulk"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = re.findall(r"<([^>]+)>", msg["List-Unsubscribe"])
    assert https.startswith("https://ai-daily.example.com/unsubscribe?token=")
    assert mailto.startswith("mailto:news@ai-daily.example.com?subject=unsubscribe%20")
    token = https.split("token=")[1]
    assert verify_token(SECRET, token, "unsubscribe").email == "reader@example.org"
    assert token in mailto
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only


def test_message_id_is_stable_per_issue_and_recipient(sample):
    config, _, rendered = sample
    f = factory(config, rendered["agents-and-evals"])
    a, b = Recipient("a@example.com"), Recipient("b@example.com")
    assert f.message_id(a) == f.message_id(a) != f.message_id(b)
    g = factory(config, rendered["coding-agents"])
    assert g.message_id(a) != f.message_id(a)


def test_two_recipients_get_different_tokens_that_verify_and_tampering_fails(sample):
    config, _, rendered = sample
    f = factory(config, rendered["coding-agents"])
    tokens = []
    for address in ("one@example.com", "two@example.com"):
        html = parse(f.message(Recipient(address))).get_body(("html",)).get_content()
        (url,) = set(re.findall(r'href="(https://ai-daily\.example\.com/unsubscribe\?token=[^"]+)"', html))
        tokens.append(url.split("token=")[1])
    assert tokens[0] != tokens[1]
    assert [verify_token(SECRET, t, "unsubscribe", list_id="newsletter.ai-daily.example.com").email
            for t in tokens] == ["one@example.com", "two@example.com"]
    payload, sig = tokens[0].split(".")
    other = tokens[1].split(".")[0]
    for bad in (f"{other}.{sig}", f"{payload}.{sig[:-2]}xx", tokens[0] + "a"):
        with pytest.raises(InvalidToken):
            verify_token(SECRET, bad, "unsubscribe")


def test_per_recipient_parts_are_filled_into_both_parts(sample):
    config, _, rendered = sample
    f = factory(config, rendered["coding-agents"])
    msg = parse(f.message(Recipient("wang@example.com", "王<五>")))
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "你好，王&lt;五&gt;：" in html and "王<五>" not in html  # escaped in HTML
    assert "你好，王<五>：" in text
    assert "wang@example.com" in html and "wang@example.com" in text
    assert "%%publisher:" not in html + text
    nameless = parse(f.message(Recipient("x@example.com"))).get_body(("plain",)).get_content()
    assert "你好，读者：" in nameless


def test_html_is_clean_absolute_and_small(sample):
    config, issues, rendered = sample
    for issue in issues:
        html = fill(rendered[issue.slug].html, {"name": "n", "email": "e@example.com",
                                                "unsubscribe_url": "https://u.example.com/"}, escape=True)
        assert "{{" not in html and "{%" not in html, issue.slug
        assert len(html.encode()) < GMAIL_CLIP_BYTES, issue.slug
        doc = lxml_html.fromstring(html)
        for _el, attr, link, _pos in doc.iterlinks():
            if attr in ("href", "src"):
                assert re.match(r"^(https?:|mailto:)", link), (issue.slug, link)
        assert doc.get("lang") == "zh-CN"


def test_mjml_output_is_responsive_and_dark_mode_aware(sample):
    _, _, rendered = sample
    html = rendered["coding-agents"].html
    assert "@media only screen and (min-width:480px)" in html  # MJML's responsive columns
    assert re.search(r'<meta name="color-scheme" content="light dark" ?/?>', html)
    assert "prefers-color-scheme: dark" in html
    assert "fonts.googleapis.com" not in html  # no third-party font request from the inbox


def test_content_styles_are_inlined(sample):
    _, _, rendered = sample
    doc = lxml_html.fromstring(rendered["multimodal-weekend"].html)
    content = doc.cssselect(".content > div")[0]  # MJML's column cell holds a div with the issue
    imgs = content.cssselect("img")
    assert imgs and all("max-width: 100%" in (img.get("style") or "") for img in imgs)
    assert all(img.get("alt") for img in imgs)
    assert all("border-left" in (q.get("style") or "") for q in content.cssselect("blockquote"))
    assert all("border" in (c.get("style") or "") for c in content.cssselect("td"))
    assert all("color" in (a.get("style") or "") for a in content.cssselect("a"))
    local = [img.get("src") for img in imgs if "chart.png" in img.get("src")]
    assert local == ["https://ai-daily.example.com/images/chart.png"]


def link_urls(source: str, folder: str = "") -> set[str]:
    """Every link and image URL of an issue, a relative one resolved from its folder in content/ (assets are
    copied to the same place under the site)."""
    from urllib.parse import urljoin

    base = "https://ai-daily.example.com/" + (folder + "/" if folder else "")
    urls = set()
    for node in markdown.tree(source).walk():
        url = node.meta.get("url") if node.name in ("link", "image", "linkify", "autolink") else None
        if url and not url.startswith("#"):
            urls.add(url if "://" in url or url.startswith("mailto:") else urljoin(base, url))
    return urls


def test_text_part_has_every_link_and_no_markup(sample):
    _, issues, rendered = sample
    for issue in issues:
        text = rendered[issue.slug].text
        missing = {u for u in link_urls(issue.body, Path(issue.path).parent.as_posix().strip(".")) if u not in text}
        assert missing == set(), issue.slug
        prose = "\n".join(line for line in text.splitlines() if not line.startswith("    "))  # code kept as is
        assert "<a " not in prose and "**" not in prose and "](" not in prose
        for line in text.splitlines():
            for url in re.findall(r"https?://\S+", line):
                assert url in line  # URLs are never broken across lines
        assert re.search(r"^\[1\] https://", text, re.M)


def test_text_wraps_cjk_within_width_and_keeps_urls_whole():
    long = "这是一段很长的中文，" * 20 + "详见 https://example.com/a/very/long/url/that/is/longer/than/the/line/width/itself/ok"
    text = markdown.to_text(long + "\n\n- 列表项 [链接](https://e.com/x)\n  - 子项\n", lambda u: u, width=40)
    lines = text.splitlines()
    assert all(markdown.display_width(line) <= 40 for line in lines if "https://" not in line)
    assert "https://example.com/a/very/long/url/that/is/longer/than/the/line/width/itself/ok" in lines
    assert not any(line.startswith(("，", "。")) for line in lines)
    assert "- 列表项 链接 [1]" in lines and "  - 子项" in lines
    assert lines[-1] == "[1] https://e.com/x"


def test_text_of_headings_tables_code_quotes_and_strikethrough():
    source = ("今日要闻\n====\n\n## 分节\n\n### 小节\n\n| 模型 | 价格 |\n|---|---|\n| A | $1 |\n\n"
              "```\ncode line\n```\n\n> 引用 [来源](https://s.example.com)\n\n~~旧消息~~\n\n* * *\n\n![图](https://i.example.com/a.png)\n")
    text = markdown.to_text(source, lambda u: u)
    assert "今日要闻\n========" in text and "分节\n----" in text and "### 小节" in text
    assert "模型 | 价格" in text and "A | $1" in text
    assert "    code line" in text
    assert "> 引用 来源 [1]" in text
    assert "~~旧消息~~" in text
    assert "* * *" in text
    assert "[图] [2]" in text and "[2] https://i.example.com/a.png" in text


def test_base64_fill_in_decodes_exactly_for_any_values():
    rng = random.Random(7)
    alphabet = "ab中文字😀<&\"' "
    templates = [
        "start %%publisher:name%% middle %%publisher:email%% end",
        "%%publisher:name%%%%publisher:email%%x%%publisher:unsubscribe_url%%",  # adjacent and 1-byte pieces
        "你好，%%publisher:name%%：" + "长文本" * 100 + "%%publisher:unsubscribe_url%%",
        "no markers at all " * 10,
    ]
    for template in templates:
        for escape in (False, True):
            part = _EncodedPart(template, escape=escape)
            for _ in range(60):
                values = {f: "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9)))
                          for f in ("name", "email", "unsubscribe_url")}
                encoded = part.encode(values)
                assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
                assert base64.b64decode(encoded).decode("utf-8") == fill(template, values, escape=escape)


def test_build_writes_a_neutral_view_in_browser_copy(sample_build):
    html = (sample_build / "issues" / "coding-agents" / "email.html").read_text(encoding="utf-8")
    assert "%%publisher:" not in html
    assert "你好，读者：" in html
    assert 'href="https://ai-daily.example.com/unsubscribe"' in html  # no one's token
    assert "AI 日报：编程 Agent" in html


def test_user_theme_overrides_the_email_template(newsletter):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text() + '[build]\ntheme = "mine"\n')
    folder = newsletter.root / "themes" / "mine" / "email"
    folder.mkdir(parents=True)
    (folder / "issue.mjml").write_text(
        '<mjml><mj-body><mj-section><mj-column><mj-text css-class="mine">{{ issue.title }}</mj-text>'
        "<mj-text>{{ content | safe }}</mj-text></mj-column></mj-section></mj-body></mjml>")
    newsletter.issue("x.md")
    config = newsletter.load_config()
    (issue,) = load_issues(config)
    rendered = render_email(config, issue, markdown.to_html(issue.body))
    assert 'class="mine"' in rendered.html and "正文第一段" in rendered.html
    assert "查看" in rendered.text  # the built-in text template still applies


def test_mjml_error_names_the_template(newsletter):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text() + '[build]\ntheme = "broken"\n')
    folder = newsletter.root / "themes" / "broken" / "email"
    folder.mkdir(parents=True)
    (folder / "issue.mjml").write_text("<mjml><mj-body><mj-section>{{ content | safe }}</mjml>")
    newsletter.issue("x.md")
    config = newsletter.load_config()
    (issue,) = load_issues(config)
    with pytest.raises(PublisherError) as info:
        render_email(config, issue, markdown.to_html(issue.body))
    assert "MJML error" in str(info.value) and "themes/broken/email/issue.mjml" in str(info.value)


def test_check_warns_about_email_problems(newsletter, run_cli):
    newsletter.issue("x.md", body="![](https://i.example.com/a.png)\n\n[ftp](ftp://files.example.com/a)\n\n"
                     + ("很长的一段文字，" * 40 + "\n\n") * 400)
    result = run_cli("-C", str(newsletter.root), "check")
    assert result.exit_code == 0, result.stderr
    assert "an image has no alt text" in result.stderr
    assert "'ftp://files.example.com/a' is not an http(s) or mailto URL" in result.stderr
    assert "Gmail clips messages over 102 KB" in result.stderr
    assert "email.postal_address is empty" in result.stderr


def test_email_command(newsletter, run_cli, monkeypatch):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + '[email]\nfrom_address = "n@news.example.com"\n')
    newsletter.issue("2026-11-20-x.md", "title: 第一期\ndate: 2026-11-20\n", "第一段 [链接](https://e.com/a)。\n")
    monkeypatch.setenv("PUBLISHER_SECRET", "email-command-secret-9f3K2xQ")
    root = str(newsletter.root)
    html = run_cli("-C", root, "email", "x")
    assert html.exit_code == 0 and html.stdout.startswith("<!doctype html>")
    text = run_cli("-C", root, "email", "x", "--text", "--to", "li@example.com", "--name", "李四")
    assert "你好，李四：" in text.stdout and "[1] https://e.com/a" in text.stdout
    eml = run_cli("-C", root, "email", "x", "--eml", "--to", "li@example.com")
    msg = parse(eml.stdout.encode())
    assert msg["To"] == "li@example.com" and msg["Subject"] == "第一期"
    missing = run_cli("-C", root, "email", "y")
    assert missing.exit_code == 1 and "no issue has the slug 'y'" in missing.stderr


def test_eml_needs_a_from_address(newsletter, run_cli):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text().replace(
        'author_email = "editor@news.example.com"\n', ""))
    newsletter.issue("2026-11-20-x.md")
    assert run_cli("-C", str(newsletter.root), "email", "x").exit_code == 0  # a preview needs none
    result = run_cli("-C", str(newsletter.root), "email", "x", "--eml")
    assert result.exit_code == 1 and "email.from_address" in result.stderr


def test_spamassassin_finds_nothing_to_dislike(sample, tmp_path):
    require_command("spamassassin", "apt-get install spamassassin")
    config, _, rendered = sample
    raw = factory(config, rendered["coding-agents"]).message(Recipient("reader@example.org", "读者"))
    result = subprocess.run(["spamassassin", "-L", "-t"], input=raw, capture_output=True, timeout=120)
    report = result.stdout.decode("utf-8", "replace")
    details = report[report.find("Content analysis details"):]
    hits = re.findall(r"^\s*(-?\d+\.\d+)\s+([A-Z0-9_]+)\s", details, re.M)
    assert hits, report  # the report was read
    assert [rule for points, rule in hits if float(points) > 0] == [], details


def test_rendered_email_is_picklable_for_worker_processes(sample):
    import pickle

    _, _, rendered = sample
    again = pickle.loads(pickle.dumps(rendered["coding-agents"]))
    assert isinstance(again, RenderedEmail) and again.html == rendered["coding-agents"].html


def test_build_and_email_share_the_cache(newsletter):
    newsletter.issue("2026-11-20-x.md")
    config = newsletter.load_config()
    build(config, now=NOW)
    again = build(config, now=NOW)
    assert again.written == 0
    assert (newsletter.root / "dist" / "issues" / "x" / "email.html").exists()
