"""External tools the tests drive (Chromium, SpamAssassin, node, systemd-analyze...): in CI a missing tool is a
failure, never a silent skip (`.ci/run` installs each one); on a developer's machine it is a skip that says how
to install it."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

IN_CI = os.environ.get("CI") == "true"


def require(available: bool, what: str, how: str) -> None:
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing: .ci/run must install it ({how})")
    pytest.skip(f"{what} is missing ({how}); CI installs it")


def require_command(name: str, how: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"the command {name}", how)
    return path  # type: ignore[return-value]


def require_module(name: str, how: str = "pip install -e '.[test]'") -> None:
    require(importlib.util.find_spec(name) is not None, f"the Python module {name}", how)
