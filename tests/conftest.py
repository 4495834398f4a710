"""Fixtures: small newsletter folders in tmp_path, the repository's sample newsletter, a CLI runner."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))  # helper modules such as feedcheck

REPO = Path(__file__).resolve().parent.parent
# A fixed clock: after every sample issue except the scheduled one (2027-06-01).
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

CONFIG = """\
[site]
title = "AI 日报"
url = "https://news.example.com/daily/"
description = "每日 AI 要闻"
language = "zh-CN"
timezone = "Asia/Shanghai"
author = "编辑部"
author_email = "editor@news.example.com"
"""


class Newsletter:
    """A newsletter folder under tmp_path with helpers to write issues."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.content = root / "content"
        self.content.mkdir(parents=True, exist_ok=True)

    def config(self, text: str = CONFIG) -> Path:
        path = self.root / "publisher.toml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def issue(self, name: str, frontmatter: str | None = None, body: str = "正文第一段。\n", *,
              raw: bytes | None = None) -> Path:
        path = self.content / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if raw is not None:
            path.write_bytes(raw)
        else:
            fm = textwrap.dedent(frontmatter or 'title: "标题"\ndate: 2026-11-20\n').strip("\n")
            path.write_text(f"---\n{fm}\n---\n\n{textwrap.dedent(body)}", encoding="utf-8")
        return path

    def load_config(self):  # type: ignore[no-untyped-def]
        from publisher.config import load_config

        return load_config(self.root, environ={})


@pytest.fixture
def newsletter(tmp_path: Path) -> Newsletter:
    n = Newsletter(tmp_path / "news")
    n.config()
    return n


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., object]:
    """Run the CLI in-process with a fixed clock; returns click's Result (exit_code, stdout, stderr)."""
    from publisher.cli import cli

    monkeypatch.setenv("PUBLISHER_NOW", NOW.isoformat())
    for name in list(__import__("os").environ):
        if name.startswith("PUBLISHER_") and name != "PUBLISHER_NOW":
            monkeypatch.delenv(name)

    def run(*args: str) -> object:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return run


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's sample newsletter built once (published issues only) into a temp folder."""
    from publisher.build import build
    from publisher.config import load_config

    out = tmp_path_factory.mktemp("sample") / "dist"
    config = load_config(REPO, environ={})
    build(config, now=NOW, output=out, use_cache=False)
    return out
