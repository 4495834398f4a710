"""The README's first screen: two set-up commands, CI runs the test one as written, and the main job works."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

from conftest import REPO


def first_block(text: str) -> list[str]:
    block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def readme_commands() -> tuple[str, str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme.index("```sh") < 800  # on the first screen
    commands = first_block(readme)
    assert len(commands) == 2
    return commands[0], commands[1]


def test_readme_opens_with_exactly_two_commands_and_ci_runs_the_test_one():
    main, test = readme_commands()
    assert "publisher publish" in main and "pytest" in test
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert test in ci.splitlines()


def test_the_main_job_runs_on_the_sample_as_the_readme_says(tmp_path):
    """The first command without the venv set-up (this test already runs in it), in a copy of the sample."""
    main, _ = readme_commands()
    steps = main.split(" && ")[2:]  # after `python3 -m venv .venv` and `pip install -e .`
    root = tmp_path / "sample"
    root.mkdir()
    for name in ("content", "publisher.toml", "sample-subscribers.csv"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, root / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUBLISHER_")}
    env["PUBLISHER_NOW"] = "2026-11-26T12:00:00+08:00"
    for step in steps:
        words = shlex.split(step)
        while "=" in words[0] and not words[0].startswith("."):  # VAR=value prefixes
            key, value = words.pop(0).split("=", 1)
            env[key] = value
        assert words[0] == ".venv/bin/publisher"
        result = subprocess.run([sys.executable, "-m", "publisher", *words[1:]], cwd=root, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    assert (root / "public" / "index.html").exists() and (root / "dist" / "rss.xml").exists()
    issues = {p.name for p in (root / "outbox").iterdir()}
    assert issues == {"agents-and-evals", "coding-agents", "multimodal-weekend", "open-weights-week"}  # not send: false
    for issue in issues:
        assert len(list((root / "outbox" / issue).glob("*.eml"))) == 4  # the 4 active sample subscribers
    again = subprocess.run([sys.executable, "-m", "publisher", "publish", "--due"], cwd=root, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.strip() == "Nothing due."
