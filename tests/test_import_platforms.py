"""`publisher import substack|buttondown|ghost`: past issues from each platform's export, built here from strings as
the platform writes it (layouts and fields: docs/import-formats.md), run through the CLI, then built."""

from __future__ import annotations

import html
import json
import re
import zipfile
from pathlib import Path

import pytest
import yaml

OLD = "https://aidaily.substack.com"
CDN = ("https://substackcdn.com/image/fetch/w_1456,c_limit,f_webp,q_auto:good,fl_progressive:steep/"
       "https%3A%2F%2Fsubstack-post-media.s3.amazonaws.com%2Fpublic%2Fimages%2Fchart-%E5%9B%BE.png")
ORIGINAL = "https://substack-post-media.s3.amazonaws.com/public/images/chart-图.png"

# The text of a post: the links in it are the ones every conversion must keep, one for one.
ARTICLE = """\
<h2>今日要闻</h2>
<p>中文里的<strong>OpenAI</strong>发布了 <a href="https://openai.example/news">新模型 GPT-6</a>，
而 <em>DeepSeek</em> 开源了 <a href="https://github.com/deepseek-ai/example">推理代码</a>。</p>
<ul><li>第一项：<strong>芯片</strong><ul>
<li>嵌套 <a href="https://semianalysis.example/2026/rack">SemiAnalysis 长文</a></li>
<li>另一项 with English</li></ul></li><li>第二项 <a href="https://arxiv.org/abs/2611.05590">论文</a></li></ul>
<table><thead><tr><th>模型</th><th>参数</th></tr></thead>
<tbody><tr><td>千问 Qwen</td><td>72B</td></tr><tr><td>Llama</td><td>405B</td></tr></tbody></table>
<blockquote><p>引用：“算力就是电力。”</p></blockquote>
"""
ARTICLE_LINKS = re.findall(r'href="(https?://[^"]+)"', ARTICLE)


def md_links(body: str) -> list[str]:
    """The http(s) targets of Markdown links (not images) in `body`."""
    return re.findall(r"(?<!!)\[[^\]]*\]\((https?://[^)\s]+)\)", body)


def front(path: Path) -> tuple[dict, str]:
    text = path.read_text(encoding="utf-8")
    _, fm, body = text.split("---\n", 2)
    return yaml.load(fm, Loader=yaml.BaseLoader), body  # BaseLoader: every value as written, dates as text


def write_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def issues(newsletter) -> dict[str, Path]:
    return {p.name: p for p in sorted(newsletter.content.glob("*.md"))}


# ---------------------------------------------------------------------------------------------------- Substack


def attrs(value: dict) -> str:
    """An editor's data-attrs value: JSON, HTML-escaped into an attribute."""
    return html.escape(json.dumps(value, ensure_ascii=False))


TWEET = {"url": "https://twitter.com/karpathy/status/1", "full_text": "Scaling 仍然有效", "username": "karpathy"}

SUBSTACK_POST = ARTICLE + f"""\
<div class="captioned-image-container"><figure><a class="image-link image2 is-viewable-img" target="_blank"
 href="{CDN}"><div class="image2-inset"><picture><source type="image/webp" srcset="{CDN} 424w, {CDN} 848w">
<img src="{CDN}" alt="" width="1456" height="816" data-attrs="{{&quot;src&quot;:&quot;x&quot;}}"
 srcset="{CDN} 424w"></picture></div></a>
<figcaption class="image-caption">图一：推理芯片的功耗曲线</figcaption></figure></div>
<p>正文继续<a class="footnote-anchor" id="footnote-anchor-1" href="#footnote-1" target="_self">1</a>。</p>
<p><img src="https://substackcdn.com/image/fetch/f_auto,q_auto:good/https%3A%2F%2Fcdn.example%2Fplain.png"
 alt="一张图"></p>
<p class="button-wrapper" data-attrs="{{}}"><a class="button primary" href="{OLD}/subscribe?">
<span>Subscribe now</span></a></p>
<p class="button-wrapper"><a class="button primary"
 href="{OLD}/p/ai-weekly-1?utm_source=substack&amp;utm_medium=email&amp;utm_content=share&amp;action=share">
<span>Share</span></a></p>
<p class="button-wrapper"><a class="button primary" href="https://events.example/ai-summit"><span>报名峰会</span></a></p>
<div class="subscription-widget-wrap"><div class="subscription-widget"><form><input type="email"></form></div></div>
<div class="youtube-wrap" id="youtube2-abc" data-attrs="{attrs({"videoId": "dQw4w9WgXcQ", "startTime": None})}">
<div class="youtube-inner"><iframe src="https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?rel=0"></iframe></div></div>
<div class="tweet" data-attrs="{attrs(TWEET)}">
<a class="tweet-link-top" href="https://twitter.com/karpathy/status/1">x</a></div>
<div class="footnote"><a id="footnote-1" href="#footnote-anchor-1" class="footnote-number" contenteditable="false"
 target="_self">1</a><div class="footnote-content">
<p>脚注：数据来自 <a href="https://iea.example/report">IEA 报告</a>。</p></div></div>
"""
SUBSTACK_KEPT = ARTICLE_LINKS + ["https://events.example/ai-summit", "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
                                 "https://twitter.com/karpathy/status/1", "https://iea.example/report"]

