"""The content model: frontmatter parsing, validation and the errors a user sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import NOW

from publisher.content import load_issues, select, slug_from_filename, tag_slug
from publisher.errors import PublisherError

SHANGHAI = ZoneInfo("Asia/Shanghai")

# (file name, file bytes, field the error names, words the message must contain)
BAD_INPUTS = [
    ("no-frontmatter.md", "# 只有正文\n\n没有 frontmatter。\n", None, "has no frontmatter"),
    ("bad-yaml.md", '---\ntitle: "未闭合\ndate: 2026-11-20\n---\n正文\n', None, "not valid YAML"),
    ("missing-title.md", "---\ndate: 2026-11-20\n---\n正文\n", "title", "is missing"),
    ("empty-title.md", '---\ntitle: ""\ndate: 2026-11-20\n---\n正文\n', "title", "is empty"),
    ("null-title.md", "---\ntitle:\ndate: 2026-11-20\n---\n正文\n", "title", "is empty"),
    ("missing-date.md", "---\ntitle: 标题\n---\n正文\n", "date", "is missing"),
    ("bad-date.md", "---\ntitle: 标题\ndate: next tuesday\n---\n正文\n", "date", "is not a date"),
    ("impossible-date.md", "---\ntitle: 标题\ndate: 2026-02-30\n---\n正文\n", "date", "not a real date"),
    ("impossible-time.md", "---\ntitle: 标题\ndate: 2026-11-20 25:61\n---\n正文\n", "date", "not a real date"),
    ("impossible-zone.md", "---\ntitle: 标题\ndate: 2026-11-20 08:00 +25:00\n---\n正文\n", "date", "not a real date"),
    ("tags-not-list.md", "---\ntitle: 标题\ndate: 2026-11-20\ntags: AI\n---\n正文\n", "tags", "must be a list"),
    ("slug-slash.md", "---\ntitle: 标题\ndate: 2026-11-20\nslug: a/b\n---\n正文\n", "slug", "not a valid slug"),
    ("slug-dots.md", "---\ntitle: 标题\ndate: 2026-11-20\nslug: ../etc\n---\n正文\n", "slug", "not a valid slug"),
    ("slug-upper.md", "---\ntitle: 标题\ndate: 2026-11-20\nslug: Big_Slug\n---\n正文\n", "slug",
     "not a valid slug"),
    ("Bad Name.md", "---\ntitle: 标题\ndate: 2026-11-20\n---\n正文\n", "slug", "file name gives the slug"),
    ("draft-not-bool.md", "---\ntitle: 标题\ndate: 2026-11-20\ndraft: maybe\n---\n正文\n", "draft",
     "true or false"),
    ("source-not-url.md", "---\ntitle: 标题\ndate: 2026-11-20\nsource: example.com\n---\n正文\n", "source",
     "not an absolute http(s) URL"),
    ("unclosed.md", "---\ntitle: 标题\ndate: 2026-11-20\n正文\n", None, "not closed"),
    ("list-frontmatter.md", "---\n- a\n- b\n---\n正文\n", None, "key: value pairs"),
]


@pytest.mark.parametrize(("name", "text", "field", "words"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_a_clear_error_naming_file_and_field(newsletter, run_cli, name, text, field, words):
    newsletter.issue(name, raw=text.encode("utf-8"))
    result = run_cli("-C", str(newsletter.root), "check")
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert f"content/{name}" in result.stderr
    assert words in result.stderr
    if field:
        assert f"{field}:" in result.stderr


def test_yaml_error_names_the_line(newsletter):
    newsletter.issue("x.md", raw=b"---\ntitle: ok\ndate: 2026-11-20\ntags: [a, b\n---\nbody\n")
    with pytest.raises(PublisherError) as info:
        load_issues(newsletter.load_config())
    (problem,) = info.value.problems
    assert problem.line is not None and 3 <= problem.line <= 6


def test_field_error_names_the_line_of_the_key(newsletter):
    newsletter.issue("x.md", raw="---\ntitle: 标题\n\ndate: 2026-13-01\n---\n正文\n".encode())
    with pytest.raises(PublisherError) as info:
        load_issues(newsletter.load_config())
    (problem,) = info.value.problems
    assert (problem.field, problem.line) == ("date", 4)


def test_non_utf8_bytes_are_an_error_with_line(newsletter, run_cli):
    newsletter.issue("gbk.md", raw="---\ntitle: 标题\ndate: 2026-11-20\n---\n中文正文\n".encode("gbk"))
    result = run_cli("-C", str(newsletter.root), "check")
    assert result.exit_code == 1
    assert "content/gbk.md:2: is not UTF-8" in result.stderr


def test_all_errors_of_all_files_are_reported_at_once(newsletter):
    newsletter.issue("a.md", raw=b"---\ndate: 2026-11-20\ntags: x\n---\nbody\n")
    newsletter.issue("b.md", raw=b"no frontmatter\n")
    newsletter.issue("c.md")  # a good one
    with pytest.raises(PublisherError) as info:
        load_issues(newsletter.load_config())
    found = {(str(p.file), p.field) for p in info.value.problems}
    assert found == {("content/a.md", "title"), ("content/a.md", "tags"), ("content/b.md", None)}


def test_duplicate_slugs_name_both_files(newsletter):
    newsletter.issue("2026-11-20-same.md")
    newsletter.issue("sub/other.md", 'title: 另一篇\ndate: 2026-11-21\nslug: same\n')
    with pytest.raises(PublisherError) as info:
        load_issues(newsletter.load_config())
    (problem,) = info.value.problems
    assert "content/2026-11-20-same.md" in str(problem) and "content/sub/other.md" in str(problem)
    assert problem.field == "slug"


def test_frontmatter_only_file_warns_but_loads(newsletter, caplog):
    newsletter.issue("empty.md", raw="---\ntitle: 空\ndate: 2026-11-20\n---\n".encode())
    (issue,) = load_issues(newsletter.load_config())
    assert issue.body == "" and issue.summary == ""
    assert "content/empty.md: the issue has no body" in caplog.text


def test_bom_and_crlf_are_accepted(newsletter):
    text = "\ufeff---\r\ntitle: 标题\r\ndate: 2026-11-20\r\n---\r\n\r\n第一段\r\n第二行\r\n"
    newsletter.issue("crlf.md", raw=text.encode("utf-8"))
    (issue,) = load_issues(newsletter.load_config())
    assert issue.title == "标题"
    assert "\r" not in issue.body
    assert issue.summary == "第一段第二行"


def test_unknown_key_warns_with_suggestion(newsletter, caplog):
    newsletter.issue("x.md", "title: 标题\ndate: 2026-11-20\ntgas: [a]\n")
    load_issues(newsletter.load_config())
    assert "content/x.md:4: unknown frontmatter key 'tgas' (did you mean 'tags'?)" in caplog.text


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-11-24", datetime(2026, 11, 24, tzinfo=SHANGHAI)),  # YAML date
    ("2026-11-24 08:00:00", datetime(2026, 11, 24, 8, tzinfo=SHANGHAI)),  # YAML datetime, naive
    ("2026-11-24T08:00", datetime(2026, 11, 24, 8, tzinfo=SHANGHAI)),
    ('"2026-11-24T08:00:00+08:00"', datetime(2026, 11, 24, 0, tzinfo=UTC)),  # quoted ISO string
    ("2026-11-24T00:00:00Z", datetime(2026, 11, 24, 8, tzinfo=SHANGHAI)),
    ("2026-11-23T19:00:00-05:00", datetime(2026, 11, 24, 8, tzinfo=SHANGHAI)),
    ("'2026-11-24'", datetime(2026, 11, 24, tzinfo=SHANGHAI)),
    ("2026-11-23 19:00:00.5 -5", datetime(2026, 11, 24, 8, 0, 0, 500000, tzinfo=SHANGHAI)),  # YAML 1.1 form
    ("2026-11-24t00:00:00z", datetime(2026, 11, 24, 8, tzinfo=SHANGHAI)),
    ("2026-11-24T08:00+0800", datetime(2026, 11, 24, 8, tzinfo=SHANGHAI)),
    ("2026-1-5 8:00", datetime(2026, 1, 5, 8, tzinfo=SHANGHAI)),
])
def test_date_forms(newsletter, value, expected):
    newsletter.issue("x.md", f"title: t\ndate: {value}\n")
    (issue,) = load_issues(newsletter.load_config())
    assert issue.date == expected
    assert issue.date.tzinfo is not None


def test_naive_dates_are_in_the_site_timezone(newsletter):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text().replace("Asia/Shanghai",
                                                                                     "America/New_York"))
    newsletter.issue("x.md", "title: t\ndate: 2026-07-01 09:00\n")
    (issue,) = load_issues(newsletter.load_config())
    assert issue.date.utcoffset() == timedelta(hours=-4)


def test_slug_from_file_name_drops_date_prefix():
    from pathlib import Path

    assert slug_from_filename(Path("2026-11-24-agents-and-evals.md")) == "agents-and-evals"
    assert slug_from_filename(Path("2026-11-24.md")) == "2026-11-24"
    assert slug_from_filename(Path("weekly-12.md")) == "weekly-12"


def test_issue_fields_and_defaults(newsletter):
    newsletter.issue("2026/2026-11-20-full.md", """\
        title: 完整
        date: 2026-11-20 08:00
        tags: [大模型, Agents, 大模型]
        summary: 自定义摘要
        send: false
        subject: 主题
        preheader: 预览
        image: cover.png
        source: https://example.com/original
        authors: [张三, Jane Doe]
    """)
    (newsletter.content / "2026" / "cover.png").write_bytes(b"\x89PNG")  # a local image must exist (issue 15)
    (issue,) = load_issues(newsletter.load_config())
    assert issue.slug == "full"
    assert str(issue.path) == "2026/2026-11-20-full.md"
    assert issue.tags == ("大模型", "Agents")  # duplicates dropped, order kept
    assert (issue.summary, issue.send, issue.subject, issue.preheader) == ("自定义摘要", False, "主题", "预览")
    assert issue.authors == ("张三", "Jane Doe")
    assert issue.url_path == "issues/full/"


def test_issues_are_newest_first_and_select_drafts_and_future(newsletter):
    newsletter.issue("old.md", "title: old\ndate: 2026-01-01\n")
    newsletter.issue("new.md", "title: new\ndate: 2026-11-01\n")
    newsletter.issue("draft.md", "title: draft\ndate: 2026-10-01\ndraft: true\n")
    newsletter.issue("future.md", "title: future\ndate: 2030-01-01\n")
    issues = load_issues(newsletter.load_config())
    assert [i.slug for i in issues] == ["future", "new", "draft", "old"]
    assert [i.slug for i in select(issues, NOW)] == ["new", "old"]
    assert [i.slug for i in select(issues, NOW, drafts=True)] == ["new", "draft", "old"]
    assert [i.slug for i in select(issues, NOW, future=True)] == ["future", "new", "old"]


def test_tag_slugs_keep_any_script():
    assert tag_slug("大模型") == "大模型"
    assert tag_slug("Open Source") == "open-source"
    assert tag_slug("C++ / Rust") == "c-rust"
    assert tag_slug("GPT_5") == "gpt-5"
    assert tag_slug("!!!") == "tag"
