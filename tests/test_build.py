"""Writing dist/: all or nothing, unchanged files untouched, the cache, path collisions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import NOW, REPO
from waiting import Lines, wait_for

from publisher.build import CACHE_DIR, LOCK_FILE, MARK, build, render
from publisher.cache import RenderCache
from publisher.content import load_issues
from publisher.errors import PublisherError


@pytest.fixture(autouse=True)
def cache_key(tmp_path, monkeypatch):
    """The render cache's key in the test's own folder, not in the home folder of whoever runs the tests."""
    path = tmp_path / "cache-key"
    monkeypatch.setenv("PUBLISHER_CACHE_KEY_FILE", str(path))
    return path


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
    assert result.removed == 6  # the page, its email, the tag page and its three feeds


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


def beside(root):
    """What builds left beside dist/."""
    return sorted(p.name for p in root.glob(".dist*"))


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
    assert beside(newsletter.root) == [".dist.spare"]


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
    assert not (dist / "tags" / "only-b").exists() and result.removed == 6
    assert beside(newsletter.root) == [".dist.spare"]  # nothing but the previous tree, marked, kept for the next
    assert (newsletter.root / ".dist.spare" / MARK).is_dir()
    assert (newsletter.root / ".dist.spare" / "tags" / "only-b" / "index.html").exists()


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
    from publisher.cache import PARALLEL_MIN

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


def inodes(folder):
    return {p.relative_to(folder).as_posix(): p.stat().st_ino for p in folder.rglob("*")}


SERIES = [  # (what a rebuild changes, the change)
    ("edit one", lambda n: n.issue("i3.md", "title: 第3期\ndate: 2026-10-04T08:00:00\ntags: [t3, 共同]\n", "改过。\n")),
    ("add one", lambda n: n.issue("new.md", "title: 新\ndate: 2026-10-30\ntags: [新标签]\n", "新的。\n")),
    ("remove one", lambda n: (n.content / "i5.md").unlink()),
    ("edit back", lambda n: many_issues(n, 4)),  # i3 as it was (and i0-i2 rewritten the same)
    ("remove a tag", lambda n: n.issue("new.md", "title: 新\ndate: 2026-10-30\n", "新的。\n")),
    ("nothing", lambda n: None),
    ("edit two", lambda n: [n.issue(f"i{k}.md", f"title: 又改{k}\ndate: 2026-10-0{k + 1}T08:00:00\n") for k in (1, 2)]),
]


def test_rebuilds_from_the_spare_tree_equal_cold_builds(newsletter):
    """Each rebuild makes its tree from the one the previous swap took out: through additions, removals and
    edits back and forth, dist/ always equals a cold build, and the files no change touched are the same files
    (inode, mtime) from the first build to the last."""
    many_issues(newsletter, 8)
    config = newsletter.load_config()
    build(config, now=NOW)
    dist = newsletter.root / "dist"
    first = snapshot(dist)
    for what, change in SERIES:
        change(newsletter)
        build(config, now=NOW)
        build(config, now=NOW, output=newsletter.root / "cold", use_cache=False)
        assert tree(dist) == tree(newsletter.root / "cold"), what
        assert beside(newsletter.root) == [".dist.spare"], what
    last = snapshot(dist)
    untouched = ["issues/i7/email.html", "issues/i0/email.html", "static/style.css", "tags/t0/index.html"]
    assert [p for p in untouched if first[p] != last[p]] == []


def test_a_one_issue_change_reuses_the_spare_tree_instead_of_making_a_new_one(newsletter):
    """The folders of untouched issues in the new dist/ are the spare's own folders (made two builds ago),
    not new ones: the rebuild wrote what changed, not a tree of a folder per issue."""
    many_issues(newsletter, 8)
    config = newsletter.load_config()
    build(config, now=NOW)
    dist = newsletter.root / "dist"
    made = inodes(dist)
    for k in (1, 2):
        newsletter.issue("i3.md", f"title: 改{k}\ndate: 2026-10-04T08:00:00\n")
        build(config, now=NOW)
    now = inodes(dist)
    assert now["issues/i7"] == made["issues/i7"] and now["issues"] == made["issues"]
    assert now["issues/i7/index.html"] == made["issues/i7/index.html"]
    assert "改2" in (dist / "issues" / "i3" / "index.html").read_text()


def test_a_spare_tree_is_never_trusted(newsletter):
    """Whatever happened to the spare since, only files that are the published ones are kept from it; a spare
    that is a link, or not marked as a build's, is neither used nor deleted."""
    many_issues(newsletter, 3)
    config = newsletter.load_config()
    build(config, now=NOW)
    newsletter.issue("i1.md", "title: 改\ndate: 2026-10-02T08:00:00\n")
    build(config, now=NOW)
    spare = newsletter.root / ".dist.spare"
    for name in ("issues/i2/index.html", "index.html"):  # one a link to dist/'s file, one an old version
        (spare / name).unlink()
        (spare / name).write_text("planted")
    (spare / "planted.html").write_text("planted")
    (spare / "issues" / "i0" / "index.html").unlink()
    (spare / "issues" / "i0" / "index.html").mkdir()  # a folder where a file goes
    newsletter.issue("i1.md", "title: 再改\ndate: 2026-10-02T08:00:00\n")
    build(config, now=NOW)
    build(config, now=NOW, output=newsletter.root / "cold", use_cache=False)
    assert tree(newsletter.root / "dist") == tree(newsletter.root / "cold")