POSTS_CSV = """\
post_id,post_date,is_published,email_sent_at,inbox_sent_at,type,audience,title,subtitle,podcast_url
101.ai-weekly-1,2026-10-05T08:30:00.000Z,TRUE,2026-10-05T08:31:00.000Z,,newsletter,everyone,\
AI 周报 #1：OpenAI 与 DeepSeek,&#x201C;推理&#x201D; models &amp; agents,
102.paid-deep-dive,2026-10-12T08:30:00.000Z,true,,,newsletter,only_paid,付费深度：芯片,,
103.about,2026-01-01T00:00:00.000Z,true,,,page,everyone,About,,
104.draft-post,,false,,,newsletter,everyone,草稿,,
105.missing-html,2026-10-19T08:30:00.000Z,true,,,newsletter,everyone,Missing body,,
106.episode-1,2026-10-20T08:30:00.000Z,true,,,podcast,everyone,播客第一期,,https://cdn.example/ep1.mp3
"""


@pytest.fixture
def substack_zip(tmp_path: Path) -> Path:
    top = "aidaily-export/"  # exports re-zipped after unpacking have one top-level folder
    return write_zip(tmp_path / "substack.zip", {
        top + "posts.csv": POSTS_CSV,
        top + "posts/101.ai-weekly-1.html": SUBSTACK_POST,
        top + "posts/102.paid-deep-dive.html": "<p>只给付费读者的<b>深度</b>分析。</p>",
        top + "posts/103.about.html": "<p>关于我们</p>",
        top + "posts/104.draft-post.html": "<p>还没写完</p>",
        top + "posts/101.ai-weekly-1.delivers.csv": "email,timestamp\n",
        top + "email_list.aidaily.csv": "email,active_subscription,expiry,email_disabled,prefer_digests,created_at\n"
                                        "reader@example.com,false,,false,false,2025-08-27T15:06:27.713Z\n"
                                        "gone@example.com,false,,true,false,2025-08-27T15:06:27.713Z\n",
    })


def test_substack_posts_and_subscribers_in_one_command(newsletter, run_cli, substack_zip):
    root = str(newsletter.root)
    result = run_cli("-C", root, "import", "substack", str(substack_zip), "--old-url", OLD + "/")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "note: 1 paid-only post imported as public issues" in out
    assert "note: 1 post in posts.csv has no HTML file" in out
    assert "note: 3 subscribe/share buttons dropped" in out
    assert "skipped About: a Substack page (pages are not issues)" in out
    assert "skipped 草稿: not published" in out
    assert "skipped Missing body: no HTML file in the export (posts/105.missing-html.html)" in out
    assert "skipped 播客第一期: a Substack podcast" in out
    assert "2 issues written, 4 skipped" in out
    assert "substack: 2 addresses (1 active, 1 unsubscribed)" in out  # the same zip's email list

    files = issues(newsletter)
    assert sorted(files) == ["2026-10-05-ai-weekly-1.md", "2026-10-12-paid-deep-dive.md"]
    meta, body = front(files["2026-10-05-ai-weekly-1.md"])
    assert meta["title"] == "AI 周报 #1：OpenAI 与 DeepSeek"
    assert meta["date"] == "2026-10-05T08:30:00.000Z"
    assert meta["summary"] == "“推理” models & agents"  # entity-decoded
    assert meta["source"] == f"{OLD}/p/ai-weekly-1"
    assert meta["send"] == "false" and "draft" not in meta
    # images unwrapped from the CDN, the caption kept as alt and as an italic line
    assert f"![图一：推理芯片的功耗曲线]({ORIGINAL})" in body
    assert "*图一：推理芯片的功耗曲线*" in body
    assert "![一张图](https://cdn.example/plain.png)" in body
    assert "substackcdn.com" not in body
    # buttons: subscribe and share gone, the other one a plain link
    assert "Subscribe now" not in body and "Share" not in body and "/subscribe" not in body
    assert "[报名峰会](https://events.example/ai-summit)" in body
    # every kept link, one for one
    assert sorted(md_links(body)) == sorted(SUBSTACK_KEPT)
    # Chinese text, nesting, table and emphasis intact
    assert "中文里的**OpenAI**发布了" in body
    assert re.search(r"\n- 第一项：\*\*芯片\*\*\n {2,4}- 嵌套 \[SemiAnalysis 长文\]", body)
    assert "| 千问 Qwen | 72B |" in body
    assert "脚注：数据来自" in body and "Scaling 仍然有效" in body
    paid, _ = front(files["2026-10-12-paid-deep-dive.md"])
    assert paid["send"] == "false" and "draft" not in paid

    built = run_cli("-C", root, "build")
    assert built.exit_code == 0, built.output
    assert (newsletter.root / "dist" / "issues" / "ai-weekly-1" / "index.html").is_file()

    again = run_cli("-C", root, "import", "substack", str(substack_zip), "--old-url", OLD)
    assert again.exit_code == 0, again.output
    assert "nothing written, 6 skipped" in again.output
    assert "already imported (content/2026-10-05-ai-weekly-1.md)" in again.output
    assert "nothing changed: the list already holds this export" in again.output
    assert issues(newsletter).keys() == files.keys()


