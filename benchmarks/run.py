"""The benchmark suite: publisher against Hugo and Pelican on the same corpus, and the email, deploy and send
figures, in one run. Prints a table and writes it as JSON to benchmarks/results/.

    python benchmarks/run.py [--sizes 100 1000 5000] [--repeat 3] [--skip-others] [--skip-extras]

Needs Pelican (`pip install pelican markdown`, or `pip install -e '.[bench]'`) and Hugo (Debian: `apt-get
install hugo`); a tool that is missing is reported as such and left out. Every build runs as its own process
(interpreter start-up included, as a user would run it); peak memory is the largest resident set of that
process or any of its children (publisher's render workers included). Medians of `--repeat` runs.

The corpus: N reference-style issues (about 10 KB of Chinese/English Markdown each: links, nested lists, bold,
tables, code, images on other hosts; benchmarks/build.py). Pelican reads the same Markdown with its own metadata
header; Hugo reads the same files (YAML frontmatter) with a minimal set of layouts written here. Each builds
article pages, the index, tag pages and feeds; publisher also renders every issue's email (email.html).

Targets on 2 cores, N=1,000: a full build at least 3x faster than Pelican and within 2x of Hugo; a one-changed
rebuild under 0.5 s and a no-change rebuild under 0.3 s (publisher's own time, printed by the build); build time
linear in N (5,000 takes at most 5.5x of 1,000).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[0] = str(REPO)  # not this folder: its email.py would shadow the standard library's `email`


def _load(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


corpus = _load("build")

HUGO_LAYOUTS = {
    "baseof.html": '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{{ .Title }}</title>'
                   '{{ range .AlternativeOutputFormats }}<link rel="alternate" type="{{ .MediaType.Type }}" '
                   'href="{{ .Permalink }}">{{ end }}</head><body>{{ block "main" . }}{{ end }}</body></html>',
    "single.html": '{{ define "main" }}<article><h1>{{ .Title }}</h1><time>{{ .Date.Format "2006-01-02" }}</time>'
                   '{{ range .Params.tags }}<a href="/tags/{{ . | urlize }}/">{{ . }}</a>{{ end }}{{ .Content }}'
                   "</article>{{ end }}",
    "list.html": '{{ define "main" }}<h1>{{ .Title }}</h1><ol>{{ range .Pages }}<li><a href="{{ .RelPermalink }}">'
                 '{{ .Title }}</a> {{ .Date.Format "2006-01-02" }}<p>{{ .Summary | plainify | truncate 200 }}</p>'
                 "</li>{{ end }}</ol>{{ end }}",
}
PELICAN_CONF = """\
SITENAME = "AI 日报"
SITEURL = "https://bench.example.com"
TIMEZONE = "UTC"
DEFAULT_LANG = "zh"
FEED_ALL_ATOM = "feeds/all.atom.xml"
FEED_ALL_RSS = "feeds/all.rss.xml"
TAG_FEED_ATOM = "feeds/{slug}.atom.xml"
TAG_FEED_RSS = "feeds/{slug}.rss.xml"
DEFAULT_PAGINATION = False
RELATIVE_URLS = False
LOAD_CONTENT_CACHE = False
"""


GNU_TIME = "/usr/bin/time"


def run(command: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak resident MB (the process or its largest child) and stdout of one command.

    Through GNU time when it is there: it forks from a small process, whereas a max RSS read here would be at
    least this (large) benchmark process's size, which a forked child inherits in its high-water mark."""
    timed = [GNU_TIME, "-f", "%M", "-o", "/dev/stderr"] if Path(GNU_TIME).exists() else []
    started = time.perf_counter()
    process = subprocess.Popen(timed + command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    out = process.stdout.read().decode("utf-8", "replace") if process.stdout else ""
    err = process.stderr.read().decode("utf-8", "replace") if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{err[-2000:]}")
    peak_kb = int(err.strip().splitlines()[-1]) if timed else usage.ru_maxrss
    return seconds, peak_kb / 1024, out


def write_corpora(root: Path, n: int) -> dict[str, Path]:
    """The same issues for publisher, Hugo and Pelican."""
    pub = root / "publisher"
    paths = corpus.make_corpus(pub, n)
    hugo = root / "hugo"
    (hugo / "content" / "posts").mkdir(parents=True)
    (hugo / "layouts" / "_default").mkdir(parents=True)
    for name, text in HUGO_LAYOUTS.items():
        (hugo / "layouts" / "_default" / name).write_text(text, encoding="utf-8")
    (hugo / "hugo.toml").write_text('baseURL = "https://bench.example.com/"\ntitle = "AI 日报"\nlanguageCode = '
                                    '"zh-CN"\n[taxonomies]\ntag = "tags"\n', encoding="utf-8")
    pelican = root / "pelican"
    (pelican / "content").mkdir(parents=True)
    (pelican / "pelicanconf.py").write_text(PELICAN_CONF, encoding="utf-8")
    for n_, path in enumerate(paths):
        text = path.read_text(encoding="utf-8")
        (hugo / "content" / "posts" / path.name).write_text(text, encoding="utf-8")
        _, front, body = text.split("---\n", 2)
        title = re.search(r'^title: "(.*)"$', front, re.M).group(1)  # type: ignore[union-attr]
        date = re.search(r"^date: (.*)$", front, re.M).group(1)  # type: ignore[union-attr]
        tags = re.search(r"^tags: \[(.*)\]$", front, re.M).group(1)  # type: ignore[union-attr]
        (pelican / "content" / f"issue-{n_}.md").write_text(
            f"Title: {title}\nDate: {date[:16].replace('T', ' ')}\nTags: {tags}\nSlug: issue-{n_}\n\n{body}",
            encoding="utf-8")
    return {"publisher": pub, "hugo": hugo, "pelican": pelican, "newest": paths[-1]}


def median_runs(command: list[str], cwd: Path, repeat: int, before=None) -> dict[str, float]:  # type: ignore[no-untyped-def]
    walls, peaks, own = [], [], []
    for _ in range(repeat):
        if before:
            before()
        os.sync()
        seconds, peak, out = run(command, cwd)
        walls.append(seconds)
        peaks.append(peak)
        match = re.search(r"\(([\d.]+) s\)", out)  # publisher prints its own build time
        if match:
            own.append(float(match.group(1)))
    result = {"seconds": statistics.median(walls), "peak_mb": max(peaks)}
    if own:
        result["own_seconds"] = statistics.median(own)
    return result


def bench_builds(sizes: list[int], repeat: int, others: bool) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    publisher = [sys.executable, "-m", "publisher", "build"]
    hugo = shutil.which("hugo")
    pelican = shutil.which("pelican") or str(Path(sys.executable).parent / "pelican")
    pelican_ok = Path(pelican).exists()
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            dirs = write_corpora(Path(tmp), n)
            pub = dirs["publisher"]

            def clean(folder: Path = pub) -> None:
                shutil.rmtree(folder / "dist", ignore_errors=True)
                shutil.rmtree(folder / ".publisher-cache", ignore_errors=True)

            env_now = {"PUBLISHER_NOW": "2100-01-01T00:00:00+00:00"}
            os.environ.update(env_now)
            row: dict[str, object] = {"issues": n, "publisher_full": median_runs(publisher, pub, repeat, clean)}
            row["publisher_nochange"] = median_runs(publisher, pub, repeat)
            newest: Path = dirs["newest"]

            def edit(path: Path = newest) -> None:
                path.write_text(path.read_text(encoding="utf-8") + f"\n补充 {time.time_ns()}。\n", encoding="utf-8")

            row["publisher_one_changed"] = median_runs(publisher, pub, repeat, edit)
            if others and hugo:
                out = dirs["hugo"] / "public"
                row["hugo_full"] = median_runs([hugo, "--quiet", "-d", str(out)], dirs["hugo"], repeat,
                                               lambda o=out: shutil.rmtree(o, ignore_errors=True))
            if others and pelican_ok:
                out = dirs["pelican"] / "output"
                row["pelican_full"] = median_runs([pelican, "content", "-o", str(out), "-s", "pelicanconf.py", "-q"],
                                                  dirs["pelican"], repeat,
                                                  lambda o=out: shutil.rmtree(o, ignore_errors=True))
        rows.append(row)
        print(f"  measured N={n}", file=sys.stderr)
    return rows


def bench_extras() -> dict[str, object]:
    extras: dict[str, object] = {}
    email = _load("email")
    extras["email"] = email.measure(100_000)
    deploy = _load("deploy")
    extras["deploy"] = deploy.measure(1000)
    send = _load("send")
    extras["send"] = [send.measure(size, "null") for size in (10_000, 100_000)]
    return extras


def table(rows: list[dict[str, object]], extras: dict[str, object]) -> str:
    lines = ["Build (seconds, wall clock per process, median; peak MB)",
             f"{'N':>6} {'publisher':>10} {'(own)':>7} {'no-change':>10} {'(own)':>7} {'1 changed':>10} {'(own)':>7} "
             f"{'Hugo':>8} {'Pelican':>9} {'vs Hugo':>8} {'vs Pelican':>11} {'MB pub/Hugo/Pel':>16}"]
    for row in rows:
        full = row["publisher_full"]
        nochange, changed = row["publisher_nochange"], row["publisher_one_changed"]
        hugo, pelican = row.get("hugo_full"), row.get("pelican_full")
        h = f"{hugo['seconds']:8.2f}" if hugo else f"{'-':>8}"
        p = f"{pelican['seconds']:9.2f}" if pelican else f"{'-':>9}"
        vs_h = f"{full['seconds'] / hugo['seconds']:7.2f}x" if hugo else f"{'-':>8}"
        vs_p = f"{pelican['seconds'] / full['seconds']:9.1f}x" if pelican else f"{'-':>11}"
        mem = f"{full['peak_mb']:.0f}/{hugo['peak_mb'] if hugo else 0:.0f}/{pelican['peak_mb'] if pelican else 0:.0f}"
        lines.append(f"{row['issues']:>6} {full['seconds']:10.2f} {full.get('own_seconds', 0):7.2f} "
                     f"{nochange['seconds']:10.2f} {nochange.get('own_seconds', 0):7.2f} {changed['seconds']:10.2f} "
                     f"{changed.get('own_seconds', 0):7.2f} {h} {p} {vs_h} {vs_p} {mem:>16}")
    lines.append("  vs Hugo: publisher's time / Hugo's (target <= 2); "
                 "vs Pelican: Pelican's / publisher's (target >= 3)")
    by_n = {row["issues"]: row["publisher_full"]["own_seconds"] for row in rows}  # type: ignore[index]
    if 1000 in by_n and 5000 in by_n:
        lines.append(f"  linearity: 5,000 issues take {by_n[5000] / by_n[1000]:.2f}x of 1,000 (target <= 5.5)")
    if extras:
        e, d = extras["email"], extras["deploy"]
        lines += ["", f"Email: render {e['render_ms']:.2f} ms per issue; {e['per_message_us']:.1f} us per personalized "
                  f"message (100,000 made)",
                  f"Deploy (moto S3, 1,000 issues): no-change {d['nochange_s']:.2f} s ({d['files']} files), "
                  f"first {d['first_s']:.1f} s"]
        for s in extras["send"]:  # type: ignore[union-attr]
            lines.append(f"Send (null transport): {s['size']:,} subscribers at {s['rate']:,.0f} messages/s, "
                         f"peak {s['peak_mb']:.0f} MB")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-others", action="store_true", help="do not run Hugo and Pelican")
    parser.add_argument("--skip-extras", action="store_true", help="no email, deploy and send figures")
    args = parser.parse_args()
    started = datetime.now(UTC)
    rows = bench_builds(args.sizes, args.repeat, not args.skip_others)
    extras = {} if args.skip_extras else bench_extras()
    text = table(rows, extras)
    print(text)
    hugo = subprocess.run(["hugo", "version"], capture_output=True, text=True).stdout.strip() if shutil.which("hugo") \
        else None
    pelican = subprocess.run([sys.executable, "-m", "pelican", "--version"], capture_output=True, text=True)
    results = {"started": started.isoformat(timespec="seconds"), "machine": {"cpus": os.cpu_count(),
               "python": platform.python_version(), "platform": platform.platform()},
               "versions": {"hugo": hugo, "pelican": pelican.stdout.strip() or None}, "repeat": args.repeat,
               "builds": rows, "extras": extras, "table": text}
    folder = BENCH / "results"
    folder.mkdir(exist_ok=True)
    path = folder / f"run-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwritten to {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
