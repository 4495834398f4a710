"""Sending through SQS workers (publisher/fanout.py) against a moto server: throughput at 1, 2 and 4 worker
processes with the DynamoDB and SQS requests each message costs, and the crash test of tests/test_fanout.py at
scale (SIGKILLed `publisher worker` processes; afterwards nobody has two copies and every row is sent or
uncertain). Prints Markdown tables and writes JSON to benchmarks/results/fanout-<UTC time>.json.

    python benchmarks/fanout.py [--throughput] [--crash] [--quick] [-n 20000] [--crash-n 100000]
                                [--workers 1 2 4] [--seed 21] [--profile] [--no-json]

With neither --throughput nor --crash, both run. --quick: 2,000 recipients for throughput, 3,000 for the crash
run (a few minutes: for checking this script).

What is measured, and what is not AWS: the moto server is one Python process on this machine (the GIL makes it
one core at most), serving every DynamoDB and SQS request of the sender and all workers. Its CPU time during the
run is reported next to the wall time, and a probe measures how many UpdateItem calls a second it serves to one
client and to four: when the workers' rate is near that, moto is the ceiling, not publisher. The crash run uses
a moto endpoint that applies one request at a time (tests/conftest.py atomic_moto: moto's normal server does
not apply DynamoDB conditional writes atomically), so it is slower still. Requests are counted with a botocore
`before-parameter-build` hook on every client (retries are not counted again).

Processes: the moto server runs in a child of its own (`--as-moto`), the subscribing and the send in another
(`--as-sender`), each worker in its own (`--as-worker` for throughput: a `Worker` with the null transport; the
real `publisher worker` CLI with the outbox transport for the crash run). Each child prints its counters as
JSON on its last stdout line; the parent sums them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[0] = str(REPO)  # not this folder: its email.py would shadow the standard library's `email`

from benchmarks.vocabulary import (  # noqa: E402 (after the path is fixed)
    EN_TITLES,
    HOSTS,
    IMAGE_HOSTS,
    ORGS,
    REMARKS,
    REPOS,
    SECTIONS,
    THINGS,
    VERBS,
)

NOW = "2026-11-26T12:00:00+00:00"
SECRET = "benchmark-fanout-secret-key-0123456789"
SLUG = "daily"
READS = ("GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems")
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


# ---- the newsletter folder ----


def issue_body(seed: int = 7) -> str:
    """A long daily digest in Chinese mixed with English, about 14 KB and 150 links (as benchmarks/importing.py)."""
    rng = random.Random(seed)
    out = ["今天的 AI 日报：模型、开源、论文和行业动态，一共六个栏目。\n"]
    for section in SECTIONS:
        out.append(f"\n## {section}\n")
        for _ in range(5):
            org, repo = rng.choice(ORGS), rng.choice(REPOS)
            host = rng.choice(HOSTS)
            out.append(f"- **{org}** {rng.choice(VERBS)}{rng.choice(THINGS)}（[原文]({host}{rng.randrange(10**6)})，"
                       f"[GitHub](https://github.com/{org}/{repo})，[讨论](https://news.ycombinator.com/item?id="
                       f"{rng.randrange(10**8)})）。{rng.choice(REMARKS)}"
                       f"相关论文：[{rng.choice(EN_TITLES)}](https://arxiv.org/abs/24{rng.randrange(10, 13)}."
                       f"{rng.randrange(10000, 99999)})。\n")
        out.append(f"\n![{section}]({rng.choice(IMAGE_HOSTS)}{uuid.UUID(int=rng.getrandbits(128)).hex}.png)\n")
        out.append("\n" + "".join(f"{rng.choice(REMARKS)}[{rng.choice(THINGS)}]({rng.choice(HOSTS)}"
                                  f"{rng.randrange(10**6)})。" for _ in range(5)) + "\n")
    return "".join(out)


def make_newsletter(root: Path, table: str, *, transport: str = "outbox") -> None:
    (root / "content").mkdir(parents=True, exist_ok=True)
    (root / "publisher.toml").write_text(
        'search = { enabled = false }\n[site]\ntitle = "AI 日报"\nurl = "https://news.example.com/daily/"\n'
        'description = "每日 AI 要闻"\nlanguage = "zh-CN"\ntimezone = "Asia/Shanghai"\nauthor = "编辑部"\n'
        'author_email = "editor@news.example.com"\n'
        f'[email]\nfrom_address = "news@example.com"\npostal_address = "上海市黄浦区中山东一路 1 号"\n'
        f'fanout = "sqs"\ntransport = "{transport}"\n'
        f'[subscribers]\ndynamodb_table = "{table}"\n', encoding="utf-8")
    (root / "content" / "2026-11-20-daily.md").write_text(
        '---\ntitle: "AI 日报：第一期"\ndate: 2026-11-20\n---\n\n' + issue_body(), encoding="utf-8")


def child_env(endpoint: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUBLISHER_", "AWS_"))}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/nonexistent",
               AWS_SHARED_CREDENTIALS_FILE="/nonexistent", PUBLISHER_NOW=NOW, PUBLISHER_SECRET=SECRET,
               PUBLISHER_CACHE_KEY_FILE=str(tmp / "cache-key"), PYTHONPATH=str(REPO))
    return env


def use_env(env: dict[str, str]) -> None:
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update({k: v for k, v in env.items() if k.startswith(("AWS_", "PUBLISHER_"))})


# ---- request counting (as tests/test_ledger_dynamodb.py's Requests) ----


class Counts:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def hook(self, model: Any, **_: Any) -> None:
        with self.lock:
            self.calls[f"{model.service_model.service_name}:{model.name}"] += 1

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.calls)


def count_requests() -> Counts:
    """Every DynamoDB client publisher makes (stores.dynamodb.make_client) and every SQS client of fanout.py,
    counted per operation."""
    import boto3

    from publisher import fanout
    from publisher.stores import dynamodb

    counts = Counts()
    make = dynamodb.make_client

    def counting_dynamodb(config: Any = None) -> Any:
        client = make(config)
        client.meta.events.register("before-parameter-build.dynamodb.*", counts.hook)
        return client

    def counting_sqs(queue: str) -> Any:
        client = boto3.client("sqs")
        client.meta.events.register("before-parameter-build.sqs.*", counts.hook)
        return client

    dynamodb.make_client = counting_dynamodb
    fanout.sqs_client = counting_sqs
    return counts


def summarize(calls: dict[str, int]) -> dict[str, int]:
    out = {"dynamodb_reads": 0, "dynamodb_writes": 0, "dynamodb_other": 0, "sqs": 0}
    for name, n in calls.items():
        service, op = name.split(":")
        if service == "sqs":
            out["sqs"] += n
        elif op in READS:
            out["dynamodb_reads"] += n
        elif op in WRITES:
            out["dynamodb_writes"] += n
        else:
            out["dynamodb_other"] += n
    return out


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


# ---- children ----


def as_moto(kind: str) -> None:
    """A moto server on 127.0.0.1 (kind: threaded, as ThreadedMotoServer; atomic, one request at a time as
    tests/conftest.py atomic_moto). Prints its URL, serves until killed."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if kind == "threaded":
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        print(f"http://{host}:{port}", flush=True)
    else:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        app, lock = DomainDispatcherApplication(create_backend_app), threading.Lock()

        def atomic(environ, start_response):  # type: ignore[no-untyped-def]
            with lock:
                return list(app(environ, start_response))

        server = make_server("127.0.0.1", 0, atomic, True, request_handler=MotoRequestHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


def as_sender(root: str, n: int, queue: str) -> None:
    """Subscribes n addresses (upsert_many), then `send --workers sqs` (send_issue): the snapshot and the
    enqueueing timed and counted apart."""
    from publisher import fanout
    from publisher.config import load_config
    from publisher.sending import send_issue
    from publisher.stores.dynamodb import DynamoDBStore
    from publisher.stores.dynamodb_ledger import DynamoDBLedger
    from publisher.subscribers import Subscriber

    counts = count_requests()
    config = load_config(Path(root))
    started = time.perf_counter()
    if os.environ.get("FANOUT_FAST_SETUP"):
        # The list itself is not what is measured: BatchWriteItem of whole items, 25 at a time (the 100,000 run
        # would spend 20 minutes in upsert_many against moto).
        from concurrent.futures import ThreadPoolExecutor

        import boto3

        from publisher.stores.dynamodb import subscriber_item

        stamp = "2026-11-01T00:00:00+00:00"
        items = [subscriber_item(Subscriber(f"reader{k}@example.com", f"读者{k}" if k % 2 else "", created=stamp,
                                            changed=stamp)) for k in range(n)]
        client = boto3.client("dynamodb")

        def write(chunk: list[dict[str, Any]]) -> None:
            requests = [{"PutRequest": {"Item": item}} for item in chunk]
            while requests:
                answer = client.batch_write_item(RequestItems={config.subscribers.dynamodb_table: requests})
                requests = answer.get("UnprocessedItems", {}).get(config.subscribers.dynamodb_table, [])

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(write, (items[i:i + 25] for i in range(0, n, 25))))
    else:
        store = DynamoDBStore(config)
        store.upsert_many((Subscriber(f"reader{k}@example.com", f"读者{k}" if k % 2 else "") for k in range(n)),
                          validated=True)
        store.close()
    subscribe_s = time.perf_counter() - started
    subscribe_calls = counts.snapshot()
    phases: dict[str, Any] = {}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            before, t = counts.snapshot(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] = {"seconds": time.perf_counter() - t, "calls": diff(counts.snapshot(), before)}
        return wrapper

    DynamoDBLedger.snapshot = timed("snapshot", DynamoDBLedger.snapshot)  # type: ignore[method-assign]
    fanout.enqueue = timed("enqueue", fanout.enqueue)
    before, t = counts.snapshot(), time.perf_counter()
    report = send_issue(config, SLUG, fanout="sqs", queue=queue, secret=SECRET.encode())
    send_s = time.perf_counter() - t
    assert report.queued == n, report
    print(json.dumps({"subscribe_seconds": subscribe_s, "subscribe_calls": subscribe_calls, "send_seconds": send_s,
                      "send_calls": diff(counts.snapshot(), before), "phases": phases, "queued": report.queued,
                      "batches": report.batches}))