def test_substack_dry_run_writes_nothing(newsletter, run_cli, substack_zip):
    result = run_cli("-C", str(newsletter.root), "import", "substack", str(substack_zip), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would write content/2026-10-05-ai-weekly-1.md" in result.output  # the export's slug, not a hash
    assert "note: no --old-url: issues get no `source` link" in result.output
    assert "dry run" in result.output
    assert not list(newsletter.content.glob("*.md"))


def test_a_damaged_or_fake_zip_is_named(newsletter, run_cli, substack_zip, tmp_path):
    data = bytearray(substack_zip.read_bytes())
    data[120:180] = b"\0" * 60  # inside the first member's compressed bytes
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(data))
    result = run_cli("-C", str(newsletter.root), "import", "substack", str(damaged))
    assert result.exit_code == 1 and "damaged.zip" in result.stderr
    fake = tmp_path / "export.zip"
    fake.write_text("<html>404 Not Found</html>")
    result = run_cli("-C", str(newsletter.root), "import", "buttondown", str(fake))
    assert result.exit_code == 1 and "export.zip: is not a zip archive" in result.stderr
    assert not list(newsletter.content.glob("*.md"))


def test_a_subscribers_only_substack_export_imports_the_list(newsletter, run_cli, tmp_path):
    export = write_zip(tmp_path / "list.zip", {
        "email_list.x.csv": "email,active_subscription,expiry,email_disabled,prefer_digests,created_at\n"
                            "a@example.com,false,,false,false,2025-08-27T15:06:27.713Z\n"})
    result = run_cli("-C", str(newsletter.root), "import", "substack", str(export))
    assert result.exit_code == 0, result.output
    assert "has no posts.csv: no past issues to import" in result.output
    assert "substack: 1 addresses (1 active)" in result.output


# ---------------------------------------------------------------------------------------------------- Buttondown

PLAIN_MD = """\
<!-- buttondown-editor-mode: plaintext -->
## 本周要闻

Anthropic 发布了新模型[^1]，**中文**能力大幅提升。

- 第一项 [官方博客](https://anthropic.example/news)
    - 嵌套：[评测](https://evals.example/run) with English
- 第二项

| 模型 | 得分 |
| --- | --- |
| Claude | 90 |

[^1]: 来源：[发布会](https://anthropic.example/event)。
"""
FANCY = """<!-- buttondown-editor-mode: fancy -->
<h2>深度</h2><p>这是 <strong>fancy</strong> 模式写的 <a href="https://example.org/deep">长文</a>。</p>
<ul><li>一<ul><li>二 <a href="https://example.org/two">链接</a></li></ul></li></ul>
"""
EMAILS = [
    {"id": "e1", "secondary_id": 1, "subject": "AI 周刊 第 1 期", "publish_date": "2026-09-01 16:55:00+00:00",
     "source": "app", "email_type": "public", "slug": "ai-weekly-1"},
    {"id": "e2", "secondary_id": 2, "subject": "深度：Fancy 模式", "publish_date":
     "2026-09-08 00:16:05.343246+08:00", "source": "app", "email_type": "premium", "slug": "deep-fancy"},
    {"id": "e3", "secondary_id": 3, "subject": "私信", "publish_date": "2026-09-15 08:00:00+00:00",
     "source": "api", "email_type": "private", "slug": "private-note"},
    {"id": "e4", "secondary_id": 4, "subject": "没有正文", "publish_date": "2026-09-22 08:00:00+00:00",
     "source": "app", "email_type": "public", "slug": "no-body"},
]
BODIES = {"emails/ai-weekly-1.md": PLAIN_MD, "emails/deep-fancy.md": FANCY, "emails/private-note.md": "只给你看。\n"}


