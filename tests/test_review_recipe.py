"""The GitHub Actions recipe deploy/github-actions/review.yml, checked as the other recipes are (tests/test_recipes.py):
its YAML, and its shell steps run as GitHub runs them (bash -e -o pipefail) against stand-ins for `publisher` and
`gh` (which answers from a folder standing in for the pull request's comments, through the real `jq`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO
from test_recipes import find_step, steps_of

WORKFLOW = REPO / "deploy" / "github-actions" / "review.yml"
MARKER = "<!-- publisher-review -->"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def test_workflow_reviews_pull_requests_touching_content(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert list(triggers) == ["pull_request"] and triggers["pull_request"]["paths"] == ["content/**"]
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert workflow["concurrency"]["cancel-in-progress"] is True
    assert "pull_request.number" in workflow["concurrency"]["group"]
    steps = steps_of(workflow)
    checkout = steps[find_step(steps, r"^ actions/checkout@v4$")]
    assert checkout["with"]["fetch-depth"] == 0, "--changed-since needs the base branch's history"
    install = find_step(steps, r"pip install")
    assert "spamassassin" in steps[install]["run"] and "playwright" in steps[install]["run"]
    review = find_step(steps, r"^\s*publisher\b.* review\b")
    assert re.search(r'--changed-since "origin/\$\{BASE_REF:-main\}"', steps[review]["run"])
    assert steps[review]["id"] == "review"
    upload = find_step(steps, r"^ actions/upload-artifact@v4$")
    assert steps[upload]["with"]["path"].startswith("${{ env.REVIEW_DIR }}")
    comment = find_step(steps, r"gh api")
    gate = find_step(steps, r'exit "\$STATUS"')
    assert install < review < upload < comment < gate == len(steps) - 1
    for later in (upload, comment, gate):
        assert "steps.review.outcome == 'success'" in steps[later]["if"] and "!cancelled()" in steps[later]["if"]
    assert steps[comment]["env"]["GH_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"
    assert steps[gate]["env"]["STATUS"] == "${{ steps.review.outputs.status }}"
    assert not re.search(r"AKIA[0-9A-Z]{16}|-----BEGIN", WORKFLOW.read_text(encoding="utf-8"))
    for step in steps:  # a secret reaches a step only through env, never expanded into a script
        assert "secrets." not in step.get("run", "") and "${{" not in step.get("run", ""), step.get("name")
        if "run" in step:
            check = subprocess.run(["bash", "-n"], input=step["run"], capture_output=True, text=True, timeout=10)
            assert check.returncode == 0, f"{step.get('name')}: {check.stderr}"


@pytest.fixture
def stand_ins(tmp_path):
    """`publisher` (writes a report into --out, exits with $STANDIN_STATUS) and `gh api` (the comments of one pull
    request in comments.json; --jq through the real jq where it is installed, else the one filter the workflow
    uses, done in Python) on PATH; each records its calls."""
    jq = shutil.which("jq") or ""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "publisher").write_text(f"""#!{sys.executable}
import os, sys
from pathlib import Path
args = sys.argv[1:]
with open({str(tmp_path / "publisher-calls.txt")!r}, "a") as log:
    log.write(" ".join(args) + "\\n")
status = int(os.environ.get("STANDIN_STATUS", "0"))
if status != 99:  # 99: a review that could not run (no report)
    out = Path(args[args.index("--out") + 1])
    (out / "screens").mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text("# publisher review: verdict " + str(status) + "\\n")
    (out / "screens" / "a-page-375.png").write_bytes(b"png")
print("# report on stdout")
sys.exit(1 if status == 99 else status)
""")
    (bin_dir / "gh").write_text(f"""#!{sys.executable}
import json, subprocess, sys
from pathlib import Path
store = Path({str(tmp_path / "comments.json")!r})
args = sys.argv[1:]
with open({str(tmp_path / "gh-calls.txt")!r}, "a") as log:
    log.write(" ".join(args) + "\\n")
assert args[0] == "api", args
comments = json.loads(store.read_text()) if store.exists() else []
method = args[args.index("--method") + 1] if "--method" in args else "GET"
path = [a for a in args[1:] if a.startswith("repos/")][0]
if method == "GET":
    assert path == "repos/owner/news/issues/7/comments", path
    data = json.dumps(comments)
    if "--jq" in args and {jq!r}:
        sys.stdout.write(subprocess.run([{jq!r}, "-r", args[args.index("--jq") + 1]], input=data, text=True,
                                        capture_output=True, check=True).stdout)
    elif "--jq" in args:
        expected = '.[] | select(.body | startswith("{MARKER}")) | .id'
        assert args[args.index("--jq") + 1] == expected, args
        print("".join(f"{{c['id']}}\\n" for c in comments if c["body"].startswith("{MARKER}")), end="")
    else:
        print(data)
    sys.exit(0)
