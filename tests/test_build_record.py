"""The build record (`.publisher-cache/build.json`): a build that would change nothing stops after looking at file
metadata; any change to what a build reads, to its settings or options, to dist/, or an issue crossing "now"
makes it build; a record that is not ours is ignored."""

from __future__ import annotations

import io
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import CONFIG, NOW, build_in_new_processes

from publisher import build as build_mod
from publisher import manifest
from publisher.build import build

RECORD = Path(".publisher-cache") / "build.json"


@pytest.fixture
def settled(monkeypatch):
    """As if every input had been written long before the build: files made by a test a moment ago are otherwise
    "racy" (see `manifest.SETTLE_NS`), and read again by every build."""
    monkeypatch.setattr(manifest, "SETTLE_NS", -(10**18))


def three_issues(newsletter):  # type: ignore[no-untyped-def]
    newsletter.issue("2026-11-18-a.md", "title: 第一期\ndate: 2026-11-18\ntags: [模型]\n", "甲的正文。\n")
    newsletter.issue("2026-11-19-b.md", "title: 第二期\ndate: 2026-11-19\ntags: [模型]\n",
                     "乙见[上一期](2026-11-18-a.md)。\n")
    newsletter.issue("2026-11-20-c.md", "title: 第三期\ndate: 2026-11-20\n", "丙的正文。\n")
    (newsletter.content / "chart.png").write_bytes(b"\x89PNG chart")
    return newsletter.load_config()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def cold(newsletter, config, **options) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    out = newsletter.root / "cold"
    build(config, now=options.pop("now", NOW), output=out, use_cache=False, **options)
    return snapshot(out)


def test_a_build_that_changes_nothing_stops_at_the_record(newsletter, settled):
    config = three_issues(newsletter)
    first = build(config, now=NOW)
    assert not first.skipped and (newsletter.root / RECORD).exists()
    before = {p: p.stat().st_mtime_ns for p in (newsletter.root / "dist").rglob("*")}
    (newsletter.root / ".publisher-cache" / "render.log").write_bytes(b"garbage: never read by a skipped build")
    again = build(config, now=NOW + timedelta(days=30))  # no issue crossed "now" meanwhile
    assert again.skipped and again.written == 0 and again.removed == 0 and again.cache_misses == 0
    assert again.unchanged == again.files == first.files
    assert len(again.issues) == 3
    assert [i.slug for i in again.issues] == [i.slug for i in first.issues]  # loaded when looked at
    assert {p: p.stat().st_mtime_ns for p in (newsletter.root / "dist").rglob("*")} == before


def test_a_skipped_build_imports_no_renderer(newsletter, settled):
    """Measured as a user runs it: `publisher build` in a new process, twice."""
    three_issues(newsletter)
    heavy = ("jinja2", "mjml", "css_inline", "lxml", "feedgen", "yaml", "markdown_it_pyrs")
    first, second = build_in_new_processes(newsletter.root, heavy)
    assert "jinja2" in first[1]  # the first build renders
    assert second[1] == []


CHANGES = {
    "an issue's text, same size": lambda nl, cfg: edit(nl.content / "2026-11-18-a.md", "甲的正文", "甲的全文"),
    "a new issue": lambda nl, cfg: nl.issue("2026-11-21-d.md", "title: 第四期\ndate: 2026-11-21\n"),
    "an issue removed": lambda nl, cfg: (nl.content / "2026-11-20-c.md").unlink(),
    "an asset changed": lambda nl, cfg: (nl.content / "chart.png").write_bytes(b"\x89PNG other"),
    "an asset added in a subfolder": lambda nl, cfg: (nl.content / "img").mkdir() or
    (nl.content / "img" / "x.png").write_bytes(b"\x89PNG"),
    "a hidden file in content/": lambda nl, cfg: (nl.content / ".notes").write_text("x"),
    "a theme override": lambda nl, cfg: (nl.root / "themes/default/web").mkdir(parents=True) or
    (nl.root / "themes/default/web/404.html").write_text("{% extends 'web/base.html' %}{% block main %}没有这一页"
                                                          "{% endblock %}", encoding="utf-8"),
    "a setting": lambda nl, cfg: nl.config(CONFIG.replace("每日 AI 要闻", "每周 AI 要闻")),
}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert len(old.encode()) == len(new.encode())
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.mark.parametrize("change", list(CHANGES))
def test_any_change_to_what_a_build_reads_is_built(newsletter, settled, change):
    config = three_issues(newsletter)
    build(config, now=NOW)
    CHANGES[change](newsletter, config)
    config = newsletter.load_config()
    result = build(config, now=NOW)
    assert not result.skipped  # a hidden file is never published, but a build is what tells
    assert snapshot(newsletter.root / "dist") == cold(newsletter, config)