def as_worker(root: str, queue: str, idle: float, profile: str | None) -> None:
    """One fan-out worker with the null transport; prints its report, counters and when it sent its first and
    last message (wall clock)."""
    import boto3

    from publisher.config import load_config
    from publisher.fanout import Worker
    from publisher.transports import NullTransport

    started = time.time()
    counts = count_requests()
    seen = {"first": 0.0, "last": 0.0}

    class Timed(NullTransport):
        def send(self, message: bytes, **kwargs: Any) -> str:
            now = time.time()
            seen["first"] = seen["first"] or now
            seen["last"] = now
            return super().send(message, **kwargs)

    config = load_config(Path(root))
    sqs = boto3.client("sqs")
    sqs.meta.events.register("before-parameter-build.sqs.*", counts.hook)
    worker = Worker(config, transport_factory=lambda slug: Timed(), secret=SECRET.encode())
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        report = worker.run(queue, idle_exit=idle, wait_seconds=1, client=sqs)
    finally:
        worker.close()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
    cpu = os.times()
    print(json.dumps({"started": started, "first_sent": seen["first"], "last_sent": seen["last"],
                      "messages": report.messages, "done": report.done, "returned": report.returned,
                      "poison": report.poison, "sent": report.sent, "uncertain": report.uncertain,
                      "seconds": report.seconds, "cpu_seconds": cpu.user + cpu.system, "calls": counts.snapshot()}))