field = args[args.index("-F") + 1]
assert field.startswith("body=@"), field
body = Path(field[6:]).read_text()
if method == "POST":
    assert path == "repos/owner/news/issues/7/comments", path
    comments.append({{"id": 100 + len(comments), "body": body}})
else:
    assert method == "PATCH", method
    number = int(path.rsplit("/", 1)[1])
    (comment,) = [c for c in comments if c["id"] == number]
    comment["body"] = body
store.write_text(json.dumps(comments))
print("{{}}")
""")
    for name in ("publisher", "gh"):
        (bin_dir / name).chmod(0o755)
    return bin_dir


def run_step(step: dict[str, Any], tmp_path: Path, bin_dir: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """A step's `run` script as GitHub runs it on Linux (bash -e -o pipefail), with the workflow's and the step's
    env (their expressions replaced by what GitHub would put there)."""
    script = tmp_path / "step.sh"
    script.write_text(step["run"])
    values = {"${{ secrets.GITHUB_TOKEN }}": "not-a-token", "${{ github.event.pull_request.number }}": "7",
              "${{ github.repository }}": "owner/news", "${{ github.base_ref }}": "main",
              "${{ github.server_url }}/${{ github.repository }}/actions/runs/${{ github.run_id }}":
                  "https://github.example/owner/news/actions/runs/1",
              "${{ vars.PUBLISHER_PACKAGE || '.' }}": "."}
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "NEWSLETTER_DIR": str(tmp_path / "nl"), "REVIEW_DIR": "publisher-review",
           "GITHUB_OUTPUT": str(tmp_path / "github-output.txt"), "RUNNER_TEMP": str(tmp_path / "runner-temp"),
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    for key, value in step.get("env", {}).items():
        env[key] = values.get(value, value)
    env.update(extra)
    (tmp_path / "runner-temp").mkdir(exist_ok=True)
    (tmp_path / "workspace").mkdir(exist_ok=True)
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], env=env,
                          cwd=tmp_path / "workspace", capture_output=True, text=True, timeout=30)


def outputs(tmp_path: Path) -> dict[str, str]:
    text = (tmp_path / "github-output.txt").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_review_comment_and_gate_steps_against_stand_ins(workflow, stand_ins, tmp_path):
    steps = steps_of(workflow)
    review, comment, gate = (steps[find_step(steps, p)] for p in (r"review --changed-since", r"gh api",
                                                                 r'exit "\$STATUS"'))
    workspace = tmp_path / "workspace"

    # A review with errors: the step itself succeeds (so the report is uploaded and commented), the status is kept.
    result = run_step(review, tmp_path, stand_ins, STANDIN_STATUS="1")
    assert result.returncode == 0, result.stderr
    assert outputs(tmp_path)["status"] == "1"
    call = (tmp_path / "publisher-calls.txt").read_text().splitlines()[-1]
    assert call == (f"-C {tmp_path / 'nl'} review --changed-since origin/main --out publisher-review "
                    "--format markdown")
    assert (workspace / "publisher-review" / "report.md").is_file()
    assert "verdict 1" in (tmp_path / "summary.md").read_text()

    # The first comment is posted, with the marker it is found again by.
    result = run_step(comment, tmp_path, stand_ins)
    assert result.returncode == 0, result.stderr
    (posted,) = json.loads((tmp_path / "comments.json").read_text())
    assert posted["body"].startswith(MARKER + "\n# publisher review: verdict 1")
    assert "https://github.example/owner/news/actions/runs/1" in posted["body"]

    # The gate fails the job with the review's status.
    gated = run_step(gate, tmp_path, stand_ins, STATUS="1")
    assert gated.returncode == 1 and "::error::" in gated.stdout

    # The next push: the same comment is edited, not a second one posted (another bot's comment is left alone).
    comments = json.loads((tmp_path / "comments.json").read_text())
    (tmp_path / "comments.json").write_text(json.dumps([{"id": 5, "body": "LGTM"}, *comments]))
    (tmp_path / "github-output.txt").unlink()
    assert run_step(review, tmp_path, stand_ins, STANDIN_STATUS="0").returncode == 0
    assert outputs(tmp_path)["status"] == "0"
    result = run_step(comment, tmp_path, stand_ins)
    assert result.returncode == 0 and "updated comment 100" in result.stdout, result.stderr
    comments = json.loads((tmp_path / "comments.json").read_text())
    assert [c["id"] for c in comments] == [5, 100] and comments[0]["body"] == "LGTM"
    assert "verdict 0" in comments[1]["body"]
    assert run_step(gate, tmp_path, stand_ins, STATUS="0").returncode == 0

    # A review that made no report fails its own step (and the later steps are skipped by their `if`).
    (workspace / "publisher-review" / "report.md").unlink()
    result = run_step(review, tmp_path, stand_ins, STANDIN_STATUS="99")
    assert result.returncode == 1 and "made no report" in result.stdout