def test_a_setting_from_the_environment_and_each_option_is_built(newsletter, settled, monkeypatch):
    from publisher.config import load_config

    config = three_issues(newsletter)
    newsletter.issue("2026-11-21-d.md", "title: 草稿\ndate: 2026-11-21\ndraft: true\n")
    build(config, now=NOW)
    assert not build(config, now=NOW, drafts=True).skipped  # an option
    assert not build(config, now=NOW).skipped  # and back
    assert build(config, now=NOW).skipped
    other = load_config(newsletter.root, environ={"PUBLISHER_SITE_TITLE": "另一个标题"})
    assert other.site.title == "另一个标题"
    assert not build(other, now=NOW).skipped
    assert not build(config, now=NOW, output=newsletter.root / "elsewhere").skipped


def test_an_issue_that_comes_due_is_published_though_no_file_changed(newsletter, settled):
    config = three_issues(newsletter)
    newsletter.issue("2026-11-27-later.md", f"title: 明天\ndate: {(NOW + timedelta(hours=3)).isoformat()}\n")
    first = build(config, now=NOW)
    assert first.scheduled_left_out == 1 and not (newsletter.root / "dist/issues/later").exists()
    assert build(config, now=NOW + timedelta(hours=2)).skipped  # still in the future
    due = build(config, now=NOW + timedelta(hours=3, seconds=1))
    assert not due.skipped and (newsletter.root / "dist/issues/later/index.html").exists()
    assert build(config, now=NOW - timedelta(days=7)).written > 0  # and back before issue c: gone again
    assert not (newsletter.root / "dist/issues/c").exists()


@pytest.mark.parametrize("tamper", ["edit in place, same size", "delete", "add a stray file", "replace"])
def test_a_dist_changed_behind_our_back_is_repaired(newsletter, settled, tamper):
    config = three_issues(newsletter)
    build(config, now=NOW)
    dist = newsletter.root / "dist"
    good = snapshot(dist)
    page = dist / "issues" / "a" / "index.html"
    if tamper == "edit in place, same size":
        data = page.read_bytes()
        with open(page, "r+b") as fh:  # the same inode
            fh.write(b"X" * 10)
        os.utime(page, ns=(page.stat().st_atime_ns, os.stat(dist / "index.html").st_mtime_ns))
        assert page.read_bytes() != data
    elif tamper == "delete":
        page.unlink()
    elif tamper == "add a stray file":
        (dist / "stray.html").write_text("not ours")
    else:
        page.unlink()
        page.write_bytes(good["issues/a/index.html"])  # the same bytes, another file: rebuilt, harmlessly
    result = build(config, now=NOW)
    assert not result.skipped
    assert snapshot(dist) == good


