"""`publisher review` on the command line: what it prints, the files it writes, its exit status (0 OK, 0 warnings,
1 errors, 1 warnings with --strict, 2 bad usage)."""

from __future__ import annotations

import json

import pytest
from test_review import BODY, CLEAN

from publisher.cli import cli

pytestmark = pytest.mark.skipif("review" not in cli.commands, reason="the `review` command is not in cli.py yet")

FAST = ("--offline", "--no-screenshots", "--no-spam")


@pytest.fixture
def clean(newsletter):
    newsletter.config(CLEAN)
    return newsletter


def test_review_prints_markdown_writes_the_reports_and_exits_0(clean, run_cli, tmp_path):
    clean.issue("2026-11-20-a.md", 'title: "好"\ndate: 2026-11-20\n', BODY)
    out = tmp_path / "r"
    result = run_cli("-C", str(clean.root), "review", "a", "--out", str(out), *FAST)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("# publisher review: ✅ OK")
    assert "review: ok (1 issue)" in result.stderr
    assert {p.name for p in out.iterdir()} >= {"report.html", "report.md", "report.json", "a.eml"}
    as_json = run_cli("-C", str(clean.root), "review", "a", "--out", str(out), "--format", "json", *FAST)
    data = json.loads(as_json.stdout)
    assert data["verdict"] == "ok" and data["issues"][0]["slug"] == "a"
    as_html = run_cli("-C", str(clean.root), "review", "a", "--out", str(out), "--format", "html", *FAST)
    assert as_html.stdout.startswith("<!DOCTYPE html>")


def test_review_exit_status_for_warnings_strict_and_errors(clean, run_cli, tmp_path):
    clean.issue("2026-11-21-w.md", 'title: "空节"\ndate: 2026-11-21\n',
                "第一段。\n\n## 空的一节\n\n## 下一节\n\n内容。\n")
    clean.issue("2026-11-22-e.md", 'title: "坏锚"\ndate: 2026-11-22\n', "第一段 [x](#nowhere)。\n")
    root, out = str(clean.root), str(tmp_path / "r")
    assert run_cli("-C", root, "review", "w", "--out", out, *FAST).exit_code == 0
    assert run_cli("-C", root, "review", "w", "--out", out, "--strict", *FAST).exit_code == 1
    errors = run_cli("-C", root, "review", "e", "--out", out, *FAST)
    assert errors.exit_code == 1 and "#nowhere" in errors.stdout and "Traceback" not in errors.stderr


def test_review_bad_usage_and_unknown_slug(clean, run_cli, tmp_path):
    clean.issue("2026-11-20-a.md")
    root, out = str(clean.root), str(tmp_path / "r")
    assert run_cli("-C", root, "review", "a", "--changed-since", "HEAD", "--out", out).exit_code == 2
    unknown = run_cli("-C", root, "review", "nope", "--out", out, *FAST)
    assert unknown.exit_code == 1 and "no issue has the slug" in unknown.stderr