def emails_csv(rows: list[dict]) -> str:
    head = "id,secondary_id,subject,publish_date,source,email_type,slug\n"
    return head + "".join(",".join(str(r[k]) for k in head.strip().split(",")) + "\n" for r in rows)


@pytest.mark.parametrize("generation", ["csv", "json"])
def test_buttondown_plaintext_and_fancy(newsletter, run_cli, tmp_path, generation):
    listing = {"emails.csv": emails_csv(EMAILS)} if generation == "csv" else {"emails.json": json.dumps(EMAILS)}
    export = write_zip(tmp_path / "buttondown.zip", {**listing, **BODIES})
    root = str(newsletter.root)
    result = run_cli("-C", root, "import", "buttondown", str(export), "--old-url",
                     "https://buttondown.com/aidaily/archive/")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "3 issues written, 1 skipped" in out
    assert "skipped 没有正文: no body file in the export (emails/no-body.md)" in out
    assert "note: 1 email private in Buttondown" in out and "note: 1 email for paying subscribers" in out
    assert "subscribers: none in this export" in out

    files = issues(newsletter)
    meta, body = front(files["2026-09-01-ai-weekly-1.md"])
    assert meta["title"] == "AI 周刊 第 1 期" and meta["date"] == "2026-09-01T16:55:00+00:00"
    assert meta["source"] == "https://buttondown.com/aidaily/archive/ai-weekly-1/" and meta["send"] == "false"
    assert body.strip() == PLAIN_MD.split("\n", 1)[1].strip()  # Markdown kept as written, comment gone
    meta, body = front(files["2026-09-08-deep-fancy.md"])
    assert meta["date"] == "2026-09-08T00:16:05.343246+08:00"
    assert "buttondown-editor-mode" not in body and "这是 **fancy** 模式写的 [长文](https://example.org/deep)" in body
    assert sorted(md_links(body)) == sorted(re.findall(r'href="(https?://[^"]+)"', FANCY))

    built = run_cli("-C", root, "build")
    assert built.exit_code == 0, built.output
    again = run_cli("-C", root, "import", "buttondown", str(export), "--old-url",
                    "https://buttondown.com/aidaily/archive")
    assert "nothing written, 4 skipped" in again.output


def test_buttondown_status_draft_and_unknown_type(newsletter, run_cli, tmp_path):
    rows = "id,subject,publish_date,email_type,slug,status\n" \
           "1,下周草稿,2026-11-01 08:00:00+00:00,public,next-week,draft\n" \
           "2,Secret kind,2026-10-01 08:00:00+00:00,vip,secret,sent\n"
    export = write_zip(tmp_path / "b.zip", {"emails.csv": rows, "emails/next-week.md": "草稿正文\n",
                                            "emails/secret.md": "x\n"})
    result = run_cli("-C", str(newsletter.root), "import", "buttondown", str(export))
    assert result.exit_code == 0, result.output
    assert "skipped Secret kind: unknown email_type 'vip'" in result.output
    [path] = newsletter.content.glob("*.md")
    meta, body = front(path)
    assert meta["draft"] == "true" and meta["send"] == "false" and body.strip() == "草稿正文"


# ---------------------------------------------------------------------------------------------------- Ghost