def test_a_record_that_is_not_ours_is_ignored(newsletter, settled, tmp_path, monkeypatch):
    config = three_issues(newsletter)
    build(config, now=NOW)
    record = newsletter.root / RECORD
    tag, _, body = record.read_bytes().partition(b"\n")
    data = json.loads(body)
    data["window"] = [None, None]
    record.write_bytes(tag + b"\n" + json.dumps(data).encode())  # altered: the tag no longer matches
    newsletter.issue("2026-11-27-later.md", f"title: 明天\ndate: {(NOW + timedelta(hours=1)).isoformat()}\n")
    assert not build(config, now=NOW + timedelta(hours=2)).skipped
    assert (newsletter.root / "dist/issues/later").exists()
    # a record signed under another key (another machine, another user)
    monkeypatch.setenv("PUBLISHER_CACHE_KEY_FILE", str(tmp_path / "elsewhere" / "key"))
    build(config, now=NOW, output=newsletter.root / "theirs")
    monkeypatch.undo()
    monkeypatch.setattr(manifest, "SETTLE_NS", -(10**18))
    assert manifest.load(newsletter.root / ".publisher-cache", build_mod._record_key(
        newsletter.root / ".publisher-cache")) is None


def test_warnings_are_shown_again_by_a_skipped_build(newsletter, settled, caplog):
    config = three_issues(newsletter)
    newsletter.issue("2026-11-21-d.md", "title: 第四期\ndate: 2026-11-21\ntgas: [模型]\n")
    build(config, now=NOW)
    first = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("tgas" in m for m in first)
    caplog.clear()
    assert build(config, now=NOW).skipped
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == first


def test_an_input_written_just_before_the_build_is_read_again():
    """Racily clean: a file written in the same tick as the build started may change again unseen (same size,
    same timestamps), so the record never vouches for it."""
    started = 10**18
    just = started - 10**6  # a millisecond before
    record = manifest.Record(stamp="s", started_ns=started, inputs={"/c/a.md": (5, just, just, 7)},
                             window=(None, None), outputs={})
    assert not record.covers("s", {"/c/a.md": (5, just, just, 7)}, NOW)
    old = started - 3 * 10**9
    record.inputs = {"/c/a.md": (5, old, old, 7)}
    assert record.covers("s", {"/c/a.md": (5, old, old, 7)}, NOW)
    assert not record.covers("s", {"/c/a.md": (5, old, old + 1, 7)}, NOW)  # ctime: changed, whatever mtime says
    assert not record.covers("other settings", {"/c/a.md": (5, old, old, 7)}, NOW)


def test_a_changed_build_does_not_read_back_what_it_knows(newsletter, settled, monkeypatch):
    """Outputs whose render key is the one that made the untouched file in dist/ are neither read back nor read
    from the cache; the others are compared byte for byte."""
    config = three_issues(newsletter)
    build(config, now=NOW)
    compared = []
    real = build_mod._same
    monkeypatch.setattr(build_mod, "_same", lambda old, info, data: compared.append(old) or real(old, info, data))
    edit(newsletter.content / "2026-11-20-c.md", "丙的正文", "丙的全文")
    result = build(config, now=NOW)
    names = {Path(p).relative_to(result.output).as_posix() for p in compared}
    assert "issues/c/index.html" in names and "issues/c/email.html" in names
    assert "issues/a/index.html" not in names and "issues/a/email.html" not in names
    assert snapshot(result.output) == cold(newsletter, config)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_build_shows_a_progress_bar_only_on_a_terminal_and_only_after_a_second(monkeypatch):
    import time

    from publisher.cli import progress_bar

    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    screen = Terminal()
    with progress_bar("Rendering", after=1.0, stream=screen) as update:
        assert update is not None
        update(16, 2000)
        now[0] += 0.5
        update(32, 2000)
        assert screen.getvalue() == ""  # a build done within the second shows its summary line only
        now[0] += 0.6
        update(48, 2000)
        assert "Rendering" in screen.getvalue() and "48/2000" in screen.getvalue()
    with progress_bar("Rendering", after=1.0, stream=io.StringIO()) as update:  # a pipe or a log
        assert update is None


def test_the_build_reports_progress_as_renders_are_made(newsletter):
    for n in range(40):
        newsletter.issue(f"2026-10-{n % 28 + 1:02d}-i{n}.md", f"title: 第 {n} 期\ndate: 2026-10-{n % 28 + 1:02d}\n")
    seen: list[tuple[int, int]] = []
    result = build(newsletter.load_config(), now=NOW, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1] == result.cache_misses - 40  # every render; parses are not queued
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
