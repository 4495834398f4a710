"""Writing dist/: all or nothing, unchanged files untouched, the cache, path collisions."""

from __future__ import annotations

import pytest
from conftest import NOW

from publisher.build import RenderCache, build, render
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


def test_staging_left_by_a_killed_build_is_cleaned_up(newsletter):
    newsletter.issue("2026-11-20-a.md")
    config = newsletter.load_config()
    build(config, now=NOW)
    stale = newsletter.root / ".dist.new" / "issues" / "zombie"
    stale.mkdir(parents=True)
    (stale / "index.html").write_text("half")
    newsletter.issue("2026-11-21-b.md", "title: B\ndate: 2026-11-21\n")
    build(config, now=NOW)
    assert not (newsletter.root / ".dist.new").exists()
    assert not (newsletter.root / "dist" / "issues" / "zombie").exists()
    assert (newsletter.root / "dist" / "issues" / "b" / "index.html").exists()


def test_unchanged_build_touches_nothing(newsletter):
    newsletter.issue("2026-11-20-a.md")
    config = newsletter.load_config()
    build(config, now=NOW)
    dist = newsletter.root / "dist"
    before = dist.stat().st_mtime_ns
    build(config, now=NOW)
    assert dist.stat().st_mtime_ns == before and not (newsletter.root / ".dist.new").exists()
