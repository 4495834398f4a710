"""Writing dist/: all or nothing, unchanged files untouched, the cache, path collisions."""

from __future__ import annotations

import pytest
from conftest import NOW

from publisher.build import MARK, RenderCache, build, render
from publisher.content import load_issues
from publisher.errors import PublisherError


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino)
            for p in folder.rglob("*") if p.is_file()}


def test_failed_build_leaves_previous_dist_untouched(newsletter):
    newsletter.issue("2026-11-20-ok.md")
    config = newsletter.load_config()
    build(config, now=NOW, use_cache=False)
    before = snapshot(newsletter.root / "dist")
    newsletter.issue("2026-11-21-bad.md", raw=b"---\ntitle: [\n---\n")
    with pytest.raises(PublisherError):
        build(config, now=NOW, use_cache=False)
    assert snapshot(newsletter.root / "dist") == before
    assert not list(newsletter.root.glob(".dist.*"))  # no staging folder left behind


def test_failure_while_writing_leaves_previous_dist_untouched(newsletter, monkeypatch):
    newsletter.issue("2026-11-20-ok.md")
    config = newsletter.load_config()
    build(config, now=NOW, use_cache=False)
    before = snapshot(newsletter.root / "dist")
    newsletter.issue("2026-11-21-new.md", "title: 新\ndate: 2026-11-21\n")
    from pathlib import Path

    real_write = Path.write_bytes
    calls = {"n": 0}

    def failing_write(self, data):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing_write)
    with pytest.raises(OSError):
        build(config, now=NOW, use_cache=False)
    monkeypatch.undo()
    assert snapshot(newsletter.root / "dist") == before
    assert not list(newsletter.root.glob(".dist.*"))


def test_unchanged_files_keep_their_mtime_and_changed_ones_are_rewritten(newsletter):
    newsletter.issue("2026-11-20-a.md", "title: A\ndate: 2026-11-20\n")
    path = newsletter.issue("2026-11-19-b.md", "title: B\ndate: 2026-11-19\n")
    config = newsletter.load_config()
    first = build(config, now=NOW)
    assert first.written == first.files and first.unchanged == 0
    before = snapshot(newsletter.root / "dist")
    second = build(config, now=NOW)
    assert second.written == 0 and second.unchanged == second.files
    assert snapshot(newsletter.root / "dist") == before
    path.write_text("---\ntitle: B\ndate: 2026-11-19\n---\n\n改过的正文。\n", encoding="utf-8")
    third = build(config, now=NOW)
    after = snapshot(newsletter.root / "dist")
    changed = {p for p in after if after[p] != before[p]}
    # the page, the archive (summary), and the feeds that carry the issue
    assert "issues/b/index.html" in changed and "index.html" in changed and "rss.xml" in changed
    assert "issues/a/index.html" not in changed and "static/style.css" not in changed
    assert third.written == len(changed)


def test_removed_issue_disappears_from_dist(newsletter):
    newsletter.issue("2026-11-20-a.md", "title: A\ndate: 2026-11-20\n")
    gone = newsletter.issue("2026-11-19-b.md", "title: B\ndate: 2026-11-19\ntags: [only-b]\n")
    config = newsletter.load_config()
    build(config, now=NOW)
    gone.unlink()
    result = build(config, now=NOW)
    dist = newsletter.root / "dist"
    assert not (dist / "issues" / "b").exists() and not (dist / "tags" / "only-b").exists()
    assert result.removed == 5  # the page, its email, the tag page and its two feeds


def test_cache_gives_the_same_bytes_and_repeats_warnings(newsletter, caplog):
    newsletter.issue("2026-11-20-a.md", "title: A\ndate: 2026-11-20\ntitel: typo\n")
    config = newsletter.load_config()
    build(config, now=NOW, output=newsletter.root / "cold", use_cache=False)
    build(config, now=NOW)  # fills the cache
    caplog.clear()
    build(config, now=NOW, output=newsletter.root / "warm")  # from the cache
    assert "unknown frontmatter key 'titel'" in caplog.text
    cold, warm = snapshot(newsletter.root / "cold"), snapshot(newsletter.root / "warm")
    assert {k: v[0] for k, v in cold.items()} == {k: v[0] for k, v in warm.items()}


def test_broken_cache_is_ignored(newsletter):
    newsletter.issue("2026-11-20-a.md")
    config = newsletter.load_config()
    (newsletter.root / ".publisher-cache").mkdir()
    (newsletter.root / ".publisher-cache" / RenderCache.FILE).write_bytes(b"not a cache")
    result = build(config, now=NOW)
    assert result.written == result.files
    assert RenderCache(newsletter.root / ".publisher-cache").old  # rewritten, readable