GHOST_HTML = ARTICLE + """\
<figure class="kg-card kg-image-card kg-card-hascaption"><img src="__GHOST_URL__/content/images/2026/10/gpu.png"
 class="kg-image" alt="" loading="lazy" width="2000" height="1000">
<figcaption><span>GPU 集群</span></figcaption></figure>
<figure class="kg-card kg-gallery-card kg-width-wide"><div class="kg-gallery-container"><div class="kg-gallery-row">
<div class="kg-gallery-image"><img src="https://images.example/a.jpg" alt="图 A"></div>
<div class="kg-gallery-image"><img src="https://images.example/b.jpg" alt="图 B"></div></div></div></figure>
<figure class="kg-card kg-bookmark-card"><a class="kg-bookmark-container" href="https://blog.example/post">
<div class="kg-bookmark-content"><div class="kg-bookmark-title">书签标题</div>
<div class="kg-bookmark-description">书签描述 text</div><div class="kg-bookmark-metadata">
<img class="kg-bookmark-icon" src="https://blog.example/icon.png" alt=""><span class="kg-bookmark-author">Blog</span>
</div></div><div class="kg-bookmark-thumbnail"><img src="https://blog.example/thumb.jpg" alt=""></div></a></figure>
<div class="kg-card kg-button-card kg-align-center">
<a href="https://docs.example/start" class="kg-btn kg-btn-accent">开始使用</a></div>
<div class="kg-card kg-button-card"><a href="#/portal/signup" class="kg-btn">Subscribe</a></div>
<div class="kg-card kg-callout-card kg-callout-card-grey"><div class="kg-callout-emoji">💡</div>
<div class="kg-callout-text">提示：<b>注意</b>电力</div></div>
<div class="kg-card kg-toggle-card" data-kg-toggle-state="close"><div class="kg-toggle-heading">
<h4 class="kg-toggle-heading-text">展开看细节</h4><button class="kg-toggle-card-icon">v</button></div>
<div class="kg-toggle-content"><p>细节内容。</p></div></div>
<figure class="kg-card kg-embed-card">
<iframe width="200" height="113" src="https://www.youtube.com/embed/dQw4w9WgXcQ?feature=oembed"
 title="演示视频"></iframe></figure>
<figure class="kg-card kg-video-card"><div class="kg-video-container">
<video src="__GHOST_URL__/content/media/2026/10/demo.mp4"
 poster="https://img.spacergif.org/v1/1x1.gif"></video></div></figure>
<div class="kg-card kg-signup-card"><h2>订阅我们</h2>
<form data-members-form><input type="email"><button>Subscribe</button></form></div>
<div class="kg-card kg-header-card kg-style-dark"><h2 class="kg-header-card-header">年度回顾</h2>
<h3 class="kg-header-card-subheader">2026 的十件大事</h3></div>
"""
GHOST_KEPT = ARTICLE_LINKS + ["https://blog.example/post", "https://docs.example/start",
                              "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
                              "https://blog.example.com/content/media/2026/10/demo.mp4"]


def lexical(*children: dict) -> str:
    return json.dumps({"root": {"type": "root", "children": list(children)}})


def text(value: str, fmt: int = 0) -> dict:
    return {"type": "text", "text": value, "format": fmt}


LEXICAL = lexical(
    {"type": "heading", "tag": "h2", "children": [text("Lexical 标题")]},
    {"type": "paragraph", "children": [text("普通、"), text("粗体", 1), text("斜体", 2), text("code", 16),
                                       {"type": "link", "url": "https://lexical.example/a", "children": [text("链接")]},
                                       {"type": "linebreak"}, text("第二行")]},
    {"type": "list", "listType": "bullet", "children": [
        {"type": "listitem", "children": [text("外层"), {"type": "list", "listType": "number", "children": [
            {"type": "listitem", "children": [text("内层一")]}]}]}]},
    {"type": "quote", "children": [text("引用")]},
    {"type": "horizontalrule"},
    {"type": "image", "src": "__GHOST_URL__/content/images/lex.png", "alt": "", "caption": "Lexical 图"},
    {"type": "markdown", "markdown": "Markdown 卡片 [link](https://md.example/x)"},
    {"type": "html", "html": "<p>HTML 卡片</p>"},
    {"type": "mystery-node", "text": "未知节点的文字"},
)
MOBILEDOC = json.dumps({
    "version": "0.3.1", "atoms": [], "markups": [["strong"], ["a", ["href", "https://mobiledoc.example/b"]]],
    "cards": [["markdown", {"markdown": "## Mobiledoc 卡片\n\n- 列表项"}], ["hr", {}],
              ["image", {"src": "https://images.example/m.png", "caption": "旧编辑器的图"}]],
    "sections": [[1, "p", [[0, [], 0, "旧文章，"], [0, [0], 1, "加粗"], [0, [1], 1, "一个链接"]]],
                 [10, 0], [10, 1], [10, 2], [3, "ul", [[[0, [], 0, "甲"]], [[0, [], 0, "乙"]]]]],
})


