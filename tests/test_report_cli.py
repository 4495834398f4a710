"""`publisher report [SLUG] [--json] [--html FILE]`: the thin CLI layer over publisher/report.py (the numbers
themselves are proved in test_report.py)."""

from __future__ import annotations

import json

from conftest import NOW
from test_report import DAY, JSON_KEYS, SECRET, at, setup

from publisher.sending import send_issue


def test_report_text_json_and_html(newsletter, monkeypatch, run_cli, tmp_path):
    config = setup(newsletter, active=5)
    at(monkeypatch, "08:00:00")
    send_issue(config, "daily", now=NOW, secret=SECRET)
    root = str(newsletter.root)

    text = run_cli("-C", root, "report")  # the most recently sent issue
    assert text.exit_code == 0, text.stderr
    assert "daily: AI 日报：第一期" in text.stdout and "recipients 5: 5 sent, 0 failed" in text.stdout

    as_json = run_cli("-C", root, "report", "daily", "--json", "--html", str(tmp_path / "r.html"))
    assert as_json.exit_code == 0, as_json.stderr
    data = json.loads(as_json.stdout)  # only the JSON on stdout, even with --html
    assert set(data) == JSON_KEYS and data["sent"] == 5 and data["started_at"] == f"{DAY}08:00:00+00:00"
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and 'id="sent-chart"' in page and "No open or click tracking" in page


def test_report_errors_are_one_line(newsletter, monkeypatch, run_cli):
    setup(newsletter, active=2)
    nothing = run_cli("-C", str(newsletter.root), "report")
    assert nothing.exit_code == 1 and "no issue has been sent yet" in nothing.stderr
    at(monkeypatch, "08:00:00")
    send_issue(newsletter.load_config(), "daily", now=NOW, secret=SECRET)
    unknown = run_cli("-C", str(newsletter.root), "report", "second")
    assert unknown.exit_code == 1 and "second has not been sent" in unknown.stderr
    assert "Traceback" not in unknown.stderr + nothing.stderr