def test_cache_log_appends_small_changes_and_survives_a_cut(newsletter):
    for n in range(5):
        newsletter.issue(f"2026-11-2{n}-i{n}.md", f"title: 第{n}期\ndate: 2026-11-2{n}\n")
    config = newsletter.load_config()
    build(config, now=NOW)
    log = newsletter.root / ".publisher-cache" / RenderCache.FILE
    size = log.stat().st_size
    (newsletter.content / "2026-11-20-i0.md").write_text("---\ntitle: 改\ndate: 2026-11-20\n---\n改过。\n")
    build(config, now=NOW)
    grown = log.stat().st_size
    assert size < grown < size * 1.5  # appended, not rewritten
    cache = RenderCache(newsletter.root / ".publisher-cache")
    assert cache.old and not cache._compact
    log.write_bytes(log.read_bytes()[:-7])  # a crash cut the last record short
    cut = RenderCache(newsletter.root / ".publisher-cache")
    assert cut.old and cut._compact  # the records before the cut are kept; the next save rewrites
    warm = build(config, now=NOW, output=newsletter.root / "again")
    assert warm.written == warm.files


def test_two_outputs_claiming_one_path_is_an_error(newsletter):
    newsletter.issue("2026-11-20-a.md")
    clash = newsletter.content / "rss.xml"
    clash.write_text("<rss/>")
    with pytest.raises(PublisherError) as info:
        build(newsletter.load_config(), now=NOW)
    assert "two outputs claim rss.xml" in str(info.value) and "content/rss.xml" in str(info.value)


def test_output_folder_that_would_replace_the_newsletter_is_refused(newsletter):
    newsletter.issue("2026-11-20-a.md")
    config = newsletter.load_config()
    for bad in (newsletter.root, newsletter.root / "content", newsletter.root.parent):
        with pytest.raises(PublisherError) as info:
            build(config, now=NOW, output=bad)
        assert info.value.problems[0].field == "build.output"
    assert (newsletter.root / "publisher.toml").exists()


def test_assets_beside_issues_are_copied_and_hidden_files_skipped(newsletter):
    newsletter.issue("2026/2026-11-20-a.md", body="![图](img/a.png)\n")
    (newsletter.content / "2026" / "img").mkdir()
    (newsletter.content / "2026" / "img" / "a.png").write_bytes(b"\x89PNG fake")
    (newsletter.content / ".DS_Store").write_bytes(b"junk")
    build(newsletter.load_config(), now=NOW)
    dist = newsletter.root / "dist"
    assert (dist / "2026" / "img" / "a.png").read_bytes() == b"\x89PNG fake"
    assert not (dist / ".DS_Store").exists()
    assert 'src="../../2026/img/a.png"' in (dist / "issues" / "a" / "index.html").read_text()


def test_render_is_pure_and_deterministic(newsletter):
    newsletter.issue("2026-11-20-a.md", "title: A\ndate: 2026-11-20\ntags: [x, 大模型]\n")
    newsletter.issue("2026-11-21-b.md", "title: B\ndate: 2026-11-21\ntags: [x]\n")
    config = newsletter.load_config()
    issues = load_issues(config)
    one, two = render(config, issues, now=NOW), render(config, issues, now=NOW)
    assert one.files == two.files
    assert not (newsletter.root / "dist").exists()  # rendering writes nothing


def dead_pid():
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: no process has this id now
    return child.pid


def test_staging_left_by_a_killed_build_is_cleaned_up(newsletter):
    newsletter.issue("2026-11-20-a.md")
    config = newsletter.load_config()
    build(config, now=NOW)
    stale = newsletter.root / f".dist.{dead_pid()}.0bad.new"
    (stale / MARK).mkdir(parents=True)
    (stale / "issues" / "zombie").mkdir(parents=True)
    (stale / "issues" / "zombie" / "index.html").write_text("half")
    newsletter.issue("2026-11-21-b.md", "title: B\ndate: 2026-11-21\n")
    build(config, now=NOW)
    assert not stale.exists()
    assert not (newsletter.root / "dist" / "issues" / "zombie").exists()
    assert (newsletter.root / "dist" / "issues" / "b" / "index.html").exists()
    assert [p.name for p in newsletter.root.glob(".dist*")] == []


def test_build_killed_between_the_two_renames_gets_its_previous_tree_back(newsletter):
    newsletter.issue("2026-11-20-a.md")
    config = newsletter.load_config()
    build(config, now=NOW)
    before = snapshot(newsletter.root / "dist")
    aside = newsletter.root / f".dist.{dead_pid()}.0bad.old"
    (newsletter.root / "dist").rename(aside)
    result = build(config, now=NOW)
    assert result.written == 0 and snapshot(newsletter.root / "dist") == before
    assert not aside.exists()


