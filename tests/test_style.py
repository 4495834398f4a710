"""The code is ruff clean (the project's lint rules are in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_ruff_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "publisher", "tests", "benchmarks"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
