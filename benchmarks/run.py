"""The benchmark suite: publisher against Hugo and Pelican on the same corpus, in two corpus shapes, and the
email, deploy and send figures, in one run. Prints a build table and a TARGET TABLE per shape and writes both
as JSON to benchmarks/results/.

    python benchmarks/run.py [--shapes reference linky] [--sizes 1000 [10000]] [--repeat 3]
                             [--others-max N] [--skip-others] [--skip-extras]

e.g. `python benchmarks/run.py --repeat 3` (both shapes at N=1,000), then `python benchmarks/run.py --shapes linky
--sizes 1000 10000 --repeat 1 --others-max 1000 --skip-extras` (the N=10,000 row; Hugo and Pelican only at
1,000). To measure a fixed version while publisher/ is being edited, run a copy:
`git archive HEAD | tar -x -C /tmp/t && cp -r benchmarks/. /tmp/t/benchmarks/ && PYTHONPATH=/tmp/t python
/tmp/t/benchmarks/run.py ...`; the publisher the builds import is printed first (and kept in the JSON).

Needs Pelican (`pip install pelican markdown`, or `pip install -e '.[bench]'`) and Hugo (Debian: `apt-get
install hugo`); a tool that is missing is reported as such and left out. Every command runs as its own process
(`python -m publisher ...`, interpreter start-up included, as a user would run it; the environment, PYTHONPATH
included, is passed on); peak memory is the largest resident set of that process or any of its children
(publisher's render workers included), from GNU time. Medians of `--repeat` runs (at least 5 for --version and
--help). The CPU time other processes used meanwhile is printed beside each shape (in cores; a warning when
over 0.1): on a busy machine every time is longer. Where the time goes: benchmarks/profile_build.py.

The corpus shapes (benchmarks/build.py; N issues, one a day, in content/YYYY/):
- reference: about 10 KB of Chinese/English Markdown an issue (links, nested lists, bold, tables, code, images
  on other hosts), 3 tags of 12 each;
- linky: shaped like the real content, a daily AI-news digest: about 13 KB an issue of long bullet lists of
  links (about 150 an issue), bold, nested lists, setext headings, images on other hosts, `* * *` rules, links
  to GitHub README.md files, relative links to other issues' .md files (yesterday's, last week's, older ones,
  `../2019/...md` across years), 8 tags each, every tag shared by 20-100 % of the issues.
Pelican reads the same Markdown with its own metadata header; Hugo reads the same files (YAML frontmatter)
with a minimal set of layouts written here. Each builds article pages, the index, tag pages and feeds;
publisher also renders every issue's email (email.html).

Targets on 2 cores, for each shape (the TARGET TABLE; whole commands, interpreter start-up included):
  N = 1,000   `publisher --version`, `publisher --help`             < 0.10 s each
              no-change `publisher build`                          < 0.30 s
              newest issue changed (the one in every feed), build  < 0.50 s
              full build vs Hugo on the same files, same run       <= 1.5x Hugo's time
              full build vs Pelican, same run                      >= 5x faster
              largest HTML page in dist/ (path and size)           < 150 KB (KB = 1,024 bytes)
  N = 10,000  full build (only when --sizes has 10000)             <= 10.5x the N = 1,000 time of the same run;
              peak RSS (the largest of its publisher commands)     < 600 MB
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
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


def write_corpora(root: Path, n: int, shape: str) -> dict[str, Path]:
    """The same issues for publisher, Hugo and Pelican."""
    pub = root / "publisher"
    paths = corpus.make_corpus(pub, n, shape)
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


def corpus_stats(paths: list[Path]) -> dict[str, float]:
    """What the corpus is like: KB, links, relative .md links (to other issues) and tags an issue; the range of
    the tags' shares of the issues."""
    total = links = md_links = tags = 0
    shares: dict[str, int] = {}
    for path in paths:
        text = path.read_text(encoding="utf-8")
        total += len(text.encode("utf-8"))
        targets = re.findall(r"\]\(([^)\s]+)\)", text)
        links += len(targets)
        md_links += sum(1 for t in targets if t.endswith(".md") and "://" not in t)
        names = re.search(r"^tags: \[(.*)\]$", text, re.M).group(1).split(", ")  # type: ignore[union-attr]
        tags += len(names)
        for name in names:
            shares[name] = shares.get(name, 0) + 1
    n = len(paths)
    return {"kb_per_issue": total / n / 1024, "links_per_issue": links / n, "md_links_per_issue": md_links / n,
            "tags_per_issue": tags / n, "tags": len(shares), "tag_share_min": min(shares.values()) / n,
            "tag_share_max": max(shares.values()) / n}