def test_folders_a_build_did_not_make_are_never_deleted(newsletter):
    newsletter.issue("2026-11-20-a.md")
    config = newsletter.load_config()
    mine = newsletter.root / f".dist.{dead_pid()}.0bad.new"  # named like a staging folder, but not marked
    (mine / "keep.txt").parent.mkdir()
    (mine / "keep.txt").write_text("mine")
    (newsletter.root / "dist").mkdir()
    (newsletter.root / "dist" / "CNAME").write_text("news.example.com")  # made by hand: no mark
    with pytest.raises(PublisherError) as info:
        build(config, now=NOW)
    assert info.value.problems[0].field == "build.output" and "was not made by a build" in str(info.value)
    assert (newsletter.root / "dist" / "CNAME").read_text() == "news.example.com"
    assert (mine / "keep.txt").read_text() == "mine"
    (newsletter.root / "dist" / "CNAME").unlink()  # an empty folder is taken over
    build(config, now=NOW)
    assert (newsletter.root / "dist" / "index.html").exists() and (mine / "keep.txt").exists()


def test_a_rebuild_swaps_in_a_whole_new_tree_and_links_unchanged_files(newsletter):
    newsletter.issue("2026-11-20-a.md", "title: A\ndate: 2026-11-20\n")
    newsletter.issue("2026-11-19-b.md", "title: B\ndate: 2026-11-19\ntags: [only-b]\n")
    config = newsletter.load_config()
    build(config, now=NOW)
    dist = newsletter.root / "dist"
    old_inode = dist.stat().st_ino
    kept = (dist / "static" / "style.css").stat()
    (newsletter.content / "2026-11-19-b.md").unlink()
    result = build(config, now=NOW)
    assert dist.stat().st_ino != old_inode  # a new folder took the old one's place...
    assert (dist / "static" / "style.css").stat().st_ino == kept.st_ino  # ...holding the unchanged files
    assert (dist / "static" / "style.css").stat().st_mtime_ns == kept.st_mtime_ns
    assert not (dist / "tags" / "only-b").exists() and result.removed == 5
    assert [p.name for p in newsletter.root.glob(".dist*")] == []  # nothing left beside it


def test_unchanged_build_touches_nothing(newsletter):
    newsletter.issue("2026-11-20-a.md")
    config = newsletter.load_config()
    build(config, now=NOW)
    dist = newsletter.root / "dist"
    before = dist.stat().st_mtime_ns
    build(config, now=NOW)
    assert dist.stat().st_mtime_ns == before and not (newsletter.root / ".dist.new").exists()


def tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def many_issues(newsletter, n):
    """`n` issues that link to each other, share tags and carry images and code: work for every renderer."""
    for k in range(n):
        day = f"2026-10-{k % 28 + 1:02d}T{k // 28 + 8:02d}:00:00"
        link = f"见[上一期](i{k - 1}.md)。" if k else "第一期。"
        newsletter.issue(f"i{k}.md", f"title: 第{k}期\ndate: {day}\ntags: [t{k % 4}, 共同]\n",
                         f"正文 {k}，{link}\n\n![图](https://img.example.com/{k}.png)\n\n```\ncode {k}\n```\n")


def test_parallel_render_gives_the_bytes_of_a_serial_one(newsletter):
    from publisher.build import PARALLEL_MIN

    many_issues(newsletter, 30)  # 30 pages + 30 emails + index, tag pages, feeds: over PARALLEL_MIN renders
    config = newsletter.load_config()
    parallel = build(config, now=NOW, output=newsletter.root / "parallel", use_cache=False, workers=2)
    serial = build(config, now=NOW, output=newsletter.root / "serial", use_cache=False, workers=1)
    assert parallel.parallel_renders >= PARALLEL_MIN
    assert serial.parallel_renders == 0
    one, two = tree(newsletter.root / "parallel"), tree(newsletter.root / "serial")
    assert {"issues/i7/email.html", "issues/i7/index.html", "rss.xml", "feed.json", "tags/t3/atom.xml"} <= one.keys()
    assert one.keys() == two.keys()
    assert [p for p in one if one[p] != two[p]] == []


def test_parallel_threshold_is_a_setting(newsletter):
    many_issues(newsletter, 3)
    config = newsletter.load_config()
    low = build(config, now=NOW, output=newsletter.root / "low", use_cache=False, parallel_min=4, workers=2)
    default = build(config, now=NOW, output=newsletter.root / "default", use_cache=False, workers=2)
    assert low.parallel_renders > 4 and default.parallel_renders == 0
    assert tree(newsletter.root / "low") == tree(newsletter.root / "default")


def test_a_swap_that_fails_halfway_puts_the_previous_tree_back(newsletter, monkeypatch):
    import os

    newsletter.issue("2026-11-20-a.md")
    config = newsletter.load_config()
    build(config, now=NOW)
    before = snapshot(newsletter.root / "dist")
    newsletter.issue("2026-11-21-b.md", "title: B\ndate: 2026-11-21\n")
    real_rename = os.rename

    def rename(src, dst):
        if str(src).endswith(".new") and str(dst).endswith("dist"):  # the new tree moving in: the second rename
            raise OSError(5, "Input/output error")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError):
        build(config, now=NOW)
    monkeypatch.undo()
    assert snapshot(newsletter.root / "dist") == before
    assert [p.name for p in newsletter.root.glob(".dist*")] == []
