"""Start-up: the CLI module loads only click and a few small modules, so `--version`, `--help` and a typo
answer at once; each command imports what it needs when it runs (timing lives in benchmarks/, not here)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("jinja2", "mjml", "lxml", "boto3", "botocore", "starlette", "uvicorn", "css_inline", "yaml", "frontmatter",
         "markdown_it_pyrs", "feedgen", "email_validator", "watchfiles", "rich", "publisher.config",
         "publisher.content", "publisher.build", "publisher.emails")


def loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_importing_the_cli_loads_nothing_heavy():
    loaded = loaded_after("import publisher.cli")
    assert {m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY} == set()


def test_version_and_help_load_nothing_heavy():
    for args in (["--version"], ["--help"], ["build", "--help"]):
        code = ("import sys\nfrom publisher.cli import cli\n"
                f"try:\n    cli.main({args!r}, standalone_mode=False)\nexcept SystemExit:\n    pass")
        loaded = loaded_after(code)
        assert {m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY} == set(), args


def test_a_command_still_finds_what_it_imports_lazily(run_cli, newsletter):
    newsletter.issue("2026-11-20-a.md")
    assert run_cli("-C", str(newsletter.root), "build").exit_code == 0
    assert run_cli("-C", str(newsletter.root), "list").exit_code == 0