def as_probe(table: str, count: int) -> None:
    """`count` UpdateItem calls one after the other on one item (the shape of a claim): requests per second."""
    import boto3

    client = boto3.client("dynamodb")
    key = {"PK": {"S": "PROBE"}, "SK": {"S": uuid.uuid4().hex}}
    started = time.perf_counter()
    for k in range(count):
        client.update_item(TableName=table, Key=key, UpdateExpression="SET #s = :s ADD attempts :one",
                           ExpressionAttributeNames={"#s": "state"},
                           ExpressionAttributeValues={":s": {"S": f"x{k}"}, ":one": {"N": "1"}})
    print(json.dumps({"count": count, "seconds": time.perf_counter() - started}))


# ---- the parent ----


class Moto:
    def __init__(self, kind: str) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--as-moto", kind], stdout=subprocess.PIPE,
                                     text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise SystemExit(f"the moto server did not start: {self.url!r}")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def last_json(text: str) -> dict[str, Any]:
    return json.loads(text.strip().splitlines()[-1])


def make_queue(visibility: int) -> tuple[str, str]:
    """A send queue with a dead-letter queue, as CloudFormation makes them."""
    from publisher.fanout import create_queues

    return create_queues(f"send-{uuid.uuid4().hex[:10]}", visibility=visibility)


