"""What search adds to a build at N issues (default 1,000) of benchmarks/build.py's reference corpus: a cold build
and a one-issue-changed build without and with `[search] enabled`, Pagefind's own time (wall and CPU), and the
size of `pagefind/`. Run: .venv/bin/python benchmarks/search.py [N]"""

from __future__ import annotations

import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[0] = str(REPO)  # not this folder: its email.py would shadow the standard library's `email`

from benchmarks.build import make_corpus  # noqa: E402
from publisher import search  # noqa: E402
from publisher.build import build  # noqa: E402
from publisher.config import load_config  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    now = datetime(2100, 1, 1, tzinfo=UTC)
    real, walls, cpus = search.run_pagefind, [], []

    def timed(pages, language):  # type: ignore[no-untyped-def]
        before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        files = real(pages, language)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        walls.append(time.perf_counter() - started)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        return files

    search.run_pagefind = timed
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        paths = make_corpus(root, n)
        base = (root / "publisher.toml").read_text(encoding="utf-8").replace("[search]\nenabled = false\n", "")
        rows = {}
        for enabled in (False, True):
            (root / "publisher.toml").write_text(f"{base}\n[search]\nenabled = {str(enabled).lower()}\n",
                                                 encoding="utf-8")
            config = load_config(root, environ={})
            cold, changed = [], []
            for _ in range(3):
                shutil.rmtree(root / "dist", ignore_errors=True)
                shutil.rmtree(root / ".publisher-cache", ignore_errors=True)
                started = time.perf_counter()
                build(config, now=now)
                cold.append(time.perf_counter() - started)
            for k in range(3):
                victim = paths[len(paths) // 2]
                text = victim.read_text(encoding="utf-8")
                victim.write_text(f"{text}\n补充说明 {enabled} {k}。\n", encoding="utf-8")
                started = time.perf_counter()
                build(config, now=now)
                changed.append(time.perf_counter() - started)
            rows[enabled] = statistics.median(cold), statistics.median(changed)
        bundle = [p for p in (root / "dist" / "pagefind").rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in bundle)
        pages = sum(1 for _ in (root / "dist" / "pagefind" / "fragment").iterdir())
    (off_cold, off_changed), (on_cold, on_changed) = rows[False], rows[True]
    print(f"{n} issues: cold build {off_cold:.2f} s without search, {on_cold:.2f} s with; one issue changed "
          f"{off_changed:.2f} s -> {on_changed:.2f} s")
    print(f"Pagefind: {len(walls)} runs, wall median {statistics.median(walls):.2f} s (min {min(walls):.2f}), "
          f"CPU median {statistics.median(cpus):.2f} s")
    print(f"pagefind/: {len(bundle)} files, {size / 1e6:.2f} MB, {pages} pages indexed")


if __name__ == "__main__":
    main()
