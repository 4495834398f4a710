"""Large imports report their progress (the CLI shows it as a bar on a terminal, after a second)."""

from __future__ import annotations

from publisher.importers import writer
from publisher.subscribers import SqliteStore, Subscriber


def test_writing_issues_reports_each_post_and_ends_at_the_total(newsletter):
    posts = [writer.Post(key=str(n), title=f"第 {n} 期", date_text=f"2026-01-{n + 1:02d}T08:00:00+08:00",
                         link=None, html=f"<p>正文 {n}</p>") for n in range(12)]
    seen: list[tuple[int, int]] = []
    report = writer.write_issues(newsletter.load_config(), posts, writer.IssueReport("test"),
                                 progress=lambda done, total: seen.append((done, total)))
    assert len(report.written) == 12
    assert seen[-1] == (12, 12) and [d for d, _ in seen] == sorted(d for d, _ in seen) and {t for _, t in seen} == {12}


def test_storing_subscribers_reports_progress_in_one_transaction(tmp_path):
    imported = writer.Imported("test")
    for n in range(2500):
        imported.add(Subscriber(f"reader{n}@example.org", f"读者 {n}", "active"), f"list.csv:{n + 2}", "active")
    store = SqliteStore(tmp_path / "subscribers.db")
    seen: list[tuple[int, int]] = []
    report = writer.store(imported, store, progress=lambda done, total: seen.append((done, total)))
    assert report.verdicts == {"added": 2500} and store.count("active") == 2500
    assert seen == [(0, 2500), (1000, 2500), (2000, 2500), (2500, 2500)]
    store.close()
