"""The README's first screen: two set-up commands, and CI runs the test command exactly as written."""

from __future__ import annotations

import re

from conftest import REPO


def first_block(text: str) -> list[str]:
    block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_opens_with_exactly_two_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme.index("```sh") < 800  # on the first screen
    commands = first_block(readme)
    assert len(commands) == 2
    build, test = commands
    assert "publisher build" in build and "pytest" in test
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert test in ci.splitlines()