def deep_lexical(depth: int) -> str:
    node: dict = text("底")
    for _ in range(depth):
        node = {"type": "list", "listType": "bullet", "children": [{"type": "listitem", "children": [node]}]}
    return lexical(node)


def ghost_post(id_: str, slug: str, title: str, **fields) -> dict:
    post = {"id": id_, "uuid": id_, "title": title, "slug": slug, "mobiledoc": None, "lexical": None, "html": None,
            "plaintext": None, "feature_image": None, "type": "post", "status": "published",
            "visibility": "public", "created_at": "2026-08-01T00:00:00.000Z", "published_at": None,
            "custom_excerpt": None}
    return post | fields


def ghost_export() -> dict:
    posts = [
        ghost_post("p1", "ghost-html", "Ghost 卡片大全", html=GHOST_HTML, published_at="2026-10-01T10:00:00.000Z",
                   feature_image="__GHOST_URL__/content/images/cover.png", custom_excerpt="摘要：卡片与中文",
                   visibility="paid"),
        ghost_post("p2", "lexical-only", "Lexical 文章", lexical=LEXICAL, published_at="2026-10-02T10:00:00.000Z"),
        ghost_post("p3", "mobiledoc-only", "Mobiledoc 草稿", mobiledoc=MOBILEDOC, status="draft"),
        ghost_post("p4", "about", "关于", html="<p>页面</p>", type="page"),
        ghost_post("p5", "email-only", "只发邮件", html="<p>邮件正文</p>", status="sent",
                   published_at="2026-10-03T10:00:00.000Z"),
        ghost_post("p6", "too-deep", "太深", lexical=deep_lexical(200), published_at="2026-10-04T10:00:00.000Z"),
        ghost_post("p7", "deep-markdown", "深 Markdown", published_at="2026-10-05T10:00:00.000Z",
                   lexical=lexical({"type": "markdown", "markdown": "> " * 5000 + "x"})),
        "not a post",
    ]
    data = {
        "posts": posts,
        "tags": [{"id": "t1", "name": "人工智能", "slug": "ai"}, {"id": "t2", "name": "#internal", "slug": "hash-x"},
                 {"id": "t3", "name": "Chips", "slug": "chips"}],
        "posts_tags": [{"post_id": "p1", "tag_id": "t3", "sort_order": 1},
                       {"post_id": "p1", "tag_id": "t1", "sort_order": 0},
                       {"post_id": "p1", "tag_id": "t2", "sort_order": 2}],
        "users": [{"id": "u1", "name": "李雷"}, {"id": "u2", "name": "Han Meimei"}],
        "posts_authors": [{"post_id": "p1", "author_id": "u2", "sort_order": 1},
                          {"post_id": "p1", "author_id": "u1", "sort_order": 0}],
        "posts_meta": [{"post_id": "p1", "meta_description": "not used: the excerpt wins",
                        "email_subject": "【AI 日报】卡片大全"},
                       {"post_id": "p2", "meta_description": "Lexical 的描述"}],
    }
    return {"db": [{"meta": {"exported_on": 1760000000000, "version": "5.96.0"}, "data": data}]}


@pytest.fixture
def ghost_file(tmp_path: Path) -> Path:
    path = tmp_path / "AI 日报.ghost.2026-11-01-10-00-00.json"
    path.write_text(json.dumps(ghost_export(), ensure_ascii=False), encoding="utf-8")
    return path


