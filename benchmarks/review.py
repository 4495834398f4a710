"""`publisher review` speed: one 13 KB issue with 150 links, every link answered by a local HTTP server.

    python benchmarks/review.py [--links N] [--runs R]

Writes a newsletter in a temporary folder with one issue of about 13 KB holding N links (default 150) to a local
server: most answer 200, some redirect twice, some answer 404, some refuse HEAD (405, then GET). Then reviews it
R times (default 3) in full (site rendered in memory, five Chromium screenshots, SpamAssassin when installed,
every link checked 8 at a time) and prints the wall time of each run and of its parts. Target: under 10 s on 2
cores. Prints figures; asserts nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# benchmarks/email.py would shadow the standard library's `email` package (which http.server imports): this
# folder must not stand first on sys.path.
sys.path[0] = str(REPO)

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

from publisher import review  # noqa: E402
from publisher.config import load_config  # noqa: E402

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CONFIG = """\
search = { enabled = false }
[site]
title = "AI 日报"
url = "https://news.example.com/"
language = "zh-CN"
timezone = "Asia/Shanghai"
author = "编辑部"
author_email = "editor@news.example.com"
[email]
postal_address = "编辑部 · 上海市徐汇区 1 号"
"""


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # type: ignore[no-untyped-def]
        pass

    def answer(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/r/"):
            self.send_response(301)
            self.send_header("Location", "/r2" + path[2:])
        elif path.startswith("/r2/"):
            self.send_response(302)
            self.send_header("Location", "/ok" + path[3:])
        elif path.startswith("/gone/"):
            self.send_response(404)
        elif path.startswith("/get/"):
            self.send_response(405 if self.command == "HEAD" else 200)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET = answer  # noqa: N815 (http.server's names)


def issue_text(base: str, links: int) -> str:
    kinds = ["ok"] * 7 + ["r", "gone", "get"]
    lines = ["---", 'title: "AI 日报：150 个链接的一期"', "date: 2026-11-20 08:00", "tags: [大模型]", "---", "",
             "本期汇总了一周之内值得一读的新闻、论文与开源项目，每一条都附上原文链接，方便读者深入阅读。", ""]
    for n in range(links):
        if n % 15 == 0:
            lines += ["", f"## 第 {n // 15 + 1} 部分", ""]
        kind = kinds[n % len(kinds)]
        lines.append(f"- **条目 {n}**：新模型与评测，见 [原文]({base}/{kind}/{n})。")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--links", type=int, default=150)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    folder = Path(tempfile.mkdtemp(prefix="review-bench-"))
    try:
        (folder / "content").mkdir()
        (folder / "publisher.toml").write_text(CONFIG, encoding="utf-8")
        text = issue_text(base, args.links)
        (folder / "content" / "2026-11-20-links.md").write_text(text, encoding="utf-8")
        config = load_config(folder, environ={})
        spamassassin = shutil.which("spamassassin") or "missing"
        print(f"issue: {len(text.encode()) / 1024:.1f} KB, {args.links} links; {os.cpu_count()} cores; "
              f"Chromium: {review.chromium_path() or 'missing'}; spamassassin: {spamassassin}")
        totals = []
        for run in range(args.runs):
            started = time.perf_counter()
            result = review.review(config, review.Options(slugs=["links"], out=folder / "review"), now=NOW)
            total = time.perf_counter() - started
            totals.append(total)
            (item,) = result.issues
            levels = {level: sum(1 for link in item.links if link.level == level) for level in ("ok", "error")}
            print(f"run {run + 1}: {total:.2f} s  verdict {result.verdict}, {len(item.links)} links "
                  f"({levels['ok']} ok, {levels['error']} broken, {sum(1 for k in item.links if k.chain)} redirected), "
                  f"{len(item.shots)} screenshots, spam {item.spam.score}")
        urls = [f"{base}/{kind}/{n}" for n, kind in enumerate(["ok", "r", "gone", "get"] * (args.links // 4))]
        started = time.perf_counter()
        review.check_links(urls)
        links_only = time.perf_counter() - started
        started = time.perf_counter()
        review.review(config, review.Options(slugs=["links"], out=folder / "review", offline=True, spam=False,
                                             screenshots=False), now=NOW)
        render_only = time.perf_counter() - started
        print(f"parts: links alone {links_only:.2f} s; render + checks without network, browser or "
              f"SpamAssassin {render_only:.2f} s")
        print(f"review of one issue: median {statistics.median(totals):.2f} s, best {min(totals):.2f} s "
              f"(target: under 10 s on 2 cores)")
    finally:
        server.shutdown()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