def depth(url: str) -> int:
    from publisher.fanout import in_flight

    return in_flight(url)


def new_table() -> str:
    import boto3

    from publisher.stores.dynamodb import create_table

    table = f"news-{uuid.uuid4().hex[:12]}"
    assert create_table(boto3.client("dynamodb"), table) is True
    return table


def prepare(root: Path, env: dict[str, str], n: int, *, visibility: int, transport: str) -> dict[str, Any]:
    """A fresh table, queue and newsletter folder; n subscribers; the issue queued. Returns the sender's figures."""
    table = new_table()
    if root.exists():
        shutil.rmtree(root)
    make_newsletter(root, table, transport=transport)
    url, dlq = make_queue(visibility)
    done = subprocess.run([sys.executable, __file__, "--as-sender", str(root), str(n), url], env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the sender failed:\n{done.stderr}")
    return {"table": table, "queue": url, "dlq": dlq, **last_json(done.stdout)}


def probe_moto(moto: Moto, env: dict[str, str], count: int) -> dict[str, float]:
    table = new_table()
    out: dict[str, float] = {}
    for clients in (1, 4):
        procs = [subprocess.Popen([sys.executable, __file__, "--as-probe", table, str(count)], env=env,
                                  stdout=subprocess.PIPE, text=True) for _ in range(clients)]
        cpu0, t0 = moto.cpu_seconds(), time.perf_counter()
        results = [last_json(p.communicate()[0]) for p in procs]
        wall = time.perf_counter() - t0  # includes interpreter start-up: the slowest client's own time is used
        slowest = max(r["seconds"] for r in results)
        out[f"update_item_per_s_{clients}_client{'s' if clients > 1 else ''}"] = clients * count / slowest
        out[f"moto_cpu_share_{clients}"] = (moto.cpu_seconds() - cpu0) / wall
    return out


def throughput(tmp: Path, n: int, worker_counts: list[int], profile: bool) -> dict[str, Any]:
    moto = Moto("threaded")
    env = child_env(moto.url, tmp)
    use_env(env)
    runs = []
    try:
        probe = probe_moto(moto, env, 2000)
        print(f"moto probe: {probe['update_item_per_s_1_client']:,.0f} UpdateItem/s to one client, "
              f"{probe['update_item_per_s_4_clients']:,.0f}/s to four", flush=True)
        for workers in worker_counts:
            root = tmp / f"news-{workers}"
            sender = prepare(root, env, n, visibility=30, transport="outbox")
            cpu0 = moto.cpu_seconds()
            t0 = time.time()
            procs = []
            for k in range(workers):
                command = [sys.executable, __file__, "--as-worker", str(root), sender["queue"], "3"]
                if profile and k == 0:
                    command += ["--profile-to", str(tmp / f"worker-{workers}.prof")]
                procs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                              text=True))
            results = []
            for p in procs:
                out, err = p.communicate()
                if p.returncode:
                    raise SystemExit(f"a worker failed:\n{err}")
                results.append(last_json(out))
            moto_cpu = moto.cpu_seconds() - cpu0
            end = max(r["last_sent"] for r in results)
            seconds = end - t0
            sent = sum(r["sent"] for r in results)
            calls: Counter[str] = Counter()
            for r in results:
                calls.update(r["calls"])
            totals = summarize(calls)
            ledger = check_ledger(root)
            wall = time.time() - t0
            run = {"workers": workers, "recipients": n, "sent": sent, "seconds": seconds,
                   "messages_per_s": sent / seconds, "batches_taken": sum(r["messages"] for r in results),
                   "worker_start_to_first_send_s": min(r["first_sent"] for r in results) - t0,
                   "calls": dict(calls), **{f"{k}_per_message": v / sent for k, v in totals.items()},
                   "moto_cpu_seconds_until_exit": moto_cpu, "wall_until_exit": wall,
                   "worker_cpu_seconds": sum(r["cpu_seconds"] for r in results),
                   "ledger": ledger, "sender": {k: v for k, v in sender.items() if k not in ("table", "queue", "dlq")}}
            runs.append(run)
            print(f"{workers} worker(s): {sent:,} sent in {seconds:.1f} s = {run['messages_per_s']:,.0f}/s; "
                  f"moto CPU {moto_cpu:.1f} s of {wall:.1f} s wall; ledger {ledger}", flush=True)
            if ledger != {"sent": n}:
                raise SystemExit(f"not every row was sent: {ledger}")
    finally:
        moto.stop()
    if profile:
        import pstats

        for workers in worker_counts:
            path = tmp / f"worker-{workers}.prof"
            if path.exists():
                shutil.copy(path, f"/tmp/fanout-worker-{workers}.prof")
        print("profiles of worker 0: /tmp/fanout-worker-<W>.prof; the 1-worker run's top functions by own time:")
        stats = pstats.Stats(f"/tmp/fanout-worker-{worker_counts[0]}.prof")
        stats.sort_stats("tottime").print_stats(18)
    return {"probe": probe, "runs": runs}