def test_ghost_html_lexical_and_mobiledoc(newsletter, run_cli, ghost_file):
    root = str(newsletter.root)
    result = run_cli("-C", root, "import", "ghost", str(ghost_file), "--old-url", "https://blog.example.com/")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "skipped 关于: a Ghost page (pages are not issues)" in out
    assert "skipped 太深: its body is nested too deeply to import" in out
    assert "note: 1 post only emailed in Ghost (status sent)" in out
    assert "note: 1 post draft or scheduled in Ghost imported with `draft: true`" in out
    assert "note: 1 post for members or paid tiers" in out
    assert "skipped 深 Markdown: its body is nested too deeply to import" in out
    assert "4 issues written, 3 skipped" in out
    files = issues(newsletter)

    meta, body = front(files["2026-10-01-ghost-html.md"])
    assert meta["title"] == "Ghost 卡片大全" and meta["date"] == "2026-10-01T10:00:00.000Z"
    assert meta["tags"] == ["人工智能", "Chips"]  # sort_order, the #internal tag left out
    assert meta["authors"] == ["李雷", "Han Meimei"]
    assert meta["summary"] == "摘要：卡片与中文" and meta["subject"] == "【AI 日报】卡片大全"
    assert meta["image"] == "https://blog.example.com/content/images/cover.png"
    assert meta["source"] == "https://blog.example.com/ghost-html/" and meta["send"] == "false"
    assert "__GHOST_URL__" not in body
    assert "![GPU 集群](https://blog.example.com/content/images/2026/10/gpu.png)" in body and "*GPU 集群*" in body
    assert "![图 A](https://images.example/a.jpg)" in body and "![图 B](https://images.example/b.jpg)" in body
    assert "[书签标题](https://blog.example/post)" in body and "书签描述 text" in body
    assert "> 💡 提示：**注意**电力" in body
    assert "#### 展开看细节" in body and "细节内容。" in body
    assert "## 年度回顾" in body and "2026 的十件大事" in body
    assert "订阅我们" not in body and "Subscribe" not in body and "portal" not in body
    assert sorted(md_links(body)) == sorted(GHOST_KEPT)
    assert "中文里的**OpenAI**发布了" in body and "| 千问 Qwen | 72B |" in body

    meta, body = front(files["2026-10-02-lexical-only.md"])
    assert meta["summary"] == "Lexical 的描述"
    assert "## Lexical 标题" in body and "普通、**粗体***斜体*`code`[链接](https://lexical.example/a)" in body
    assert re.search(r"- 外层\n+ {2,4}1\. 内层一", body)
    assert "> 引用" in body and "![Lexical 图](https://blog.example.com/content/images/lex.png)" in body
    assert "[link](https://md.example/x)" in body and "HTML 卡片" in body and "未知节点的文字" in body

    meta, body = front(files["2026-08-01-mobiledoc-only.md"])
    assert meta["draft"] == "true" and meta["date"] == "2026-08-01T00:00:00.000Z"
    assert "旧文章，**加粗**[一个链接](https://mobiledoc.example/b)" in body
    assert "## Mobiledoc 卡片" in body and "![旧编辑器的图](https://images.example/m.png)" in body
    assert "- 甲\n- 乙" in body

    meta, _ = front(files["2026-10-03-email-only.md"])
    assert "draft" not in meta and meta["send"] == "false"

    built = run_cli("-C", root, "build")
    assert built.exit_code == 0, built.output
    again = run_cli("-C", root, "import", "ghost", str(ghost_file), "--old-url", "https://blog.example.com")
    assert again.exit_code == 0 and "nothing written, 7 skipped" in again.output


