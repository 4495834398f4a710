"""The wheel carries the built-in theme, and an installed publisher finds it there."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out)], check=True, capture_output=True, timeout=300)
    (path,) = out.glob("publisher-*.whl")
    return path


def test_wheel_contains_theme_and_entry_point(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    theme = REPO / "themes" / "default"
    expected = {f"publisher/themes/default/{p.relative_to(theme).as_posix()}" for p in theme.rglob("*") if p.is_file()}
    assert expected and expected <= names
    assert "publisher = publisher.cli:main" in entry_points


def test_installed_package_finds_its_theme(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp_path / "site")
    code = "import publisher.themes as t; print(t.builtin_theme_dir())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert result.stdout.strip() == str(tmp_path / "site" / "publisher" / "themes" / "default")