def test_a_spare_that_is_a_link_or_not_marked_is_neither_used_nor_deleted(newsletter):
    many_issues(newsletter, 3)
    config = newsletter.load_config()
    build(config, now=NOW)
    elsewhere = newsletter.root / "elsewhere"
    (elsewhere / MARK).mkdir(parents=True)
    spare = newsletter.root / ".dist.spare"
    for k, planted in enumerate(("a link to a marked folder", "a folder without the mark")):
        if k == 0:
            spare.symlink_to(elsewhere)
        else:
            spare.mkdir()
        (spare / "keep.txt").write_text("mine")
        newsletter.issue("i1.md", f"title: 改{k}\ndate: 2026-10-02T08:00:00\n")
        build(config, now=NOW)
        assert (spare / "keep.txt").read_text() == "mine", planted
        assert sorted(p.name for p in spare.iterdir()) == ([MARK] if k == 0 else []) + ["keep.txt"], planted
        build(config, now=NOW, output=newsletter.root / "cold", use_cache=False)
        assert tree(newsletter.root / "dist") == tree(newsletter.root / "cold"), planted
        spare.unlink() if k == 0 else shutil.rmtree(spare)


# ---- one build at a time ----

HOLD = """
import sys
from pathlib import Path
from publisher.build import build_lock
with build_lock(Path(sys.argv[1]), Path(sys.argv[2])):
    sys.stdin.readline()
"""


class Holder:
    """Another process holding a build lock until `release()`: a build that is running, frozen at will."""

    def __init__(self, folder, output) -> None:  # type: ignore[no-untyped-def]
        self.lock = folder / LOCK_FILE
        self.process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(output)], cwd=REPO,
                                        stdin=subprocess.PIPE, text=True)
        self.pid = self.process.pid
        wait_for(lambda: self.named() == self.pid, what="the holder to take the build lock")

    def named(self):  # type: ignore[no-untyped-def]
        """The pid the lock file names, read without locking it (a probe that took it would be a build too)."""
        try:
            return json.loads(self.lock.read_text(encoding="utf-8")).get("pid")
        except (OSError, ValueError):  # not there yet, or being written
            return None

    def release(self) -> None:
        if self.process.poll() is None:
            self.process.communicate("\n", timeout=30)


def cli_env(cache_key):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    return env | {"PUBLISHER_NOW": NOW.isoformat(), "PUBLISHER_CACHE_KEY_FILE": str(cache_key)}


def test_a_build_waits_for_the_one_running_then_completes(newsletter, cache_key):
    """Two real `publisher build`s start while a third build holds the lock: both say they wait and for whom,
    neither touches dist/ until it is released, then both complete one after the other: dist/ and the cache
    are those of a single build."""
    many_issues(newsletter, 6)
    config = newsletter.load_config()
    build(config, now=NOW, output=newsletter.root / "single", use_cache=False)
    dist = newsletter.root / "dist"
    holder = Holder(newsletter.root / CACHE_DIR, dist)
    command = [sys.executable, "-m", "publisher", "-C", str(newsletter.root), "build"]
    builds = []
    try:
        for _ in range(2):
            process = subprocess.Popen(command, env=cli_env(cache_key), stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
            builds.append((process, Lines(process.stderr)))
        for process, err in builds:
            wait_for(lambda err=err: f"waiting for another build (pid {holder.pid})" in err.text,
                     what="the build to say that it waits")
            assert process.poll() is None
        assert not dist.exists()  # waiting, they wrote nothing
    finally:
        holder.release()
    for process, err in builds:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0, err.close()
        assert "Built 6 issues" in out and "Traceback" not in err.close()
    assert tree(dist) == tree(newsletter.root / "single")
    assert [p.name for p in newsletter.root.glob(".dist.*") if not p.name.endswith(".spare")] == []
    assert build(config, now=NOW).cache_misses == 0  # the cache the two left behind is whole


def test_a_build_gives_up_after_the_timeout_naming_the_holder(newsletter):
    newsletter.issue("2026-11-20-a.md")
    config = newsletter.load_config()
    holder = Holder(newsletter.root / CACHE_DIR, newsletter.root / "dist")
    try:
        with pytest.raises(PublisherError) as info:
            build(config, now=NOW, lock_timeout=0.2)
    finally:
        holder.release()
    assert f"another build (pid {holder.pid}) still holds" in str(info.value)
    assert not (newsletter.root / "dist").exists()
    assert build(config, now=NOW, lock_timeout=0).written > 0  # released: no wait at all


def test_the_preview_and_a_build_do_not_wait_for_each_other(newsletter):
    """The preview builds into its own output with a cache folder of its own (preview.py), so its lock is
    another one."""
    newsletter.issue("2026-11-20-a.md")
    config = newsletter.load_config()
    preview = newsletter.root / CACHE_DIR / "preview"
    holder = Holder(preview / "cache", preview / "site")  # a preview building
    try:
        assert build(config, now=NOW, lock_timeout=0).written > 0
    finally:
        holder.release()
    holder = Holder(newsletter.root / CACHE_DIR, newsletter.root / "dist")  # a build of dist/
    try:
        result = build(config, now=NOW, drafts=True, future=True, output=preview / "site",
                       cache_dir=preview / "cache", lock_timeout=0)
    finally:
        holder.release()
    assert result.written > 0