def check_ledger(root: Path) -> dict[str, int]:
    from publisher.config import load_config
    from publisher.stores.dynamodb_ledger import DynamoDBLedger

    ledger = DynamoDBLedger(load_config(root, environ={}))
    try:
        return ledger.counts(SLUG)
    finally:
        ledger.close()


def crash(tmp: Path, n: int, seed: int, visibility: int, idle: float) -> dict[str, Any]:
    moto = Moto("atomic")
    env = child_env(moto.url, tmp)
    use_env(env)
    started = time.perf_counter()
    try:
        root = tmp / "news-crash"
        sender = prepare(root, env, n, visibility=visibility, transport="outbox")
        url, dlq = sender["queue"], sender["dlq"]
        print(f"crash run: {n:,} subscribed in {sender['subscribe_seconds']:.0f} s, queued in "
              f"{sender['send_seconds']:.0f} s ({sender['batches']} batches)", flush=True)
        outbox = root / "outbox" / SLUG
        command = [sys.executable, "-m", "publisher", "-C", str(root), "worker", "--queue", url,
                   "--exit-when-idle", str(idle)]
        logs = tmp / "worker-logs"
        logs.mkdir(exist_ok=True)
        serial = iter(range(10**6))

        def start() -> subprocess.Popen[bytes]:
            k = next(serial)
            return subprocess.Popen(command, env=env, stdout=open(logs / f"{k}.out", "wb"),  # noqa: SIM115
                                    stderr=open(logs / f"{k}.err", "wb"))  # noqa: SIM115

        def files() -> int:
            return sum(1 for e in os.scandir(outbox) if e.name.endswith(".eml")) if outbox.exists() else 0

        t_workers = time.perf_counter()
        workers = [start() for _ in range(4)]
        chance = random.Random(seed)
        kills = []
        for threshold in (chance.randint(n * 5 // 100, n * 35 // 100), chance.randint(n * 40 // 100, n * 75 // 100)):
            last_note = time.perf_counter()
            while (have := files()) < threshold:
                if all(w.poll() is not None for w in workers):
                    raise SystemExit(f"every worker exited before {threshold} messages went out")
                if time.perf_counter() - last_note > 60:
                    last_note = time.perf_counter()
                    print(f"  {have:,} messages out ({last_note - t_workers:.0f} s)", flush=True)
                time.sleep(0.5)
            for victim in chance.sample(range(4), 2):
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait()
                kills.append({"worker": victim, "after_files": files(),
                              "at_s": round(time.perf_counter() - t_workers, 1)})
                workers[victim] = start()
            print(f"  killed two workers at {files():,} messages ({time.perf_counter() - t_workers:.0f} s)",
                  flush=True)
        failed_workers = 0
        while any(w.poll() is None for w in workers):
            time.sleep(1)
            if int(time.perf_counter() - t_workers) % 60 == 0:
                print(f"  {files():,} messages out ({time.perf_counter() - t_workers:.0f} s)", flush=True)
        for w in workers:
            failed_workers += w.returncode != 0
        workers_s = time.perf_counter() - t_workers
        print(f"  workers idle after {workers_s:.0f} s; checking", flush=True)
        result = check_crash(root, outbox, n, url, dlq, env)
        result.update(recipients=n, kills=len(kills), kill_points=kills, seed=seed, visibility_timeout=visibility,
                      idle_exit=idle, worker_seconds=workers_s, workers_failed=failed_workers,
                      subscribe_seconds=sender["subscribe_seconds"], send_seconds=sender["send_seconds"],
                      total_seconds=time.perf_counter() - started)
    finally:
        moto.stop()
    return result


def check_crash(root: Path, outbox: Path, n: int, url: str, dlq: str, env: dict[str, str]) -> dict[str, Any]:
    from publisher.config import load_config
    from publisher.stores.dynamodb_ledger import DynamoDBLedger

    ledger = DynamoDBLedger(load_config(root, environ={}))
    by_n: dict[int, tuple[str, str]] = {}  # n -> (email, state)
    try:
        for items, _ in ledger._rows(SLUG, projection="email, n, #state"):
            for item in items:
                by_n[int(item["n"]["N"])] = (item["email"]["S"], item["state"]["S"])
    finally:
        ledger.close()
    copies: Counter[int] = Counter()
    strays = []
    for entry in os.scandir(outbox) if outbox.exists() else ():
        found = re.fullmatch(r"(\d+)(?:\.(\d+))?\.eml", entry.name)
        if found:
            copies[int(found.group(1))] += 1
        elif entry.name.endswith(".eml"):
            strays.append(entry.name)
    states = Counter(state for _, state in by_n.values())
    uncertain = {k for k, (_, s) in by_n.items() if s == "sending"}
    sent = {k for k, (_, s) in by_n.items() if s == "sent"}
    out = {
        "rows": len(by_n), "states": dict(states),
        "sent_once": sum(1 for k in sent if copies[k] == 1),
        "uncertain": len(uncertain),
        "uncertain_that_went_out": sum(1 for k in uncertain if copies[k]),
        "sent_twice": sum(1 for c in copies.values() if c > 1),
        "never_sent_not_uncertain": sum(1 for k in by_n if not copies[k] and k not in uncertain),
        "recorded_sent_without_a_file": sum(1 for k in sent if not copies[k]),
        "files_without_a_row": sum(1 for k in copies if k not in by_n),
        "stray_files": len(strays),
        "dlq": depth(dlq), "queue_left": depth(url),
    }
    check = subprocess.run([sys.executable, "-m", "publisher", "-C", str(root), "send", SLUG, "--workers", "sqs",
                            "--queue", url], env=env, capture_output=True, text=True)
    expected = f"{len(uncertain)} messages of {SLUG} may or may not have gone out"
    out["send_reports_uncertain"] = (expected in check.stderr) if uncertain else check.returncode == 0
    out["invariants_hold"] = (out["rows"] == n and out["sent_twice"] == 0 and out["never_sent_not_uncertain"] == 0
                              and out["recorded_sent_without_a_file"] == 0 and out["files_without_a_row"] == 0
                              and out["dlq"] == 0 and states.get("pending", 0) == 0
                              and out["send_reports_uncertain"])
    return out


def print_tables(results: dict[str, Any]) -> None:
    print(f"\nmachine: {results['cores']} cores, {results['machine']}; moto {results['moto']} "
          "(one Python process serving every request: part of what is measured)")
    if "throughput" in results:
        t = results["throughput"]
        p = t["probe"]
        print(f"\nmoto alone: {p['update_item_per_s_1_client']:,.0f} UpdateItem/s to 1 client (moto CPU share "
              f"{p['moto_cpu_share_1']:.2f}), {p['update_item_per_s_4_clients']:,.0f}/s to 4 clients "
              f"(CPU share {p['moto_cpu_share_4']:.2f})\n")
        print("| workers | recipients | seconds | messages/s | DDB writes/msg | DDB reads/msg | SQS req/msg "
              "| moto CPU s | workers' CPU s |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in t["runs"]:
            print(f"| {r['workers']} | {r['recipients']:,} | {r['seconds']:.1f} | {r['messages_per_s']:,.0f} | "
                  f"{r['dynamodb_writes_per_message']:.3f} | {r['dynamodb_reads_per_message']:.3f} | "
                  f"{r['sqs_per_message']:.3f} | {r['moto_cpu_seconds_until_exit']:.1f} | "
                  f"{r['worker_cpu_seconds']:.1f} |")
        print("\n| sender (per run) | recipients | subscribe s | send s | snapshot s | enqueue s | "
              "snapshot requests | enqueue requests |")
        print("|---|---:|---:|---:|---:|---:|---|---|")
        for r in t["runs"]:
            s = r["sender"]
            snap, enq = s["phases"].get("snapshot", {}), s["phases"].get("enqueue", {})
            print(f"| before {r['workers']} worker(s) | {r['recipients']:,} | {s['subscribe_seconds']:.1f} | "
                  f"{s['send_seconds']:.1f} | {snap.get('seconds', 0):.1f} | {enq.get('seconds', 0):.1f} | "
                  f"{fmt_calls(snap.get('calls', {}))} | {fmt_calls(enq.get('calls', {}))} |")
        print("\nper-operation requests of the workers (all runs summed per run):")
        for r in t["runs"]:
            print(f"  {r['workers']} worker(s): {fmt_calls(r['calls'])}")
    for c in results.get("crash", []):
        print(f"\n| crash run | {c['recipients']:,} recipients |\n|---|---:|")
        for name in ("kills", "sent_once", "uncertain", "uncertain_that_went_out", "sent_twice",
                     "never_sent_not_uncertain", "recorded_sent_without_a_file", "files_without_a_row", "dlq",
                     "queue_left", "workers_failed", "send_reports_uncertain", "invariants_hold"):
            print(f"| {name.replace('_', ' ')} | {c[name]} |")
        print(f"| subscribe s | {c['subscribe_seconds']:.0f} |\n| queue s | {c['send_seconds']:.0f} |\n"
              f"| workers s | {c['worker_seconds']:.0f} |\n| total s | {c['total_seconds']:.0f} |")


def fmt_calls(calls: dict[str, int]) -> str:
    return ", ".join(f"{k.split(':')[1]} {v:,}" for k, v in sorted(calls.items(), key=lambda kv: -kv[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--throughput", action="store_true")
    parser.add_argument("--crash", action="store_true")
    parser.add_argument("--quick", action="store_true", help="2,000 recipients for throughput, 3,000 for the crash")
    parser.add_argument("-n", type=int, help="recipients for the throughput runs (default 20,000)")
    parser.add_argument("--crash-n", type=int, help="recipients for the crash run (default 100,000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--visibility", type=int, default=5, help="the crash run's queue VisibilityTimeout")
    parser.add_argument("--idle", type=float, default=15.0, help="the crash run's --exit-when-idle")
    parser.add_argument("--profile", action="store_true", help="cProfile the first worker of each throughput run")
    parser.add_argument("--no-json", action="store_true")
    parser.add_argument("--fast-setup", action="store_true",
                        help="write the subscriber list with BatchWriteItem, not upsert_many (not what is measured)")
    parser.add_argument("--as-moto", help=argparse.SUPPRESS)
    parser.add_argument("--as-sender", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--as-worker", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--as-probe", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fast_setup:
        os.environ["FANOUT_FAST_SETUP"] = "1"  # read by the sender process
    if args.as_moto:
        return as_moto(args.as_moto)
    if args.as_sender:
        return as_sender(args.as_sender[0], int(args.as_sender[1]), args.as_sender[2])
    if args.as_worker:
        return as_worker(args.as_worker[0], args.as_worker[1], float(args.as_worker[2]), args.profile_to)
    if args.as_probe:
        return as_probe(args.as_probe[0], int(args.as_probe[1]))
    both = not (args.throughput or args.crash)
    n = args.n or (2_000 if args.quick else 20_000)
    crash_n = args.crash_n or (3_000 if args.quick else 100_000)
    import moto

    started = datetime.now(UTC)
    results: dict[str, Any] = {"started": started.isoformat(timespec="seconds"), "cores": os.cpu_count(),
                               "machine": f"{platform.machine()} {platform.python_implementation()} "
                                          f"{platform.python_version()}",
                               "moto": moto.__version__, "quick": args.quick,
                               "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}
    ok = True
    with tempfile.TemporaryDirectory(prefix="fanout-bench-") as tmp:
        if args.throughput or both:
            results["throughput"] = throughput(Path(tmp), n, args.workers, args.profile)
        if args.crash or both:
            result = crash(Path(tmp), crash_n, args.seed, args.visibility, args.idle)
            results["crash"] = [result]
            ok = result["invariants_hold"]
    print_tables(results)
    if not args.no_json:
        folder = BENCH / "results"
        folder.mkdir(exist_ok=True)
        path = folder / f"fanout-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nwritten: {path.relative_to(REPO)}")
    if not ok:
        raise SystemExit("an invariant of the crash run failed (see the table)")


if __name__ == "__main__":
    main()