def test_ghost_without_old_url_and_older_shapes(newsletter, run_cli, tmp_path):
    data = ghost_export()["db"][0]["data"]
    data["posts"] = [ghost_post("p1", "old", "Old", html='<p><img src="__GHOST_URL__/content/images/x.png" alt="x">'
                                                          "</p>", published_at="2016-01-04 18:09:23")]
    path = tmp_path / "site.ghost.2016-01-05.json"
    path.write_text(json.dumps({"data": data}), encoding="utf-8")  # the 2014 generation: data at the top
    result = run_cli("-C", str(newsletter.root), "import", "ghost", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "note: no --old-url: Ghost's __GHOST_URL__ links and images are left as site-relative paths" in result.output
    assert "would write content/2016-01-04-old.md  (2016-01-04T18:09:23+00:00, Old)" in result.output
    assert not list(newsletter.content.glob("*.md"))


def test_ghost_non_json_and_wrong_shape_are_named(newsletter, run_cli, tmp_path):
    broken = tmp_path / "site.ghost.2026-11-01.json"
    broken.write_text("<html>not json</html>")
    result = run_cli("-C", str(newsletter.root), "import", "ghost", str(broken))
    assert result.exit_code == 1 and "site.ghost.2026-11-01.json: is not JSON" in result.stderr
    broken.write_text(json.dumps([1, 2, 3]))
    result = run_cli("-C", str(newsletter.root), "import", "ghost", str(broken))
    assert result.exit_code == 1 and 'site.ghost.2026-11-01.json: has no {"db"' in result.stderr
    deep = "[" * 100_000 + "]" * 100_000
    broken.write_text(deep)
    result = run_cli("-C", str(newsletter.root), "import", "ghost", str(broken))
    assert result.exit_code == 1 and "is not JSON" in result.stderr


def test_ghost_members_csv_still_imports_subscribers(newsletter, run_cli, tmp_path):
    members = tmp_path / "members.csv"
    members.write_text("id,email,name,note,subscribed_to_emails,complimentary_plan,stripe_customer_id,created_at,"
                       "deleted_at,labels,tiers\n1,m@example.com,M,,true,false,,2025-01-01T00:00:00.000Z,,,\n")
    result = run_cli("-C", str(newsletter.root), "import", "ghost", str(members))
    assert result.exit_code == 0, result.output
    assert "holds no Ghost content export" in result.output and "ghost: 1 addresses (1 active)" in result.output


def test_hostile_values_are_checked_not_trusted(newsletter, run_cli, tmp_path):
    """Wrong types, bad indices, non-JSON data-attrs and unsafe URLs: the post comes in without them."""
    bad_lexical = lexical({"type": "paragraph", "children": [
        {"type": "link", "url": "javascript:alert(1)", "children": [text("点我")]}, text(["not", "text"]),
        {"type": "heading", "tag": "script", "children": [text("标题")]}, {"type": "image", "src": 42}, "junk"]})
    bad_mobiledoc = json.dumps({"markups": [["script"], ["a", ["href", "javascript:x"]]], "atoms": "nope",
                                "cards": [["html"]], "sections": [[1, "p", [[0, [0, 9], 5, "文字"], [0, [1], 1, "链"]]],
                                                                  [10, 99], [3, "ul", "x"], "bad", [1]]})
    data = ghost_export()["db"][0]["data"]
    data["posts"] = [ghost_post("h1", "bad-lexical", "坏 lexical", lexical=bad_lexical, html=["x"],
                                published_at="2026-10-01T00:00:00Z", tags="x"),
                     ghost_post("h2", "bad-mobiledoc", "坏 mobiledoc", mobiledoc=bad_mobiledoc,
                                published_at=12345, custom_excerpt={"x": 1}),
                     ghost_post(["list-id"], None, None, html="<p>x</p>", status=["published"])]
    data["posts_tags"] = [{"post_id": "h1", "tag_id": ["t1"]}, "junk"]
    path = tmp_path / "hostile.ghost.json"
    path.write_text(json.dumps({"db": [{"data": data}]}), encoding="utf-8")
    result = run_cli("-C", str(newsletter.root), "import", "ghost", str(path), "--old-url", "https://g.example")
    assert result.exit_code == 0, result.output
    assert "skipped a post without id: status '' (not published, draft, scheduled or sent)" in result.output
    files = issues(newsletter)
    _, body = front(files["2026-10-01-bad-lexical.md"])
    assert "点我" in body and "javascript" not in body and "<script" not in body and "标题" in body
    _, body = front(files["1970-01-01-bad-mobiledoc.md"])
    assert "文字" in body and "javascript" not in body

    substack = write_zip(tmp_path / "s.zip", {
        "posts.csv": "post_id,post_date,is_published,type,title\n1.x,2026-10-01T00:00:00Z,true,newsletter,X\n",
        "posts/1.x.html": '<div class="tweet" data-attrs="{not json">推文</div>'
                          '<div class="youtube-wrap" data-attrs="[1]"><iframe src="https://www.youtube.com/embed/abc">'
                          '</iframe></div><p><img src="https://substackcdn.com/image/fetch/w_1/javascript%3Aalert(1)"'
                          ' alt="坏图"></p><p><a href="javascript:alert(1)">坏链接</a></p>'})
    result = run_cli("-C", str(newsletter.root), "import", "substack", str(substack))
    assert result.exit_code == 0, result.output
    [path] = [p for p in newsletter.content.glob("2026-10-01-*.md") if "bad" not in p.name]
    deep = write_zip(tmp_path / "deep.zip", {
        "posts.csv": "post_id,post_date,is_published,type,title\n2.deep,2026-10-02T00:00:00Z,true,newsletter,Deep\n",
        "posts/2.deep.html": "<div>" * 50_000 + "深" + "</div>" * 50_000})
    result = run_cli("-C", str(newsletter.root), "import", "substack", str(deep))
    assert result.exit_code == 0 and "skipped Deep: its HTML is nested too deeply" in result.output
    _, body = front(path)
    assert "](javascript" not in body and "javascript:" not in body  # an unwrapped URL must still be http(s)
    assert "坏链接" in body and "[推文]" not in body and "https://www.youtube.com/watch?v=abc" in body