def largest_page(dist: Path) -> dict[str, object]:
    """The largest HTML file publisher wrote: its path in dist/ and its size in bytes."""
    pages = [(p.stat().st_size, p) for p in dist.rglob("*.html") if p.is_file()]
    size, path = max(pages) if pages else (0, dist)
    return {"path": path.relative_to(dist).as_posix(), "bytes": size, "html_files": len(pages)}


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


PUBLISHER = [sys.executable, "-m", "publisher"]


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds so far of the whole machine (all processes; 0 where there is no /proc/stat) and of this
    process and the children it waited for (publisher's render workers included, through GNU time): what a
    measurement used that was not the benchmark's is the difference of their increments."""
    ours = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0, ours
    busy = sum(int(fields[k]) for k in (0, 1, 2, 5, 6, 7))  # user nice system irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK"), ours


def publisher_under_test() -> str:
    """Where the publisher the benchmark's commands run comes from (a child process, the same environment)."""
    out = subprocess.run(PUBLISHER[:1] + ["-c", "import publisher; print(publisher.__file__)"], capture_output=True,
                         text=True, check=True, cwd=tempfile.gettempdir())
    return out.stdout.strip()


def bench_builds(shape: str, sizes: list[int], repeat: int, others: bool,
                 others_max: int | None = None) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    publisher = PUBLISHER + ["build"]
    hugo = shutil.which("hugo")
    pelican = shutil.which("pelican") or str(Path(sys.executable).parent / "pelican")
    pelican_ok = Path(pelican).exists()
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            dirs = write_corpora(Path(tmp), n, shape)
            pub = dirs["publisher"]
            row: dict[str, object] = {"shape": shape, "issues": n,
                                      "corpus": corpus_stats(sorted((pub / "content").rglob("*.md")))}
            cli = max(repeat, 5)
            cpu_before, started = cpu_seconds(), time.perf_counter()
            row["publisher_version"] = median_runs(PUBLISHER + ["--version"], pub, cli)
            row["publisher_help"] = median_runs(PUBLISHER + ["--help"], pub, cli)

            def clean(folder: Path = pub) -> None:
                shutil.rmtree(folder / "dist", ignore_errors=True)
                shutil.rmtree(folder / ".publisher-cache", ignore_errors=True)

            env_now = {"PUBLISHER_NOW": "2100-01-01T00:00:00+00:00"}
            os.environ.update(env_now)
            row["publisher_full"] = median_runs(publisher, pub, repeat, clean)
            row["publisher_nochange"] = median_runs(publisher, pub, repeat)
            newest: Path = dirs["newest"]

            def edit(path: Path = newest) -> None:
                path.write_text(path.read_text(encoding="utf-8") + f"\n补充 {time.time_ns()}。\n", encoding="utf-8")

            row["publisher_one_changed"] = median_runs(publisher, pub, repeat, edit)
            row["largest_page"] = largest_page(pub / "dist")
            run_others = others and (others_max is None or n <= others_max)
            if run_others and hugo:
                out = dirs["hugo"] / "public"
                row["hugo_full"] = median_runs([hugo, "--quiet", "-d", str(out)], dirs["hugo"], repeat,
                                               lambda o=out: shutil.rmtree(o, ignore_errors=True))
            if run_others and pelican_ok:
                out = dirs["pelican"] / "output"
                row["pelican_full"] = median_runs([pelican, "content", "-o", str(out), "-s", "pelicanconf.py", "-q"],
                                                  dirs["pelican"], repeat,
                                                  lambda o=out: shutil.rmtree(o, ignore_errors=True))
            busy, ours = (after - before for after, before in zip(cpu_seconds(), cpu_before, strict=True))
            row["other_cpu"] = max(0.0, busy - ours) / (time.perf_counter() - started)
            if row["other_cpu"] > 0.1:  # type: ignore[operator]
                print(f"  warning: other processes kept {row['other_cpu']:.2f} cores busy while {shape} N={n} was "
                      f"measured: the times are longer than on a quiet machine", file=sys.stderr)
        rows.append(row)
        print(f"  measured {shape} N={n}", file=sys.stderr)
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


def table(shape: str, rows: list[dict[str, object]]) -> str:
    lines = [f"Build, {shape} corpus (seconds, wall clock per process, median; peak MB)"]
    for row in rows:
        c = row["corpus"]
        lines.append(f"  N={row['issues']}: {c['kb_per_issue']:.1f} KB, {c['links_per_issue']:.0f} links "  # type: ignore[index]
                     f"({c['md_links_per_issue']:.1f} to other issues' .md files), {c['tags_per_issue']:.0f} tags "  # type: ignore[index]
                     f"an issue; {c['tags']} tags, each on {c['tag_share_min']:.0%}-{c['tag_share_max']:.0%} "  # type: ignore[index]
                     f"of the issues; other processes' use of the cores meanwhile: {row.get('other_cpu', 0):.2f}")
    lines.append(f"{'N':>6} {'publisher':>10} {'(own)':>7} {'no-change':>10} {'(own)':>7} {'1 changed':>10} "
                 f"{'(own)':>7} {'Hugo':>8} {'Pelican':>9} {'vs Hugo':>8} {'vs Pelican':>11} {'MB pub/Hugo/Pel':>16}")
    for row in rows:
        full = row["publisher_full"]
        nochange, changed = row["publisher_nochange"], row["publisher_one_changed"]
        hugo, pelican = row.get("hugo_full"), row.get("pelican_full")
        h = f"{hugo['seconds']:8.2f}" if hugo else f"{'-':>8}"
        p = f"{pelican['seconds']:9.2f}" if pelican else f"{'-':>9}"
        vs_h = f"{full['seconds'] / hugo['seconds']:7.2f}x" if hugo else f"{'-':>8}"
        vs_p = f"{pelican['seconds'] / full['seconds']:10.1f}x" if pelican else f"{'-':>11}"
        mem = f"{full['peak_mb']:.0f}/{hugo['peak_mb'] if hugo else 0:.0f}/{pelican['peak_mb'] if pelican else 0:.0f}"
        lines.append(f"{row['issues']:>6} {full['seconds']:10.2f} {full.get('own_seconds', 0):7.2f} "
                     f"{nochange['seconds']:10.2f} {nochange.get('own_seconds', 0):7.2f} {changed['seconds']:10.2f} "
                     f"{changed.get('own_seconds', 0):7.2f} {h} {p} {vs_h} {vs_p} {mem:>16}")
    lines.append("  (own): the build time publisher prints; the other columns are whole commands. "
                 "vs Hugo: publisher's time / Hugo's; vs Pelican: Pelican's / publisher's")
    by_n = {row["issues"]: row["publisher_full"]["seconds"] for row in rows}  # type: ignore[index]
    for n in sorted(by_n):
        if n > 1000 and 1000 in by_n:
            lines.append(f"  linearity: {n:,} issues take {by_n[n] / by_n[1000]:.2f}x the time of 1,000 "
                         f"({n / 1000:.0f}x the issues)")
    return "\n".join(lines)


KB = 1024
PUBLISHER_BUILDS = {"publisher_full": "full", "publisher_nochange": "no-change",
                    "publisher_one_changed": "newest changed"}


def targets(rows: list[dict[str, object]], tools: dict[str, bool]) -> list[dict[str, object]]:
    """The issue-16 targets against this run's rows of one shape: measure, measured value, target, result
    (pass, FAIL or "not run")."""
    by_n = {row["issues"]: row for row in rows}
    small, big = by_n.get(1000), by_n.get(10_000)
    out: list[dict[str, object]] = []

    def add(measure: str, target: str, value: float | None, ok: bool | None, shown: str) -> None:
        result = "not run" if value is None else "pass" if ok else "FAIL"
        out.append({"measure": measure, "measured": shown if value is not None else "not run", "value": value,
                    "target": target, "result": result})

    def seconds(row: dict[str, object] | None, key: str) -> float | None:
        return row[key]["seconds"] if row and key in row else None  # type: ignore[index]

    for key, name in (("publisher_version", "--version"), ("publisher_help", "--help")):
        v = seconds(small, key)
        add(f"`publisher {name}` (whole command)", "< 0.10 s", v, v is not None and v < 0.10, f"{v or 0:.3f} s")
    v = seconds(small, "publisher_nochange")
    add("no-change `publisher build` (whole command)", "< 0.30 s", v, v is not None and v < 0.30, f"{v or 0:.3f} s")
    v = seconds(small, "publisher_one_changed")
    add("newest issue changed (whole command)", "< 0.50 s", v, v is not None and v < 0.50, f"{v or 0:.3f} s")
    full, hugo, pelican = (seconds(small, k) for k in ("publisher_full", "hugo_full", "pelican_full"))
    ratio = full / hugo if full and hugo else None
    add("full build vs Hugo, same files, same run", "<= 1.5x Hugo's time", ratio,
        ratio is not None and ratio <= 1.5, f"{ratio:.2f}x Hugo's ({full:.2f} s vs {hugo:.2f} s)" if ratio else "")
    if ratio is None and small and not tools["hugo"]:
        out[-1]["measured"] = "not run (hugo not found)"
    faster = pelican / full if full and pelican else None
    add("full build vs Pelican, same run", ">= 5x faster", faster, faster is not None and faster >= 5,
        f"{faster:.1f}x faster ({full:.2f} s vs {pelican:.2f} s)" if faster else "")
    if faster is None and small and not tools["pelican"]:
        out[-1]["measured"] = "not run (pelican not found)"
    page = small["largest_page"] if small else None
    size = page["bytes"] / KB if page else None  # type: ignore[index]
    add(f"largest HTML page in dist/: {page['path'] if page else '-'}", "< 150 KB", size,  # type: ignore[index]
        size is not None and size < 150, f"{size or 0:.1f} KB ({page['bytes']:,} bytes)" if page else "")  # type: ignore[index]
    big_full = seconds(big, "publisher_full")
    times = big_full / full if big_full and full else None
    add("N = 10,000: full build", "<= 10.5x the N = 1,000 time", times, times is not None and times <= 10.5,
        f"{times:.2f}x ({big_full:.2f} s vs {full:.2f} s)" if times else "")
    peaks = {k: big[k]["peak_mb"] for k in PUBLISHER_BUILDS} if big else {}  # type: ignore[index]
    worst = max(peaks, key=peaks.get) if peaks else ""  # type: ignore[arg-type]
    peak = peaks.get(worst)
    add("N = 10,000: peak RSS", "< 600 MB", peak, peak is not None and peak < 600,
        f"{peak or 0:.0f} MB ({PUBLISHER_BUILDS.get(worst)}; " + ", ".join(
            f"{PUBLISHER_BUILDS[k]} {v:.0f}" for k, v in peaks.items() if k != worst) + ")")
    return out


def width(text: str) -> int:
    """Columns `text` takes in a terminal (CJK characters take two: the tag pages' paths are Chinese)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def target_table(shape: str, checks: list[dict[str, object]], repeat: int, busy: float = 0.0) -> str:
    head = ("measure, N = 1,000", "measured", "target", "result")
    cells = [head] + [(str(c["measure"]), str(c["measured"]), str(c["target"]), str(c["result"])) for c in checks]
    widths = [max(width(row[k]) for row in cells) for k in range(4)]
    fmt = lambda row: "| " + " | ".join(v + " " * (w - width(v)) for v, w in zip(row, widths, strict=True)) + " |"  # noqa: E731
    lines = [f"TARGET TABLE, {shape} corpus ({os.cpu_count()} cores; median of {repeat}; whole commands include "
             f"interpreter start-up; other processes used {busy:.2f} cores meanwhile)", fmt(head),
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [fmt(row) for row in cells[1:]]
    failed = sum(1 for c in checks if c["result"] == "FAIL")
    missing = sum(1 for c in checks if c["result"] == "not run")
    lines.append(f"  {len(checks) - failed - missing} pass, {failed} fail, {missing} not run")
    return "\n".join(lines)


def extras_table(extras: dict[str, object]) -> str:
    e, d = extras["email"], extras["deploy"]
    lines = [f"Email: render {e['render_ms']:.2f} ms per issue; {e['per_message_us']:.1f} us per "  # type: ignore[index]
             f"personalized message (100,000 made)",
             f"Deploy (moto S3, 1,000 issues): no-change {d['nochange_s']:.2f} s ({d['files']} files), "  # type: ignore[index]
             f"first {d['first_s']:.1f} s"]  # type: ignore[index]
    for s in extras["send"]:  # type: ignore[union-attr]
        lines.append(f"Send (null transport): {s['size']:,} subscribers at {s['rate']:,.0f} messages/s, "
                     f"peak {s['peak_mb']:.0f} MB")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", choices=corpus.SHAPES, default=list(corpus.SHAPES),
                        help="corpus shapes to run (default: all)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000],
                        help="numbers of issues (default 1000; the targets need 1000, and 10000 for their last rows)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-others", action="store_true", help="do not run Hugo and Pelican")
    parser.add_argument("--others-max", type=int, metavar="N", help="run Hugo and Pelican only up to N issues")
    parser.add_argument("--skip-extras", action="store_true", help="no email, deploy and send figures")
    args = parser.parse_args()
    started = datetime.now(UTC)
    # As installed: pip compiles a package's bytecode, and a user's publisher does not compile itself on every run
    # (a machine with PYTHONDONTWRITEBYTECODE set would otherwise add ~0.08 s to every command).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    under_test = publisher_under_test()
    subprocess.run(PUBLISHER[:1] + ["-m", "compileall", "-q", str(Path(under_test).parent)], check=False)
    print(f"publisher under test: {under_test}", file=sys.stderr)
    hugo = subprocess.run(["hugo", "version"], capture_output=True, text=True).stdout.strip() if shutil.which("hugo") \
        else None
    pelican = subprocess.run([sys.executable, "-m", "pelican", "--version"], capture_output=True, text=True)
    tools = {"hugo": hugo is not None and not args.skip_others,
             "pelican": pelican.returncode == 0 and not args.skip_others}
    builds, checks, texts = {}, {}, []
    for shape in args.shapes:
        builds[shape] = bench_builds(shape, args.sizes, args.repeat, not args.skip_others, args.others_max)
        checks[shape] = targets(builds[shape], tools)
        busy = max(float(r["other_cpu"]) for r in builds[shape])  # type: ignore[arg-type]
        texts += [table(shape, builds[shape]), "", target_table(shape, checks[shape], args.repeat, busy), ""]
        print("\n".join(texts[-4:]), flush=True)
    extras = {} if args.skip_extras else bench_extras()
    if extras:
        texts.append(extras_table(extras))
        print(texts[-1])
    results = {"started": started.isoformat(timespec="seconds"), "machine": {"cpus": os.cpu_count(),
               "python": platform.python_version(), "platform": platform.platform()},
               "publisher": under_test, "versions": {"hugo": hugo, "pelican": pelican.stdout.strip() or None},
               "repeat": args.repeat, "shapes": args.shapes, "sizes": args.sizes, "builds": builds,
               "targets": checks, "extras": extras, "table": "\n".join(texts).rstrip()}
    folder = BENCH / "results"
    folder.mkdir(exist_ok=True)
    path = folder / f"run-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwritten to {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
