"""The command line: init, new, build, check, -C, exit statuses, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys

import frontmatter
from conftest import NOW, REPO

from publisher.content import load_issues


def test_init_then_build(tmp_path, run_cli):
    result = run_cli("-C", str(tmp_path), "init", "letter", "--title", "周报", "--timezone", "Asia/Shanghai",
                     "--language", "zh-CN")
    assert result.exit_code == 0, result.output
    root = tmp_path / "letter"
    assert {p.name for p in root.iterdir()} == {"publisher.toml", "content", ".gitignore"}
    result = run_cli("-C", str(root), "build")
    assert result.exit_code == 0, result.stderr
    assert "Built 0 issues " in result.stdout and "1 draft (use --drafts)" in result.stdout and "dist/" in result.stdout
    assert (root / "dist" / "index.html").read_text().count('class="issue-item"') == 0  # the placeholder is a draft
    again = run_cli("-C", str(tmp_path), "init", "letter")
    assert again.exit_code == 1 and "already exists" in again.stderr


def test_init_rejects_bad_values_before_writing(tmp_path, run_cli):
    result = run_cli("-C", str(tmp_path), "init", "x", "--url", "not-a-url")
    assert result.exit_code == 1 and "site.url must be an absolute http(s) URL" in result.stderr
    assert not (tmp_path / "x" / "publisher.toml").exists()


def test_new_issue_with_chinese_title(newsletter, run_cli):
    result = run_cli("-C", str(newsletter.root), "new", "AI 日报：周四 \"特别\" 版")
    assert result.exit_code == 0, result.stderr
    (path,) = newsletter.content.glob("*.md")
    assert path.name == "2026-11-26.md"  # the date in the site's time zone
    post = frontmatter.loads(path.read_text(encoding="utf-8"))
    assert post["title"] == 'AI 日报：周四 "特别" 版'
    assert post["slug"] == "2026-11-26" and post["draft"] is True
    (issue,) = load_issues(newsletter.load_config())
    assert issue.date.isoformat() == "2026-11-26T20:00:00+08:00"  # NOW (12:00 UTC) in Shanghai
    second = run_cli("-C", str(newsletter.root), "new", "再来一期")
    assert second.exit_code == 0
    assert {i.slug for i in load_issues(newsletter.load_config())} == {"2026-11-26", "2026-11-26-2"}


def test_new_issue_slug_options(newsletter, run_cli):
    assert run_cli("-C", str(newsletter.root), "new", "Weekly Roundup #12").exit_code == 0
    assert (newsletter.content / "2026-11-26-weekly-roundup-12.md").exists()
    assert run_cli("-C", str(newsletter.root), "new", "中文", "--slug", "special").exit_code == 0
    assert (newsletter.content / "2026-11-26-special.md").exists()
    bad = run_cli("-C", str(newsletter.root), "new", "中文", "--slug", "../evil")
    assert bad.exit_code == 1 and "--slug" in bad.stderr


def test_build_flags(newsletter, run_cli):
    newsletter.issue("a.md", "title: A\ndate: 2026-11-20\n")
    newsletter.issue("d.md", "title: D\ndate: 2026-11-20\ndraft: true\n")
    newsletter.issue("f.md", "title: F\ndate: 2030-01-01\n")
    result = run_cli("-C", str(newsletter.root), "build")
    assert "Built 1 issue " in result.stdout
    assert "1 draft (use --drafts) and 1 scheduled issue (use --future)" in result.stdout
    out = newsletter.root / "elsewhere"
    result = run_cli("-C", str(newsletter.root), "build", "--drafts", "--future", "--output", str(out))
    assert result.exit_code == 0 and "Built 3 issues" in result.stdout
    assert {p.name for p in (out / "issues").iterdir()} == {"a", "d", "f"}


def test_check_reports_ok_and_writes_nothing(newsletter, run_cli):
    newsletter.issue("a.md")
    result = run_cli("-C", str(newsletter.root), "check")
    assert result.exit_code == 0 and "OK: 1 issue " in result.stdout
    assert not (newsletter.root / "dist").exists()


def test_missing_config_is_exit_1(tmp_path, run_cli):
    result = run_cli("-C", str(tmp_path), "build")
    assert result.exit_code == 1 and "no publisher.toml" in result.stderr


def test_bad_usage_is_exit_2(run_cli):
    assert run_cli("build", "--no-such-flag").exit_code == 2
    assert run_cli("-C", "/no/such/dir", "build").exit_code == 2


def _run(*args, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env["PUBLISHER_NOW"] = NOW.isoformat()
    return subprocess.run([sys.executable, "-m", "publisher", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=60)


def test_python_dash_m_builds_the_sample_from_anywhere(tmp_path):
    out = tmp_path / "out"
    result = _run("-C", str(REPO), "build", "--output", str(out), "--no-cache", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Built 5 issues" in result.stdout
    assert (out / "issues" / "coding-agents" / "index.html").exists()


def test_user_error_in_a_real_process_has_no_traceback(newsletter):
    newsletter.issue("bad.md", raw=b"---\ntitle: x\ndate: 2026-99-99\n---\n")
    result = _run("check", cwd=newsletter.root)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: content/bad.md:3: date:")
