"""Security of what publisher reads and writes: deploy and build only write and delete in folders of their own,
no symbolic link leads a file from outside content/ or the theme onto the site, hostile Markdown and YAML get
a clear error instead of a crash or a hang, and user values (URLs, dates, long values) are checked and cut short.
"""

from __future__ import annotations

import html
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import boto3
import feedparser
import pytest
from conftest import CONFIG, NOW

from publisher import markdown
from publisher.build import build
from publisher.content import load_issues
from publisher.deploy import DEPLOY_MARK, deploy, target_for
from publisher.errors import PublisherError


def with_target(newsletter, target: str) -> None:
    newsletter.config(CONFIG + f'[deploy]\ntarget = "{target}"\n')


def built(newsletter, target: str = "public"):  # type: ignore[no-untyped-def]
    with_target(newsletter, target)
    newsletter.issue("2026-11-20-a.md", "title: A\ndate: 2026-11-20\n")
    newsletter.issue("2026-11-21-b.md", "title: B\ndate: 2026-11-21\n")
    config = newsletter.load_config()
    build(config, now=NOW)
    return config


def tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def run_publisher(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real command in its own process: a crash (a signal) or a hang shows as what it is."""
    env = {**os.environ, "PUBLISHER_NOW": NOW.isoformat()}
    return subprocess.run([sys.executable, "-m", "publisher", "-C", str(root), *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


# ---- item 3: deploy writes and deletes only in a folder it made and marked ----


def test_deploy_to_the_parent_folder_deletes_nothing(newsletter, run_cli):
    with_target(newsletter, "..")
    issue = newsletter.issue("2026-11-20-a.md")
    database = newsletter.root / "subscribers.db"
    database.write_bytes(b"SQLite format 3\0")
    beside = newsletter.root.parent / "notes.txt"
    beside.write_text("not the newsletter's", encoding="utf-8")
    build(newsletter.load_config(), now=NOW)
    result = run_cli("-C", str(newsletter.root), "deploy", "--delete")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "deploy.target" in lines[0] and "Traceback" not in result.stderr
    for kept in (issue, newsletter.root / "publisher.toml", database, beside):
        assert kept.exists(), kept
    assert not (newsletter.root.parent / "index.html").exists()


@pytest.mark.parametrize("where", ["/", "home", "above-home", ".", "content", "content/2026", "themes", "dist",
                                   "dist/site", "a-git-checkout", "a-config-folder", "another-newsletter",
                                   ".git/site"])
def test_deploy_refuses_folders_that_are_not_its_own_whatever_they_hold(newsletter, monkeypatch, tmp_path, where):
    home = tmp_path / "home" / "me"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    (newsletter.root / ".git").mkdir()
    other = tmp_path / "other"
    (other / "content").mkdir(parents=True)
    if where == "a-git-checkout":
        (other / ".git").mkdir()
    elif where == "a-config-folder":
        (other / "publisher.toml").write_text("", encoding="utf-8")
    elif where == "another-newsletter":
        (other / "content" / "x.md").write_text("---\ntitle: x\n---\n", encoding="utf-8")
    target = {"home": str(home), "above-home": str(home.parent)}.get(where, where)
    with_target(newsletter, str(other) if where in ("a-git-checkout", "a-config-folder", "another-newsletter")
                else target)
    with pytest.raises(PublisherError) as info:
        target_for(newsletter.load_config())  # refused before anything is listed, let alone written
    assert info.value.problems[0].field == "deploy.target"
    assert "publisher only writes and deletes in a folder of its own" in str(info.value)


def test_deploy_refuses_a_folder_holding_files_it_did_not_put_there(newsletter):
    public = newsletter.root / "public"
    public.mkdir()
    (public / "notes.txt").write_text("mine", encoding="utf-8")
    config = built(newsletter)
    for dry_run in (True, False):
        with pytest.raises(PublisherError) as info:
            deploy(config, delete=True, dry_run=dry_run)
        assert info.value.problems[0].field == "deploy.target" and DEPLOY_MARK in str(info.value)
    assert tree(public) == ["notes.txt"]


def test_deploy_marks_the_folder_it_makes_and_deletes_only_there(newsletter):
    config = built(newsletter)
    public = newsletter.root / "public"
    deploy(config)
    assert (public / DEPLOY_MARK).is_dir()
    assert not (public / ".publisher-build").exists()  # the build's mark stays in dist/
    (public / "old.html").write_text("stale", encoding="utf-8")
    result = deploy(config, delete=True)
    assert result.deleted == 1 and not (public / "old.html").exists()
    assert (public / DEPLOY_MARK).is_dir() and (public / "index.html").exists()


def test_deploy_takes_over_a_folder_an_earlier_version_deployed(newsletter):
    config = built(newsletter)
    public = newsletter.root / "public"
    shutil.copytree(config.output_dir, public, ignore=shutil.ignore_patterns(".*"))  # what deploy left, no mark
    (public / "gone.html").write_text("stale", encoding="utf-8")
    result = deploy(config, delete=True)
    assert result.deleted == 1 and result.uploaded == 0
    assert (public / DEPLOY_MARK).is_dir()


def test_deploy_never_writes_through_a_linked_folder_in_the_target(newsletter, tmp_path):
    config = built(newsletter)
    public = newsletter.root / "public"
    deploy(config)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.html").write_text("keep", encoding="utf-8")
    shutil.rmtree(public / "issues")
    (public / "issues").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PublisherError) as info:
        deploy(config, delete=True)
    assert "symbolic link" in str(info.value)
    assert tree(outside) == ["keep.html"]


def test_deploy_never_follows_a_link_in_dist(newsletter, tmp_path, caplog):
    config = built(newsletter)
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0", encoding="utf-8")
    (config.output_dir / "passwd.txt").symlink_to(secret)
    with caplog.at_level(logging.WARNING):
        deploy(config)
    public = newsletter.root / "public"
    assert (public / "index.html").exists() and not (public / "passwd.txt").exists()
    assert any("passwd.txt" in r.getMessage() and "symbolic link" in r.getMessage() for r in caplog.records)


def test_s3_gets_neither_marks_nor_what_a_link_in_dist_points_at(newsletter, bucket, tmp_path):
    config = built(newsletter, f"s3://{bucket}/news/")
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0", encoding="utf-8")
    (config.output_dir / "passwd.txt").symlink_to(secret)
    assert (config.output_dir / ".publisher-build").is_dir()
    deploy(config)
    keys = [item["Key"] for item in boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]]
    assert "news/index.html" in keys
    assert not any(k.endswith("passwd.txt") or ".publisher-build" in k or DEPLOY_MARK in k for k in keys)


# ---- item 3, the build side: the same outright refusals for build.output ----


@pytest.mark.parametrize("case", ["/", "home", ".git", "empty .git", ".git/site"])
def test_build_refuses_the_root_home_and_git_folders_as_output(newsletter, monkeypatch, tmp_path, case):
    home = tmp_path / "home" / "me"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # keeps the home folder empty: still refused
    git = newsletter.root / ".git"
    git.mkdir()
    if case == ".git":
        (git / "config").write_text("[core]\n", encoding="utf-8")
    output = {"home": str(home), "empty .git": ".git"}.get(case, case)
    newsletter.config(CONFIG + f'[build]\noutput = "{output}"\n')
    newsletter.issue("2026-11-20-a.md")
    with pytest.raises(PublisherError) as info:
        build(newsletter.load_config(), now=NOW)
    assert info.value.problems[0].field == "build.output"
    assert tree(git) == (["config"] if case == ".git" else [])
    assert not (home / "index.html").exists() and not (home / ".publisher-build").exists()


def test_build_into_a_folder_with_files_beside_the_newsletter_is_refused(newsletter, monkeypatch, run_cli):
    victim = newsletter.root.parent / "victim2"
    victim.mkdir()
    (victim / "thesis.tex").write_text("years of work", encoding="utf-8")
    newsletter.issue("2026-11-20-a.md")
    monkeypatch.chdir(newsletter.root)
    result = run_cli("build", "-o", "../victim2")
    assert result.exit_code == 1 and "Traceback" not in result.stderr and "build.output" in result.stderr
    assert tree(victim) == ["thesis.tex"]


def test_the_shared_folder_rule(tmp_path, monkeypatch):
    from publisher.files import unsafe_folder_reason

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    project = tmp_path / "news"
    (project / "content").mkdir(parents=True)
    dist = project / "dist"
    (dist / "content").mkdir(parents=True)  # assets of content/content/: no Markdown is ever copied
    (dist / "content" / "logo.png").write_bytes(b"png")
    protected = (project / "content", project / "themes")
    assert unsafe_folder_reason(dist, project=project, protected=protected) is None
    assert unsafe_folder_reason(project / "public", project=project, protected=protected) is None
    assert unsafe_folder_reason(Path("/"), project=project) == "is the root of the file system"
    assert "home" in unsafe_folder_reason(tmp_path / "home", project=project)
    assert "inside" in unsafe_folder_reason(project / "content" / "x", project=project, protected=protected)


# ---- item 7: no symbolic link leads a file from outside content/ or the theme onto the site ----


def test_links_out_of_content_are_skipped_and_named(newsletter, tmp_path, caplog):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0", encoding="utf-8")
    outside_issue = tmp_path / "outside.md"
    outside_issue.write_text("---\ntitle: Leak\ndate: 2026-11-20\n---\n\nroot:x:0:0\n", encoding="utf-8")
    outside_folder = tmp_path / "outdir"
    outside_folder.mkdir()
    (outside_folder / "x.png").write_bytes(b"secret png")
    newsletter.issue("2026-11-20-a.md")
    (newsletter.content / "img").mkdir()
    (newsletter.content / "img" / "a.png").write_bytes(b"png")
    (newsletter.content / "passwd.txt").symlink_to(secret)
    (newsletter.content / "leak.md").symlink_to(outside_issue)
    (newsletter.content / "leakdir").symlink_to(outside_folder, target_is_directory=True)
    (newsletter.content / "cover.png").symlink_to(newsletter.content / "img" / "a.png")  # inside: followed
    config = newsletter.load_config()
    with caplog.at_level(logging.WARNING):
        result = build(config, now=NOW)
    dist = config.output_dir
    assert not (dist / "passwd.txt").exists() and not (dist / "issues" / "leak").exists()
    assert not (dist / "leakdir").exists()
    assert [i.slug for i in result.issues] == ["a"]
    assert (dist / "cover.png").read_bytes() == b"png"
    assert b"root:x:0:0" not in b"".join(p.read_bytes() for p in dist.rglob("*") if p.is_file())
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for name in ("content/passwd.txt", "content/leak.md", "content/leakdir"):
        assert f"{name} is a symbolic link to" in warned, name


def test_theme_files_and_templates_linked_from_outside_are_refused(newsletter, tmp_path, caplog):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0", encoding="utf-8")
    static = newsletter.root / "themes" / "default" / "web" / "static"
    static.mkdir(parents=True)
    (static / "passwd.txt").symlink_to(secret)
    newsletter.issue("2026-11-20-a.md")
    config = newsletter.load_config()
    with caplog.at_level(logging.WARNING):
        build(config, now=NOW)
    assert not (config.output_dir / "static" / "passwd.txt").exists()
    assert (config.output_dir / "static" / "style.css").exists()
    assert any("themes/default/web/static/passwd.txt is a symbolic link" in r.getMessage() for r in caplog.records)
    template = tmp_path / "evil.html"
    template.write_text("SECRET-TEMPLATE", encoding="utf-8")
    (static.parent / "404.html").symlink_to(template)
    with pytest.raises(PublisherError) as info:
        build(config, now=NOW)
    assert "404.html is a symbolic link out of the theme folder" in str(info.value)
    assert "SECRET-TEMPLATE" not in (config.output_dir / "404.html").read_text(encoding="utf-8")


def test_a_fifo_in_content_is_skipped_not_read(newsletter):
    newsletter.issue("2026-11-20-a.md")
    os.mkfifo(newsletter.content / "pipe.png")  # reading it would wait for a writer forever
    result = run_publisher(newsletter.root, "build", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "content/pipe.png is not a regular file" in result.stderr
    assert not (newsletter.root / "dist" / "pipe.png").exists()


# ---- item 9: nesting and expansion are bounded before anything parses ----


@pytest.mark.parametrize("command", ["build", "check"])
def test_a_deeply_nested_list_is_an_error_not_a_crash(newsletter, command):
    newsletter.issue("2026-11-20-a.md")
    newsletter.issue("2026-11-21-deep.md", "title: Deep\ndate: 2026-11-21\n", "Intro.\n\n" + "1. " * 25000 + "x\n")
    result = run_publisher(newsletter.root, command)
    assert result.returncode == 1, (result.returncode, result.stderr[-500:])  # not -11 (SIGSEGV)
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        "error: content/2026-11-21-deep.md:8: lists and quotes are nested more than 32 levels deep (flatten the "
        "lists and quotes that start there)"]


def test_nesting_limits(newsletter):
    ok = "\n".join(" " * (2 * n) + "- level" for n in range(20)) + "\n\n" + "> " * 10 + "quote\n"
    markdown.check_nesting(ok + "- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -\n")  # a rule
    for deep in ("> " * 33 + "x", "- " * 33 + "x", "\t" * 17 + "- x", "**a " * 10_001):
        with pytest.raises(markdown.NestingError):
            markdown.check_nesting("Intro.\n\n" + deep + "\n")
    newsletter.issue("x.md", body="Intro.\n\n" + "**a " * 10_001 + "\n")
    with pytest.raises(PublisherError) as info:
        load_issues(newsletter.load_config())
    assert info.value.problems[0].line == 8 and "10,000 emphasis and link marks" in str(info.value)


def test_deep_inline_nesting_under_the_limit_renders_as_text():
    text = markdown.to_text("**a " * 5000 + "x" + "**" * 5000 + "\n", lambda url: url)
    assert text.startswith("a a a") and text.rstrip().endswith("x")
    linked = markdown.to_text("![" * 3000 + "x" + "](u)" * 3000 + "\n", lambda url: url)
    assert "x" in linked


BOMB = """\
title: Laughs
date: 2026-11-20
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
tags: [*f]
"""


def test_a_yaml_alias_bomb_is_refused_at_once(newsletter):
    newsletter.issue("2026-11-20-lol.md", BOMB)
    with pytest.raises(PublisherError) as info:
        load_issues(newsletter.load_config())
    message = str(info.value)
    assert message.startswith("content/2026-11-20-lol.md:5: frontmatter uses a YAML alias")
    assert len(message) < 300


def test_values_in_messages_are_cut_short(newsletter, caplog):
    long_list = "[" + ", ".join(f"[item{n}]" for n in range(20_000)) + "]"
    newsletter.issue("x.md", f"title: x\ndate: 2026-11-20\ntags: {long_list}\nslug: {'x_' * 5000}\n"
                     f"draft: {long_list}\n? {'k' * 5000}\n: 1\n")  # an explicit key may be that long
    with caplog.at_level(logging.WARNING), pytest.raises(PublisherError) as info:
        load_issues(newsletter.load_config())
    assert [p.field for p in info.value.problems] == ["tags", "slug", "draft"]
    for line in str(info.value).splitlines() + [r.getMessage() for r in caplog.records]:
        assert len(line) < 300, line


@pytest.mark.parametrize("value", ["9999-12-31 23:59 +14:00", "9999-12-31 23:59 -14:00", "0001-01-01 00:00 +14:00",
                                   "99999-01-01", "9999-12-31 23:59"])
def test_dates_out_of_range_are_a_clear_error(newsletter, run_cli, value):
    newsletter.issue("x.md", f"title: x\ndate: {value}\n")
    result = run_cli("-C", str(newsletter.root), "check")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[0].startswith("error: content/x.md:3: date: ")


# ---- low items: image and source URLs, RSS description ----


@pytest.mark.parametrize("image", ["javascript:alert(1)", "JavaScript:alert(1)", "\\x01javascript:alert(1)",
                                   "java\\tscript:alert(1)", "data:image/svg+xml,<svg onload=alert(1)>",
                                   "vbscript:msgbox(1)", "//evil.example/x.png", "\\\\\\\\evil.example/x.png",
                                   "http://[broken/x.png"])
def test_image_must_be_an_http_url_or_a_relative_path(newsletter, image):
    newsletter.issue("x.md", f'title: x\ndate: 2026-11-20\nimage: "{image}"\n')
    with pytest.raises(PublisherError) as info:
        load_issues(newsletter.load_config())
    problem = info.value.problems[0]
    assert (str(problem.file), problem.field) == ("content/x.md", "image")


@pytest.mark.parametrize("source", ["javascript:alert(1)", "\\x01https://example.com/", "https:example.com",
                                    "http://[broken/"])
def test_source_must_be_an_http_url(newsletter, source):
    newsletter.issue("x.md", f'title: x\ndate: 2026-11-20\nsource: "{source}"\n')
    with pytest.raises(PublisherError) as info:
        load_issues(newsletter.load_config())
    assert info.value.problems[0].field == "source"


def test_good_images_and_sources_pass(newsletter):
    for n, image in enumerate(["images/cover.png", "/img/a.png", "https://cdn.example.com/a.png", "a b.png"]):
        newsletter.issue(f"i{n}.md", f'title: x\ndate: 2026-11-2{n}\nimage: "{image}"\n'
                         'source: "https://example.com/post?a=1&b=2"\n')
    for local in ("images/cover.png", "img/a.png", "a b.png"):  # a local image must exist (issue 15)
        (newsletter.content / local).parent.mkdir(exist_ok=True)
        (newsletter.content / local).write_bytes(b"\x89PNG")
    assert {i.image for i in load_issues(newsletter.load_config())} == {
        "images/cover.png", "/img/a.png", "https://cdn.example.com/a.png", "a b.png"}


def test_a_plain_text_summary_reads_the_same_in_every_feed(newsletter):
    summary = "<script>alert(1)</script> & AT&T <b>bold</b> 5 < 6 &amp;"
    newsletter.issue("x.md", textwrap.dedent(f"""\
        title: x
        date: 2026-11-20
        summary: {json.dumps(summary)}
    """))
    config = newsletter.load_config()
    build(config, now=NOW, use_cache=False)
    rss = (config.output_dir / "rss.xml").read_bytes()
    item = ET.fromstring(rss).find("channel/item")
    assert item.findtext("description") == html.escape(summary, quote=False)  # HTML that shows the text
    reader = feedparser.parse(rss).entries[0]
    assert reader.summary_detail.type == "text/html" and html.unescape(reader.summary) == summary
    atom = feedparser.parse((config.output_dir / "atom.xml").read_bytes()).entries[0]
    assert atom.summary_detail.type == "text/plain" and atom.summary == summary
    assert json.loads((config.output_dir / "feed.json").read_text())["items"][0]["summary"] == summary
