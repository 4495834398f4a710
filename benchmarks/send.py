"""Sending speed and memory: one issue to 10,000 and 100,000 subscribers, through the null transport (the
sending loop itself: render per recipient, ledger, rate limiter, workers) and the outbox transport (plus one
.eml file written per message).

    python benchmarks/send.py [--sizes 10000 100000] [--transports null outbox]

Each measurement runs in a fresh process, so peak memory (ru_maxrss) is that run's own.
Targets on 2 cores: over 2,000 messages/s through the null transport, peak memory under 200 MB, and flat in
the subscriber count (10k vs 100k).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[0] = str(REPO)  # not this folder: its email.py would shadow the standard library's `email`


def peak_resident_mb() -> float:
    """This process's own peak resident memory. VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child
    forked from a big parent would report the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(size: int, transport_name: str) -> None:
    from publisher.config import load_config
    from publisher.sending import send_issue
    from publisher.subscribers import SqliteStore
    from publisher.transports import NullTransport, OutboxTransport

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "news"
        shutil.copytree(REPO / "content", root / "content")
        shutil.copy(REPO / "publisher.toml", root / "publisher.toml")
        with open(root / "publisher.toml", "a", encoding="utf-8") as fh:
            fh.write("\n")
        store = SqliteStore(root / "subscribers.db")
        store.db.execute("BEGIN")
        store.db.executemany(
            "INSERT INTO subscribers (email, name, status, tags, created_at, changed_at) "
            "VALUES (?, ?, 'active', '[]', '2026-01-01', '2026-01-01')",
            ((f"subscriber{n}@example.com", f"读者{n}" if n % 2 else "") for n in range(size)))
        store.db.execute("COMMIT")
        store.close()
        config = load_config(root, environ={})
        transport = NullTransport() if transport_name == "null" else OutboxTransport(root / "outbox", "coding-agents")
        started = time.perf_counter()
        report = send_issue(config, "coding-agents", transport=transport, secret=b"benchmark-secret-key",
                            now=datetime(2026, 11, 26, tzinfo=UTC))
        seconds = time.perf_counter() - started
        assert report.sent == size, report
    peak_mb = peak_resident_mb()
    print(json.dumps({"size": size, "transport": transport_name, "seconds": seconds,
                      "rate": size / seconds, "peak_mb": peak_mb}))


def measure(size: int, transport: str) -> dict[str, float]:
    """One run in a fresh process (so its peak memory is its own)."""
    out = subprocess.run([sys.executable, __file__, "--child", str(size), transport], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--transports", nargs="+", default=["null", "outbox"], choices=["null", "outbox"])
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "TRANSPORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1])
        return
    print(f"{'transport':10s} {'subscribers':>12s} {'seconds':>9s} {'messages/s':>11s} {'peak MB':>9s}")
    for transport in args.transports:
        for size in args.sizes:
            row = measure(size, transport)
            print(f"{transport:10s} {size:12,d} {row['seconds']:9.1f} {row['rate']:11,.0f} {row['peak_mb']:9.0f}")
    print("targets: null transport > 2,000 messages/s; peak memory < 200 MB and flat from 10k to 100k")


if __name__ == "__main__":
    main()
