"""The render cache never serves a stale page, email or feed, and is not thrown away for nothing.

For each input that reaches the output, a warm rebuild after changing it must give exactly the bytes of a cold
build (no cache) of the same input; and the change must show in the output, or the comparison proves nothing.
A setting that reaches no output must leave the cache whole: the rebuild renders nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import NOW

from publisher.build import build
from publisher.themes import builtin_theme_dir

# Every section, so that a case changes one value of a complete, realistic config.
SETTINGS: dict[str, dict[str, object]] = {
    "site": {"title": "AI 日报", "url": "https://news.example.com/daily/", "description": "每日 AI 要闻",
             "language": "zh-CN", "timezone": "Asia/Shanghai", "author": "编辑部",
             "author_email": "editor@news.example.com", "subscribe_url": "https://api.example.com/subscribe"},
    "build": {"output": "dist", "theme": "default"},
    "feeds": {"limit": 20, "full_content": True},
    "email": {"from_address": "news@news.example.com", "subject_prefix": "[日报]", "reason": "你订阅了。",
              "postal_address": "北京市海淀区 1 号", "default_name": "朋友",
              "unsubscribe_url": "https://api.example.com/unsubscribe", "transport": "outbox", "rate": 10,
              "workers": 4, "max_consecutive_failures": 20},
    "deploy": {"target": "public", "concurrency": 8},
    "subscribers": {"database": "subscribers.db"},
    "smtp": {"host": "localhost", "port": 587, "timeout": 30},
    "ses": {"region": "us-east-1"},
    "schedule": {"every": "5m", "max_lateness": "24h"},
    "serve": {"port": 8080, "rate_per_ip": 10},
}


def toml(settings: dict[str, dict[str, object]]) -> str:
    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return str(v) if isinstance(v, int | float) else f'"{v}"'

    return "".join(f"[{name}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in table.items()) + "\n"
                   for name, table in settings.items())


@pytest.fixture(autouse=True)
def cache_key(tmp_path, monkeypatch):
    """The render cache's key in the test's own folder, not in the home folder of whoever runs the tests."""
    monkeypatch.setenv("PUBLISHER_CACHE_KEY_FILE", str(tmp_path / "cache-key"))


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


class Folder:
    """A newsletter of three issues (c newest), a user override in the theme, and a second theme."""

    def __init__(self, newsletter) -> None:  # type: ignore[no-untyped-def]
        self.n = newsletter
        self.root: Path = newsletter.root
        self.settings = {name: dict(table) for name, table in SETTINGS.items()}
        self.write_config()
        newsletter.issue("2026-11-18-a.md", "title: 第一期\ndate: 2026-11-18\ntags: [模型]\n", "甲的正文。\n")
        newsletter.issue("2026-11-19-b.md", "title: 第二期\ndate: 2026-11-19 08:00\ntags: [模型, 芯片]\n",
                         "乙的正文，见[上一期](2026-11-18-a.md)。\n\n![图](https://img.example.com/b.png)\n")
        newsletter.issue("2026-11-20-c.md", "title: 第三期\ndate: 2026-11-20\n", "丙的正文。\n")
        self.override("default", "web/tag.html", "user's tag page")
        self.override("alt", "web/index.html", "the alt theme")

    def write_config(self) -> None:
        (self.root / "publisher.toml").write_text(toml(self.settings), encoding="utf-8")

    def set(self, dotted: str, value: object) -> None:
        section, key = dotted.split(".")
        self.settings[section][key] = value
        self.write_config()

    def override(self, theme: str, name: str, label: str) -> None:
        """A user's copy of a built-in template that shows `label` (inside a block: a child template's text
        outside its blocks is never shown)."""
        text = (builtin_theme_dir() / name).read_text(encoding="utf-8")
        anchor = "{% block main %}" if name.startswith("web/") else '{{ _("View in browser") }}'
        assert anchor in text
        self.write(f"themes/{theme}/{name}", text.replace(anchor, f"{anchor}<b>{label}</b>", 1))

    def write(self, name: str, text: str) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.n.content / name
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new), encoding="utf-8")


Change = Callable[[Folder], None]

# (what changes, the change, output files that must differ afterwards)
CHANGES: list[tuple[str, Change, list[str]]] = [
    ("body", lambda f: f.edit("2026-11-19-b.md", "乙的正文", "乙改过的正文"),
     ["issues/b/index.html", "issues/b/email.html", "rss.xml", "tags/芯片/atom.xml", "index.html"]),
    ("title", lambda f: f.edit("2026-11-19-b.md", "title: 第二期", "title: 第二期（修订）"),
     ["issues/b/index.html", "issues/b/email.html", "index.html", "tags/模型/index.html", "feed.json"]),
    # a neighbour's title is on the prev/next links of the pages beside it
    ("neighbour title", lambda f: f.edit("2026-11-20-c.md", "title: 第三期", "title: 第三期改名"),
     ["issues/b/index.html"]),
    ("tags", lambda f: f.edit("2026-11-19-b.md", "tags: [模型, 芯片]", "tags: [模型, 政策]"),
     ["issues/b/index.html", "tags/政策/index.html", "tags/政策/rss.xml", "index.html", "sitemap.xml"]),
    ("summary", lambda f: f.edit("2026-11-19-b.md", "title: 第二期", "title: 第二期\nsummary: 手写的摘要"),
     ["index.html", "issues/b/index.html", "rss.xml", "issues/b/email.html"]),
    ("date, same order", lambda f: f.edit("2026-11-19-b.md", "2026-11-19 08:00", "2026-11-19 09:30"),
     ["issues/b/index.html", "index.html", "rss.xml", "sitemap.xml"]),
    ("date, new order", lambda f: f.edit("2026-11-18-a.md", "date: 2026-11-18", "date: 2026-11-21"),
     ["index.html", "issues/a/index.html", "issues/b/index.html", "issues/c/index.html", "rss.xml"]),
    ("subject", lambda f: f.edit("2026-11-19-b.md", "title: 第二期", "title: 第二期\nsubject: 邮件标题"),
     ["issues/b/email.html"]),
    ("preheader", lambda f: f.edit("2026-11-19-b.md", "title: 第二期", "title: 第二期\npreheader: 预览文字"),
     ["issues/b/email.html"]),
    ("image", lambda f: f.edit("2026-11-19-b.md", "title: 第二期", "title: 第二期\nimage: https://img.example.com/c.png"),
     ["issues/b/index.html", "feed.json"]),
    ("authors", lambda f: f.edit("2026-11-19-b.md", "title: 第二期", "title: 第二期\nauthors: [张三]"),
     ["issues/b/index.html", "rss.xml"]),
    ("source", lambda f: f.edit("2026-11-19-b.md", "title: 第二期", "title: 第二期\nsource: https://example.org/x"),
     ["issues/b/index.html", "feed.json"]),
    # b links to a's Markdown file: the link follows a's new slug
    ("linked issue's slug", lambda f: f.edit("2026-11-18-a.md", "title: 第一期", "title: 第一期\nslug: first"),
     ["issues/b/index.html", "issues/b/email.html", "rss.xml"]),
    ("draft", lambda f: f.edit("2026-11-18-a.md", "title: 第一期", "title: 第一期\ndraft: true"),
     ["index.html", "issues/b/index.html", "tags/模型/index.html", "rss.xml"]),
    ("new theme override", lambda f: f.override("default", "web/issue.html", "mine"), ["issues/a/index.html"]),
    ("edited theme override", lambda f: f.override("default", "web/tag.html", "edited"), ["tags/模型/index.html"]),
    ("removed theme override", lambda f: (f.root / "themes/default/web/tag.html").unlink(), ["tags/模型/index.html"]),
    ("email template override", lambda f: f.override("default", "email/issue.mjml", "mail"),
     ["issues/a/email.html"]),
    ("content.css", lambda f: f.write("themes/default/email/content.css", "p { color: #123456; }\n"),
     ["issues/a/email.html"]),
    ("build.theme", lambda f: f.set("build.theme", "alt"), ["index.html"]),
    ("site.title", lambda f: f.set("site.title", "AI 周报"), ["index.html", "issues/a/email.html", "rss.xml"]),
    ("site.url", lambda f: f.set("site.url", "https://other.example.com/"),
     ["issues/a/index.html", "issues/a/email.html", "feed.json", "sitemap.xml"]),
    ("site.description", lambda f: f.set("site.description", "新的描述"), ["index.html", "rss.xml"]),
    ("site.language", lambda f: f.set("site.language", "en"), ["index.html", "issues/a/email.html", "atom.xml"]),
    ("site.timezone", lambda f: f.set("site.timezone", "America/New_York"),
     ["issues/b/index.html", "rss.xml"]),
    ("site.author", lambda f: f.set("site.author", "另一位编辑"), ["issues/a/index.html", "feed.json"]),
    ("site.author_email", lambda f: f.set("site.author_email", "chief@news.example.com"), ["atom.xml"]),
    ("site.subscribe_url", lambda f: f.set("site.subscribe_url", "https://api.example.com/join"),
     ["index.html", "issues/a/index.html"]),
    ("email.subject_prefix", lambda f: f.set("email.subject_prefix", "[周报]"), ["issues/a/email.html"]),
    ("email.reason", lambda f: f.set("email.reason", "因为你订阅了。"), ["issues/a/email.html"]),
    ("email.postal_address", lambda f: f.set("email.postal_address", "上海市 2 号"), ["issues/a/email.html"]),
    ("email.default_name", lambda f: f.set("email.default_name", "读者朋友"), ["issues/a/email.html"]),
    ("email.unsubscribe_url", lambda f: f.set("email.unsubscribe_url", "https://api.example.com/bye"),
     ["issues/a/email.html"]),
    ("feeds.limit", lambda f: f.set("feeds.limit", 2), ["rss.xml", "feed.json", "atom.xml"]),
    ("feeds.full_content", lambda f: f.set("feeds.full_content", False), ["rss.xml", "feed.json"]),
    ("feeds.hubs", lambda f: f.set("feeds.hubs", ["https://pubsubhubbub.appspot.com/"]),
     ["rss.xml", "atom.xml", "feed.json", "tags/模型/rss.xml", "tags/芯片/atom.xml"]),
]


@pytest.mark.parametrize(("change", "must_change"), [(c, m) for _, c, m in CHANGES], ids=[i for i, _, _ in CHANGES])
def test_warm_rebuild_after_a_change_equals_a_cold_build(newsletter, change, must_change):
    folder = Folder(newsletter)
    build(newsletter.load_config(), now=NOW)  # fills the cache
    before = tree(newsletter.root / "dist")
    change(folder)
    config = newsletter.load_config()
    warm = build(config, now=NOW)
    build(config, now=NOW, output=newsletter.root / "cold", use_cache=False)
    after, cold = tree(newsletter.root / "dist"), tree(newsletter.root / "cold")
    assert after.keys() == cold.keys()
    assert [p for p in after if after[p] != cold[p]] == []  # a stale file is named here
    assert [p for p in must_change if before.get(p) == after.get(p)] == []  # the change reached the output
    assert warm.cache_misses > 0


# Settings for sending, deploying and serving: no page, email or feed shows them.
NOT_IN_OUTPUT = [("smtp.timeout", 60), ("smtp.host", "mail.example.com"), ("schedule.every", "1h"),
                 ("schedule.max_lateness", "2d"), ("deploy.target", "s3://news-bucket/site/"),
                 ("deploy.concurrency", 16), ("subscribers.database", "other.db"), ("ses.region", "eu-west-1"),
                 ("serve.port", 9090), ("serve.rate_per_ip", 50), ("email.transport", "ses"), ("email.rate", 2),
                 ("email.workers", 8), ("email.max_consecutive_failures", 5), ("email.outbox", "sent"),
                 ("build.output", "site"), ("email.test_subject_prefix", "[试发]"),
                 ("email.queue_url", "https://sqs.us-east-1.amazonaws.com/123456789012/newsletter-send")]


@pytest.mark.parametrize(("key", "value"), NOT_IN_OUTPUT, ids=[k for k, _ in NOT_IN_OUTPUT])
def test_a_setting_that_reaches_no_output_keeps_the_cache(newsletter, key, value):
    folder = Folder(newsletter)
    config = newsletter.load_config()
    first = build(config, now=NOW, output=newsletter.root / "dist")
    assert first.cache_misses > 0  # the counter counts: a cold cache misses
    folder.set(key, value)
    changed = newsletter.load_config()
    again = build(changed, now=NOW, output=newsletter.root / "dist")
    assert again.cache_misses == 0 and again.written == 0 and again.removed == 0
    # and leaving it out of the cache key hides nothing: rendered afresh, the output is the same
    build(changed, now=NOW, output=newsletter.root / "cold", use_cache=False)
    assert tree(newsletter.root / "cold") == tree(newsletter.root / "dist")


def test_every_setting_left_out_of_the_cache_key_exists_and_is_proven_above():
    from publisher.config import NOT_RENDERED, SECTIONS

    known = set(SECTIONS) | {f"{s}.{f}" for s, cls in SECTIONS.items() for f in cls.__dataclass_fields__}
    assert known >= NOT_RENDERED  # a misspelt entry would leave its setting in the key, unnoticed
    tried = {key for key, _ in NOT_IN_OUTPUT}
    assert {n for n in NOT_RENDERED if not any(t == n or t.startswith(n + ".") for t in tried)} == set()

