"""Fixtures: small newsletter folders in tmp_path, the repository's sample newsletter, a CLI runner."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))  # helper modules such as feedcheck

REPO = Path(__file__).resolve().parent.parent
# A fixed clock: after every sample issue except the scheduled one (2027-06-01).
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

# Search is on by default; it costs a Pagefind run per build, so the small newsletters of tests that are not about
# search turn it off (a root-level inline table, so that tests can append keys to [site]).
CONFIG = """\
search = { enabled = false }
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


def build_in_new_processes(root: Path, modules: Sequence[str], runs: int = 2) -> list[tuple[list[str], list[str]]]:
    """`publisher -q build` in `root`, in `runs` new interpreters one after the other (as a user runs it, with the
    clock pinned and no input "racily clean": `manifest.SETTLE_NS` off): for each, which of `modules` were loaded
    once `publisher.cli` was imported, and once the build was done."""
    import json
    import os
    import subprocess

    code = ("import json, sys; from publisher import manifest; manifest.SETTLE_NS = -10**18\n"
            f"watch = {list(modules)!r}\n"
            "import publisher.cli\nloaded = [m for m in watch if m in sys.modules]\n"
            "sys.argv = ['publisher', '-q', 'build']\n"
            "try:\n    publisher.cli.main()\nexcept SystemExit:\n    pass\n"
            "print(json.dumps([loaded, [m for m in watch if m in sys.modules]]))")
    env = dict(os.environ, PUBLISHER_NOW=NOW.isoformat(), PYTHONPATH=str(REPO))
    found = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                              check=True)
        before, after = json.loads(done.stdout.strip().splitlines()[-1])
        found.append((before, after))
    return found


def free_port() -> int:
    """A port free on 127.0.0.1 now (for servers that cannot bind port 0 themselves)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_in_thread(settings):  # type: ignore[no-untyped-def]
    """Run a real uvicorn server for `settings` (a uvicorn.Config) on a thread; returns (server, thread) once it
    listens. Stop it with `server.should_exit = True; thread.join()`."""
    import threading

    import uvicorn
    from waiting import wait_for

    server = uvicorn.Server(settings)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="uvicorn to start")
    return server, thread


@pytest.fixture(scope="session", autouse=True)
def cache_key_outside_home(tmp_path_factory: pytest.TempPathFactory):
    """The render cache's key (made on first use) goes to a temp folder, not the real ~/.cache/publisher/."""
    import os

    key = tmp_path_factory.mktemp("cache-key") / "cache-key"
    before = os.environ.get("PUBLISHER_CACHE_KEY_FILE")
    os.environ.setdefault("PUBLISHER_CACHE_KEY_FILE", str(key))
    yield
    if before is None:
        os.environ.pop("PUBLISHER_CACHE_KEY_FILE", None)


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


@pytest.fixture(scope="session")
def moto_server():
    """A real moto server (S3, SES, SQS, CloudFront over HTTP) on 127.0.0.1, one per test process."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_server, monkeypatch):
    """The standard AWS environment pointed at the moto server, with throwaway credentials."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    return moto_server


@pytest.fixture
def bucket(aws):
    """A new, empty S3 bucket on the moto server (a DNS-valid name)."""
    import uuid

    import boto3

    name = f"news-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


class Inbox:
    """What a real aiosmtpd server received: (envelope sender, recipients, raw message bytes)."""

    def __init__(self) -> None:
        import threading

        self.messages: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on 127.0.0.1; yields (port, inbox)."""
    from aiosmtpd.controller import Controller

    port = free_port()  # Controller cannot take port 0: pick a free port first
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


@pytest.fixture
def moto_ses_sent(moto_server):
    """A function returning the messages the moto server's SES "sent" to addresses at a domain."""
    import json
    import urllib.request

    def sent(domain: str) -> list[dict]:
        with urllib.request.urlopen(f"{moto_server}/moto-api/data.json") as response:
            data = json.load(response)
        return [item for item in data.get("ses", {}).get("RawMessage", [])
                if any(d.endswith("@" + domain) for d in item.get("destinations", []))]

    return sent


@contextmanager
def atomic_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The moto server's state behind a second endpoint that handles one request at a time (AWS_ENDPOINT_URL points
    there meanwhile). DynamoDB applies each write to an item atomically (the condition is checked and the write
    made as one step); the shared moto server does not (two threads may pass the same condition), so concurrency
    tests talk to this one, where the clients still interleave freely between requests, as two processes do."""
    import threading

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app, lock = DomainDispatcherApplication(create_backend_app), threading.Lock()

    def atomic(environ, start_response):  # type: ignore[no-untyped-def]
        with lock:
            return list(app(environ, start_response))

    server = make_server("127.0.0.1", 0, atomic, True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    try:
        yield url
    finally:
        server.shutdown()
        thread.join()
