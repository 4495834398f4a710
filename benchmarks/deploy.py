"""Deploy speed against a local moto S3 server (HTTP on 127.0.0.1, boto3 unchanged).

    python benchmarks/deploy.py [N]        (default N=1000)

Builds a site of N generated reference-style issues (benchmarks/build.py's corpus), then prints the files
uploaded and the seconds for a first deploy, a no-change deploy, and a deploy after one issue changed.
Target: a no-change deploy of 1,000 issues in under 2 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path[0] = str(REPO)  # not this folder: its email.py would shadow the standard library's `email`


def measure(n: int = 1000) -> dict[str, float]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ENDPOINT_URL=f"http://{host}:{port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    try:
        import boto3

        spec = importlib.util.spec_from_file_location("build_bench", BENCH / "build.py")
        corpus = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(corpus)  # type: ignore[union-attr]

        from publisher.build import build
        from publisher.config import load_config
        from publisher.deploy import deploy

        boto3.client("s3").create_bucket(Bucket="bench-news")
        now = datetime(2100, 1, 1, tzinfo=UTC)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "bench"
            paths = corpus.make_corpus(root, n)
            with open(root / "publisher.toml", "a", encoding="utf-8") as fh:
                fh.write('\n[deploy]\ntarget = "s3://bench-news/site/"\nconcurrency = 16\n')
            config = load_config(root, environ={})
            build(config, now=now)
            timings = {}
            for label in ("first", "nochange", "one_changed"):
                if label == "one_changed":
                    paths[-1].write_text(paths[-1].read_text(encoding="utf-8") + "\n补充。\n", encoding="utf-8")
                    build(config, now=now)
                started = time.perf_counter()
                result = deploy(config)
                timings[f"{label}_s"] = time.perf_counter() - started
                timings[f"{label}_uploaded"] = result.uploaded
            timings["files"] = result.uploaded + result.unchanged
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=1000)
    args = parser.parse_args()
    r = measure(args.n)
    print(f"site: {args.n} issues, {r['files']} files, against moto S3 on 127.0.0.1")
    print(f"first deploy       {r['first_uploaded']:6d} uploaded {r['first_s']:7.2f} s")
    print(f"no-change deploy   {r['nochange_uploaded']:6d} uploaded {r['nochange_s']:7.2f} s   target < 2 s at N=1000")
    print(f"newest changed     {r['one_changed_uploaded']:6d} uploaded {r['one_changed_s']:7.2f} s")


if __name__ == "__main__":
    main()
