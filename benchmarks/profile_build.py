"""Where a build's time goes: cProfile of in-process builds on a generated corpus (benchmarks/build.py).

    python benchmarks/profile_build.py [N] [--shape linky|reference] [--top 25] [--sort cumulative]
                                       [--parallel] [--builds full nochange changed]

Makes N issues of the shape (default 1,000 linky), then profiles, in this order: a full build (empty cache and
dist/), a no-change build, and a build after the newest issue (the one in every feed) changed; prints the
top `--top` functions of each by `--sort` time. The full build renders in this process (`workers=1`) so that
the profile sees the rendering; `--parallel` keeps publisher's render workers (their time is then not in the
profile, only the waiting for them). In-process: no interpreter start-up or imports (run.py times those).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import pstats
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[0] = str(BENCH.parent)  # not this folder: its email.py would shadow the standard library's `email`

import publisher  # noqa: E402
from publisher.build import build  # noqa: E402
from publisher.config import load_config  # noqa: E402

spec = importlib.util.spec_from_file_location("bench_build", BENCH / "build.py")
corpus = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(corpus)  # type: ignore[union-attr]


def profiled(fn, top: int, sort: str) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    fn()
    profiler.disable()
    seconds = time.perf_counter() - started
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats(sort).print_stats(top)
    return seconds, out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=1000)
    parser.add_argument("--shape", choices=corpus.SHAPES, default="linky")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="cumulative", help="a pstats sort key: cumulative, tottime, ...")
    parser.add_argument("--parallel", action="store_true", help="full build with publisher's render workers")
    parser.add_argument("--builds", nargs="+", choices=["full", "nochange", "changed"],
                        default=["full", "nochange", "changed"])
    args = parser.parse_args()
    print(f"publisher under test: {publisher.__file__}")
    now = datetime(2100, 1, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        paths = corpus.make_corpus(root, args.n, args.shape)
        config = load_config(root, environ={})
        workers = None if args.parallel else 1
        build(config, now=now, workers=workers)  # warm: imports, theme, first-use set-up; then start afresh
        shutil.rmtree(root / "dist")
        shutil.rmtree(root / ".publisher-cache")
        newest = paths[-1]

        def changed() -> None:
            newest.write_text(newest.read_text(encoding="utf-8") + f"\n补充 {time.time_ns()}。\n", encoding="utf-8")
            build(config, now=now)

        runs = {"full": lambda: build(config, now=now, workers=workers), "nochange": lambda: build(config, now=now),
                "changed": changed}
        for name in ("full", "nochange", "changed"):
            if name not in args.builds:
                if name == "full":
                    build(config, now=now, workers=workers)
                continue
            seconds, text = profiled(runs[name], args.top, args.sort)
            print(f"==== {name} build, {args.n} {args.shape} issues: {seconds:.2f} s under the profiler "
                  f"({'render workers' if name == 'full' and args.parallel else 'one process'}) ====")
            print(text)


if __name__ == "__main__":
    main()
