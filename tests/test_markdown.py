"""Markdown rendering, URL rewriting and CJK-aware summaries."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from publisher import markdown


def test_commonmark_and_extensions():
    html = markdown.to_html(
        "今日要闻\n====\n\n分节\n----\n\n"
        "- **OpenAI** 发布 [报告](https://openai.com/r)\n  - 二级 @\\_akhaliq\n    - 三级 `snake_case`\n\n"
        "* * *\n\n| 模型 | 价格 |\n|---|---|\n| A | $1 |\n\n~~旧~~ 新 https://arxiv.org/abs/2611.01234\n\n"
        "脚注[^1]\n\n[^1]: 说明\n\n```python\nprint('你好')\n```\n\n> 来源：[The Verge](https://theverge.com/x)\n"
    )
    assert '<h1 id="今日要闻">今日要闻</h1>' in html  # setext level 1, with an id
    assert '<h2 id="分节">分节</h2>' in html  # setext level 2
    assert "<svg" not in html  # the anchor icon is dropped
    assert html.count("<ul>") == 3  # nested lists
    assert "@_akhaliq" in html and "\\_" not in html  # escapes as CommonMark says
    assert "<hr />" in html
    assert "<table tabindex=\"0\">" in html and "<th>模型</th>" in html  # a table that scrolls is reachable by keyboard
    assert "<s>旧</s>" in html
    assert '<a href="https://arxiv.org/abs/2611.01234">https://arxiv.org/abs/2611.01234</a>' in html
    assert 'class="footnote-ref"' in html and 'class="footnotes"' in html
    assert '<code class="language-python">' in html
    assert "<blockquote>" in html


def test_duplicate_headings_get_distinct_ids():
    html = markdown.to_html("## 要闻\n\n## 要闻\n")
    assert 'id="要闻"' in html and 'id="要闻-1"' in html


@pytest.mark.parametrize(("url", "expected"), [
    ("images/a.png", "2026/images/a.png"),
    ("../a.png", "a.png"),
    ("../../outside.png", None),
    ("/about/", "about/"),
    ("2026-11-20-x.md#part", "issues/x/#part"),
    ("#fn1", None),
    ("https://a.com/x", None),
    ("mailto:a@b.c", None),
    ("//cdn.example.com/a.png", None),
])
def test_site_path(url, expected):
    pages = {"2026/2026-11-20-x.md": "issues/x/"}
    assert markdown.site_path(url, PurePosixPath("2026"), pages) == expected


def test_absolutize_and_localize():
    fragment = ('<a href="images/a b.png?x=1&amp;y=2">x</a><img src="/logo.png" alt=""/>'
                '<a href="#fn1">1</a><a href="https://o.com/">o</a><img src="//cdn.x/y.png">')
    absolute = markdown.absolutize(fragment, PurePosixPath("2026"), {}, "https://n.example.com/d/",
                                   "https://n.example.com/d/issues/x/")
    assert 'href="https://n.example.com/d/2026/images/a%20b.png?x=1&amp;y=2"' in absolute
    assert 'src="https://n.example.com/d/logo.png"' in absolute
    assert 'href="https://n.example.com/d/issues/x/#fn1"' in absolute and 'href="https://o.com/"' in absolute
    assert 'src="https://cdn.x/y.png"' in absolute
    assert not [u for _, u in markdown.urls_in(absolute) if markdown.is_relative(u)]
    local = markdown.localize(fragment, PurePosixPath("2026"), {}, "../../")
    assert 'href="../../2026/images/a%20b.png?x=1&amp;y=2"' in local
    assert 'src="../../logo.png"' in local


def test_summary_is_first_text_paragraph():
    source = ("![封面](https://img.example.org/a.png)\n\n"
              "**第一段**第一行\n第二行 with [link](https://x.com)\nand more\n\n第二段")
    assert markdown.summarize(source) == "第一段第一行第二行 with link and more"


def test_summary_skips_quotes_lists_and_footnote_marks():
    source = ("> 来源：[原文](https://e.com)\n\n- 列表项\n\n  带段落的列表项\n\n"
              "正文第一段[^1]，含 &amp; 实体和 <span>内联 HTML</span>。\n\n[^1]: 脚注\n")
    assert markdown.summarize(source) == "正文第一段，含 & 实体和 内联 HTML。"


def test_truncate_cjk_on_character_boundary():
    text = "这是一个关于大模型的很长的句子" * 30
    cut = markdown.truncate(text, 50)
    assert cut.endswith("…") and len(cut) == 51
    assert text.startswith(cut[:-1])


def test_truncate_backs_up_out_of_a_latin_word():
    text = "前言 " + "international " * 30
    cut = markdown.truncate(text, 40)
    assert cut.endswith("international…")  # not "internat…"


def test_truncate_never_splits_a_grapheme():
    text = "a" * 9 + "e\u0301" + "b" * 20  # e + combining acute at positions 9-10
    cut = markdown.truncate(text, 10)
    assert "\u0301" not in cut and cut.endswith("…")
    family = "x" * 9 + "👩\u200d👩\u200d👧" + "y" * 20
    cut = markdown.truncate(family, 11)
    assert "\u200d" not in cut[-3:]


def test_truncate_leaves_entities_to_the_templates():
    text = "AT&T 与 <script> 的故事 " * 20
    cut = markdown.truncate(text, 30)
    assert "&amp" not in cut and cut.startswith("AT&T 与 <script>")


def test_short_text_is_kept():
    assert markdown.truncate("短摘要", 200) == "短摘要"


def test_xml_safe_drops_forbidden_characters():
    assert markdown.xml_safe("a\x0bb\ufffec\x00d\U0001F600\te") == "abcd\U0001F600\te"


def test_rewrite_finds_attributes_after_any_whitespace():
    fragment = '<img\nsrc="a.png" alt="x"><a\thref="b/">b</a><a class="x" href="c.md">c</a>'
    out = markdown.localize(fragment, PurePosixPath(""), {"c.md": "issues/c/"}, "../../")
    assert out == '<img\nsrc="../../a.png" alt="x"><a\thref="../../b/">b</a><a class="x" href="../../issues/c/">c</a>'


def test_summary_of_a_long_document_matches_a_full_parse():
    filler = "\n\n".join(f"- 第 {i} 项 [链接](https://e.com/{i})" for i in range(200))
    late = "```\n" + "代码\n" * 500 + "```\n\n" + "终于有一段正文。\n"
    assert markdown.first_paragraph_text(late + "\n" + filler) == "终于有一段正文。"
    with_ref = "开头引用 [文章][ref] 的段落。\n\n" + filler + "\n\n[ref]: https://e.com/article\n"
    assert markdown.first_paragraph_text(with_ref) == "开头引用 文章 的段落。"
