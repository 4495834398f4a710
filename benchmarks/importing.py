"""Import speed (issue 18): 1,000 past issues from a feed and 100,000 subscribers from a Mailchimp audience
export, a plain CSV and a Substack export, each through the command a user runs (`publisher import ...`, a
process of its own, interpreter start-up included). Prints a table of figures and writes it as JSON to
benchmarks/results/importing-<UTC time>.json.

    python benchmarks/importing.py [--issues 1000] [--subscribers 100000] [--repeat 3] [--per-page 100]
                                   [--only feed mailchimp csv substack] [--no-profile] [--no-json]

The inputs are generated in a temp folder (seeded: the same sizes give the same bytes every time):
- feed: RSS 2.0 with content:encoded bodies shaped like the real content, a daily AI-news digest in Chinese
  mixed with English: about 14 KB of HTML an entry with about 150 links, nested <ul> lists, <strong>, <h2>,
  images on other hosts, a table in one entry of five, <sup><a href="#fn1"> footnotes with a footnotes list;
  8 <category> an entry out of 13, each shared by 25-100 % of the entries; dc:creator, a media:thumbnail.
  publisher refused a feed page over 5 MB when this was written (MAX_BYTES), and 1,000 such entries are about
  15 MB, so the feed is an RFC 5005 archived feed: feed.xml (the newest --per-page entries) and archive pages
  linked by rel="prev-archive", every page a file in one folder; the one-file feed is also tried once and
  its outcome shown.
- mailchimp: an audience export zip, subscribed / unsubscribed / cleaned / nonsubscribed_members_export_<id>.csv
  (70 / 15 / 5 / 10 % of the rows; the columns of docs/import-formats.md section 1; TAGS cells written as
  Mailchimp does, each tag quoted inside the quoted cell; a third of the names Chinese; 1 % of the addresses in
  two files).
- csv: `email,name,tags` (tags separated by ';'), for `publisher import csv`.
- substack: an export zip with posts.csv and email_list.<name>.csv
  (`email,active_subscription,expiry,email_disabled,prefer_digests,created_at`).

Measures (median of --repeat runs; peak RSS from GNU time, the largest of the runs):
- cold: into a fresh newsletter folder (`publisher init`) / a fresh subscribers.db;
- again: the same import a second time (idempotent: nothing written, every row unchanged);
- dry run (feed): `--dry-run` into a fresh folder.
Targets (issue 18: "importing 1,000 issues and 100,000 subscribers; target under 10 s and under 5 s on 2
cores"), read here as: the issues under 10 s, the subscribers under 5 s (each source), whole commands, on 2
cores. A machine with more or fewer cores, or one busy with other work (the "other cores" figure), is not
that machine: the table says so. No assertion anywhere: the figures are for reading.
Then the slowest measure runs once more under cProfile (/tmp/imp.prof), and the slowest of the other kind
(issues or subscribers; /tmp/imp-2.prof), and their top functions (cumulative) are printed.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import pstats
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[0] = str(REPO)  # not this folder: its email.py would shadow the standard library's `email`

from email.utils import format_datetime  # noqa: E402 (after the path is fixed)

from benchmarks.vocabulary import (  # noqa: E402
    EN_TITLES,
    HOSTS,
    IMAGE_HOSTS,
    LINKY_TAGS,
    ORGS,
    REMARKS,
    REPOS,
    SECTIONS,
    THINGS,
    VERBS,
)

GNU_TIME = "/usr/bin/time"
_SCRIPT = Path(sys.executable).parent / "publisher"
# The command a user runs: the venv's console script when there is one (else `python -m publisher`).
PUBLISHER = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "publisher"]
TARGETS = {"feed": 10.0, "mailchimp": 5.0, "csv": 5.0, "substack": 5.0}

# ---------------------------------------------------------------------------------------------- the inputs

OLD_SITE = "https://ai-daily.example.net"


def entry_tags(rng: random.Random) -> list[str]:
    """8 of the 13 tags, each with its share as its chance (as build.py's linky_tags)."""
    chosen, total, u = [], 0.0, rng.random()
    for tag, share in LINKY_TAGS:
        if int(total + share - u + 1) > int(total - u + 1):
            chosen.append(tag)
        total += share
    rng.shuffle(chosen)
    return chosen


def a(href: str, text: str) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def item_html(rng: random.Random, n: int, k: int, footnote: int | None) -> tuple[str, int]:
    """One <li> of the digest (a bold lead, links, a nested list of more links) and its number of links."""
    org = rng.choice(ORGS)
    repo = f"https://github.com/{rng.choice(ORGS)}/{rng.choice(REPOS)}-{rng.randint(1, 99)}"
    note = f'<sup><a href="#fn{footnote}" id="fnref{footnote}">{footnote}</a></sup>' if footnote else ""
    links = 3
    remark = escape(rng.choice(REMARKS)) if rng.random() < 0.15 else ""
    lead = (f"<strong>{escape(org)}</strong> {rng.choice(VERBS)}{rng.choice(THINGS)}：{remark}"
            f"{note}{a(rng.choice(HOSTS) + str(rng.randint(10**6, 10**8)), '原文')} · "
            f"{a(f'https://news.ycombinator.com/item?id={rng.randint(10**7, 5 * 10**7)}', '讨论')} · "
            f"{a(f'https://x.com/{org}/status/{rng.randint(1, 10**18)}', 'X')}")
    sub = []
    kind = rng.random()
    if kind < 0.6:
        sub.append(f"代码：{a(repo, repo[19:])} · {a(repo + '/blob/main/README.md', 'README')}")
        links += 2
    if kind > 0.25:
        paper = f"https://arxiv.org/abs/{2000 + n % 20:04d}.{rng.randint(10000, 99999)}"
        sub.append(f"论文：{a(paper, rng.choice(EN_TITLES))}"
                   f"，作者解读见 {a(f'https://x.com/{org}/status/{rng.randint(1, 10**18)}', 'X')}")
        links += 2
    if kind > 0.7:
        sub.append(f"模型：{a(f'https://huggingface.co/{org}/{rng.choice(REPOS)}-{k}', 'Hugging Face')} · "
                   f"{a(f'https://huggingface.co/spaces/{org}/demo-{n}-{k}', 'Demo')}")
        links += 2
    nested = "<ul>" + "".join(f"<li>{s}</li>" for s in sub) + "</ul>" if sub else ""
    return f"<li>{lead}{nested}</li>", links


def table_html(rng: random.Random) -> str:
    rows = "".join(f"<tr><td>{rng.choice(ORGS)}-{i}</td><td>{rng.randint(7, 400)}B</td>"
                   f"<td>{rng.choice([32, 128, 1000])}K</td><td>${rng.randint(1, 30) / 10}</td></tr>" for i in range(4))
    return ("<table><thead><tr><th>模型</th><th>参数量</th><th>上下文</th><th>价格</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def entry_html(rng: random.Random, n: int, when: datetime) -> tuple[str, int]:
    """Entry n's content:encoded body (about 13 KB, about 150 links) and its number of links."""
    parts = [f"<p>今天的 AI 新闻很多，我们挑了最重要的几条，花十分钟就能读完。<strong>{rng.choice(THINGS)}</strong> "
             "是今天的主角；Today: models, agents, chips and funding.</p>",
             f'<p><img src="{rng.choice(IMAGE_HOSTS)}{when:%Y%m%d}-cover.jpg" alt="今日封面"></p>']
    links, size, k, notes = 0, sum(len(p.encode()) for p in parts), 0, 0
    sections = rng.sample(SECTIONS, len(SECTIONS))
    while links < 148:
        name = sections[k % len(sections)] + ("" if k < len(sections) else f"（{k // len(sections) + 1}）")
        items = []
        for i in range(rng.randint(5, 9)):
            if links >= 148:
                break
            footnote = None
            if notes < 3 and rng.random() < 0.1:
                notes += 1
                footnote = notes
            html, count = item_html(rng, n, k * 10 + i, footnote)
            items.append(html)
            links += count
        part = f"<h2>{escape(name)}</h2><ul>{''.join(items)}</ul>"
        if rng.random() < 0.5:
            part += f'<p><img src="{rng.choice(IMAGE_HOSTS)}{n}-{k}.png" alt="配图"></p>'
        if n % 5 == 0 and k == 1:
            part += table_html(rng)
        part += "<hr>"
        parts.append(part)
        size += len(part.encode())
        k += 1
    if notes:
        parts.append('<div class="footnotes"><ol>' + "".join(
            f'<li id="fn{i}">注 {i}：数据来自官方公告，{a(rng.choice(HOSTS) + str(i), "链接")}。'
            f'<a href="#fnref{i}">↩</a></li>' for i in range(1, notes + 1)) + "</ol></div>")
        links += 2 * notes
    return "".join(parts), links


def write_feed(folder: Path, n: int, per_page: int) -> dict[str, object]:
    """The feed as one file (feed-all.xml) and as an RFC 5005 archived feed (feed.xml + archive-K.xml)."""
    rng = random.Random(18)
    start = datetime(2021, 1, 1, 7, 30, tzinfo=UTC)
    items, total_bytes, total_links, shares = [], 0, 0, {}
    for i in range(n):
        when = start + timedelta(days=i)
        html, links = entry_html(rng, i, when)
        total_bytes += len(html.encode())
        total_links += links
        tags = entry_tags(rng)
        for t in tags:
            shares[t] = shares.get(t, 0) + 1
        title = f"AI 日报 {when:%Y-%m-%d}：{rng.choice(ORGS)} {rng.choice(VERBS)}{rng.choice(THINGS)}"
        link = f"{OLD_SITE}/p/ai-daily-{when:%Y-%m-%d}"
        cats = "".join(f"<category>{escape(t)}</category>" for t in tags)
        items.append(
            f"<item><title>{escape(title)}</title><link>{link}</link><guid isPermaLink=\"true\">{link}</guid>"
            f"<pubDate>{format_datetime(when)}</pubDate><dc:creator>编辑部</dc:creator>{cats}"
            f"<description>{escape('今天的 AI 新闻：' + rng.choice(REMARKS))}</description>"
            f"<media:thumbnail url=\"{rng.choice(IMAGE_HOSTS)}{when:%Y%m%d}-cover.jpg\"/>"
            f"<content:encoded><![CDATA[{html}]]></content:encoded></item>\n")
    items.reverse()  # newest first, as feeds are

    def page(chunk: list[str], links: str) -> str:
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
                'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
                'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/" '
                'xmlns:atom="http://www.w3.org/2005/Atom" xmlns:fh="http://purl.org/syndication/history/1.0">\n'
                f"<channel><title>AI 日报</title><link>{OLD_SITE}/</link><description>每天十分钟，读懂 AI</description>"
                f"<language>zh-CN</language>{links}\n" + "".join(chunk) + "</channel></rss>\n")

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "feed-all.xml").write_text(page(items, ""), encoding="utf-8")
    chunks = [items[i:i + per_page] for i in range(0, len(items), per_page)]
    names = ["feed.xml"] + [f"archive-{len(chunks) - 1 - k}.xml" for k in range(1, len(chunks))]
    for k, chunk in enumerate(chunks):
        links = ""
        if k:
            links += '<fh:archive/><atom:link rel="current" href="feed.xml"/>'
        if k + 1 < len(chunks):
            links += f'<atom:link rel="prev-archive" href="{names[k + 1]}"/>'
        if k > 1:
            links += f'<atom:link rel="next-archive" href="{names[k - 1]}"/>'
        (folder / names[k]).write_text(page(chunk, links), encoding="utf-8")
    return {"entries": n, "pages": len(chunks), "per_page": per_page,
            "kb_html_per_entry": total_bytes / n / 1024, "links_per_entry": total_links / n,
            "one_file_mb": (folder / "feed-all.xml").stat().st_size / 2**20,
            "largest_page_mb": max((folder / nm).stat().st_size for nm in names) / 2**20,
            "tags": len(shares), "tag_share_min": min(shares.values()) / n, "tag_share_max": max(shares.values()) / n}


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英",
         "晓东", "思远"]
FIRST = ["Anna", "Ben", "Carla", "David", "Emma", "Felix", "Grace", "Hiro", "Ines", "Jonas", "Kate", "Liam", "Mona",
         "Noah", "Olga", "Pablo", "Rosa", "Sam", "Tara", "Yuki"]
LAST = ["Smith", "Müller", "García", "Rossi", "Tanaka", "Kim", "Nguyen", "Dubois", "Silva", "Novak", "Berg", "Chen"]
DOMAINS = ["gmail.com", "qq.com", "163.com", "outlook.com", "foxmail.com", "126.com", "hotmail.com", "yahoo.com",
           "icloud.com", "protonmail.com", "sina.com", "bench-corp.cn", "uni-heidelberg.de", "mit.edu"]
SUB_TAGS = ["Lorem Editors", "AI", "大模型", "Weekly digest", "读者, 早期", "VIP", "开发者", "Investors"]


def person(rng: random.Random, n: int) -> tuple[str, str, str]:
    """(address, first name, last name): a third of the names Chinese, some empty."""
    if n % 3 == 0:
        first, last = rng.choice(GIVEN), rng.choice(SURNAMES)
        local = f"reader{n}"
    elif n % 17 == 0:
        first, last = "", ""
        local = f"anon.{n}"
    else:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = f"{first.lower()}.{n}"
    return f"{local}@{rng.choice(DOMAINS)}", first, last


def stamp(rng: random.Random) -> str:
    return (datetime(2019, 1, 1) + timedelta(seconds=rng.randrange(6 * 365 * 86400))).strftime("%Y-%m-%d %H:%M:%S")


COMMON = ["Email Address", "First Name", "Last Name", "Company", "Position", "ZIP Code", "MEMBER_RATING", "OPTIN_TIME",
          "OPTIN_IP", "CONFIRM_TIME", "CONFIRM_IP", "LATITUDE", "LONGITUDE", "GMTOFF", "DSTOFF", "TIMEZONE", "CC",
          "REGION"]
MAILCHIMP = {"subscribed": COMMON + ["LAST_CHANGED", "LEID", "EUID", "NOTES", "TAGS"],
             "unsubscribed": COMMON + ["UNSUB_TIME", "UNSUB_CAMPAIGN_TITLE", "UNSUB_CAMPAIGN_ID", "UNSUB_REASON",
                                       "UNSUB_REASON_OTHER", "LEID", "EUID", "NOTES", "TAGS"],
             "cleaned": COMMON + ["CLEAN_TIME", "CLEAN_CAMPAIGN_TITLE", "CLEAN_CAMPAIGN_ID", "LEID", "EUID", "NOTES",
                                  "TAGS"],
             "nonsubscribed": COMMON + ["LAST_CHANGED", "LEID", "EUID", "NOTES", "TAGS"]}


def tags_cell(rng: random.Random) -> str:
    """Mailchimp's TAGS: a CSV row inside the cell, every tag quoted ("Lorem Editors","AI")."""
    chosen = rng.sample(SUB_TAGS, rng.choice([0, 1, 1, 2, 2, 3]))
    return ",".join('"' + t.replace('"', '""') + '"' for t in chosen)


def write_mailchimp(path: Path, n: int) -> dict[str, object]:
    rng = random.Random(1818)
    list_id = "b6300f8dad"
    kinds = ["subscribed"] * 70 + ["unsubscribed"] * 15 + ["cleaned"] * 5 + ["nonsubscribed"] * 10
    buffers = {k: io.StringIO(newline="") for k in MAILCHIMP}
    writers = {k: csv.writer(buffers[k], lineterminator="\r\n") for k in MAILCHIMP}
    for k, w in writers.items():
        w.writerow(MAILCHIMP[k])
    counts = dict.fromkeys(MAILCHIMP, 0)
    people = []
    for i in range(n):
        kind = kinds[i % 100]
        if i % 100 == 99 and people:  # 1 %: an address already in another file (the most restrictive wins)
            email, first, last = people[rng.randrange(len(people))]
        else:
            email, first, last = person(rng, i)
            people.append((email, first, last))
        optin = stamp(rng)
        row = [email, f" {first} " if i % 29 == 0 else first, last, rng.choice(["", "", "Lorem Co.", "字节跳动"]),
               rng.choice(["", "Engineer", "产品经理"]), rng.choice(["", "100080", "10115"]), rng.randint(1, 5), optin,
               f"203.0.113.{i % 250}", optin, f"198.51.100.{i % 250}", "39.9042", "116.4074", "8", "0",
               "Asia/Shanghai", "CN", "BJ"]
        if kind in ("subscribed", "nonsubscribed"):
            row += [optin, f"{rng.randint(10**8, 10**9)}", f"{rng.getrandbits(40):010x}", "", tags_cell(rng)]
        elif kind == "unsubscribed":
            row += [stamp(rng), "AI 日报 第 100 期", f"{rng.getrandbits(40):010x}", "NORMAL", "",
                    f"{rng.randint(10**8, 10**9)}", f"{rng.getrandbits(40):010x}", "", tags_cell(rng)]
        else:
            row += [stamp(rng), "AI 日报 第 200 期", f"{rng.getrandbits(40):010x}", f"{rng.randint(10**8, 10**9)}",
                    f"{rng.getrandbits(40):010x}", "", tags_cell(rng)]
        writers[kind].writerow(row)
        counts[kind] += 1
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for k, buffer in buffers.items():
            archive.writestr(f"{k}_members_export_{list_id}.csv", buffer.getvalue().encode("utf-8"))
    return {"rows": n, "files": counts, "zip_mb": path.stat().st_size / 2**20}


def write_csv(path: Path, n: int) -> dict[str, object]:
    rng = random.Random(1819)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["email", "name", "tags"])
        for i in range(n):
            email, first, last = person(rng, i)
            name = f"{last}{first}" if i % 3 == 0 else " ".join(p for p in (first, last) if p)
            w.writerow([email, name, ";".join(rng.sample(SUB_TAGS[:4] + SUB_TAGS[5:], rng.choice([0, 1, 2])))])
    return {"rows": n, "mb": path.stat().st_size / 2**20}


def write_substack(path: Path, n: int) -> dict[str, object]:
    rng = random.Random(1820)
    buffer = io.StringIO(newline="")
    w = csv.writer(buffer, lineterminator="\n")
    w.writerow(["email", "active_subscription", "expiry", "email_disabled", "prefer_digests", "created_at"])
    disabled = 0
    for i in range(n):
        email, _, _ = person(rng, i)
        paid = i % 20 == 0
        off = i % 9 == 0
        disabled += off
        created = datetime(2019, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(6 * 365 * 86400))
        w.writerow([email, str(paid).lower(), (created + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
                    if paid else "", str(off).lower(), "false", created.strftime("%Y-%m-%dT%H:%M:%S.") +
                    f"{rng.randrange(1000):03d}Z"])
    posts = io.StringIO(newline="")
    p = csv.writer(posts, lineterminator="\n")
    p.writerow(["post_id", "post_date", "is_published", "email_sent_at", "inbox_sent_at", "type", "audience",
                "title", "subtitle", "podcast_url"])
    for i in range(50):
        p.writerow([f"{1000 + i}.ai-daily-{i}", "2024-01-01T08:00:00.000Z", "true", "2024-01-01T08:00:00.000Z",
                    "2024-01-01T08:00:00.000Z", "newsletter", "everyone", f"AI 日报 {i}", "", ""])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("posts.csv", posts.getvalue())
        archive.writestr("email_list.ai-daily.csv", buffer.getvalue().encode("utf-8"))
    return {"rows": n, "email_disabled": disabled, "zip_mb": path.stat().st_size / 2**20}


# ---------------------------------------------------------------------------------------------- measuring


def run(command: list[str], cwd: Path) -> tuple[float, float, float, str]:
    """Wall seconds, peak resident MB, CPU seconds (user + system) and stdout of one command (as
    benchmarks/run.py: through GNU time). The CPU seconds are what a quiet machine's wall time would be for
    one-process, one-thread work: a busy machine stretches the wall time, hardly the CPU time."""
    timed = [GNU_TIME, "-f", "%M %U %S", "-o", "/dev/stderr"] if Path(GNU_TIME).exists() else []
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(timed + command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out_b, err_b = process.communicate()
    seconds = time.perf_counter() - started
    out, err = out_b.decode("utf-8", "replace"), err_b.decode("utf-8", "replace")
    if process.returncode != 0:
        said = [ln for ln in (out + err).strip().splitlines() if not ln.startswith("Command exited with")]
        if timed and said and re.fullmatch(r"\d+ [\d.]+ [\d.]+", said[-1].strip()):
            said.pop()  # GNU time's peak RSS line
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n" + "\n".join(said)[-1500:])
    # GNU time's line comes last (after any progress bar)
    match = re.search(r"(\d+) ([\d.]+) ([\d.]+)\s*$", err) if timed else None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if match:
        peak_kb, cpu = int(match.group(1)), float(match.group(2)) + float(match.group(3))
    else:
        peak_kb = after.ru_maxrss
        cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return seconds, peak_kb / 1024, cpu, out


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds so far of the whole machine and of this process and its waited-for children (run.py's)."""
    ours = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0, ours
    busy = sum(int(fields[k]) for k in (0, 1, 2, 5, 6, 7))
    return busy / os.sysconf("SC_CLK_TCK"), ours


def measure(command: list[str], cwd: Path, repeat: int, before: Callable[[], None] | None = None) -> dict:
    walls, peaks, cpus, out = [], [], [], ""
    cpu_before, started = cpu_seconds(), time.perf_counter()
    for _ in range(repeat):
        if before:
            before()
        os.sync()
        seconds, peak, cpu, out = run(command, cwd)
        walls.append(seconds)
        cpus.append(cpu)
        peaks.append(peak)
    busy, ours = (x - y for x, y in zip(cpu_seconds(), cpu_before, strict=True))
    return {"seconds": statistics.median(walls), "runs": walls, "cpu_seconds": statistics.median(cpus),
            "peak_mb": max(peaks),
            "other_cores": max(0.0, busy - ours) / (time.perf_counter() - started),
            "output": out.strip().splitlines()[:6]}


def fresh_folder(template: Path, folder: Path) -> Callable[[], None]:
    def reset() -> None:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(template, folder, symlinks=True)
    return reset


def fresh_db(folder: Path) -> Callable[[], None]:
    def reset() -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            (folder / f"subscribers.db{suffix}").unlink(missing_ok=True)
    return reset


def publisher_under_test() -> str:
    out = subprocess.run([sys.executable, "-c", "import publisher; print(publisher.__file__)"], capture_output=True,
                         text=True, check=True, cwd=tempfile.gettempdir())
    return out.stdout.strip()


# What every command runs through (interpreter, runpy, click, the CLI's entry point): left out of the top list.
WRAPPERS = re.compile(r"^(~:0\(<built-in method builtins\.exec>\)|<string>|<frozen runpy>|click/|publisher/__main__|"
                      r"publisher/cli\.py:\d+\((main|invoke|_run)\))")


def profile_top(command_args: list[str], cwd: Path, before: Callable[[], None], prof: Path,
                top: int = 15) -> tuple[list, list]:
    before()
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "publisher", *command_args], cwd=cwd,
                   check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stats = pstats.Stats(str(prof))
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (file, line, name), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        short = file.replace(str(REPO) + "/", "").replace(str(Path(sys.prefix)) + "/", "")
        short = re.sub(r"^.*/(site-packages|lib/python3\.\d+)/", "", short)
        function = f"{short}:{line}({name})"
        if not WRAPPERS.match(function):
            rows.append({"function": function, "calls": calls, "tottime": tottime, "cumtime": cumtime})
    by_self = sorted(rows, key=lambda r: -r["tottime"])[:top]
    rows.sort(key=lambda r: -r["cumtime"])
    return [{"total_s": total}] + rows[:top], by_self


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issues", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--per-page", type=int, default=100, help="feed entries a page of the archived feed")
    parser.add_argument("--only", nargs="+", choices=list(TARGETS), default=list(TARGETS))
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-json", action="store_true")
    args = parser.parse_args()
    started = datetime.now(UTC)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed (see benchmarks/run.py)
    under_test = publisher_under_test()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(under_test).parent)], check=False)
    print(f"publisher under test: {under_test} ({' '.join(PUBLISHER)})", file=sys.stderr)
    cores = os.cpu_count()
    rows: list[dict] = []
    inputs: dict[str, object] = {}
    specs: dict[str, tuple[list[str], Path, Callable[[], None]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        root = Path(tmp)
        template = root / "template"
        run(PUBLISHER + ["init", str(template), "--title", "AI 日报", "--url", "https://bench.example.com/",
                         "--language", "zh-CN", "--timezone", "Asia/Shanghai", "--author", "编辑部"], root)
        news = root / "news"
        fresh_folder(template, news)()
        inputs["template_content_files"] = sum(1 for p in (template / "content").rglob("*") if p.is_file()) \
            if (template / "content").exists() else 0

        def add(measure_name: str, source: str, n: int, result: dict, target: float | None) -> None:
            rows.append({"measure": measure_name, "source": source, "n": n, **result, "target_s": target,
                         "met": None if target is None else result["seconds"] < target})
            runs = ", ".join(f"{s:.2f}" for s in result["runs"])
            print(f"  {measure_name}: {result['seconds']:.2f} s (runs {runs}; CPU {result['cpu_seconds']:.2f} s), "
                  f"peak {result['peak_mb']:.0f} MB", file=sys.stderr, flush=True)

        if "feed" in args.only:
            feeds = root / "feeds"
            inputs["feed"] = write_feed(feeds, args.issues, args.per_page)
            print(f"  feed written: {inputs['feed']}", file=sys.stderr, flush=True)
            reset = fresh_folder(template, news)
            try:  # the one-file feed, once: publisher refuses a page over 5 MB
                reset()
                seconds, peak, _, out = run(PUBLISHER + ["import", "feed", str(feeds / "feed-all.xml")], news)
                inputs["one_file_feed"] = {"outcome": "imported", "seconds": seconds, "peak_mb": peak,
                                           "output": out.strip().splitlines()[:3]}
            except RuntimeError as exc:
                inputs["one_file_feed"] = {"outcome": "refused", "error": str(exc).strip().splitlines()[-1][:300]}
            print(f"  one-file feed: {inputs['one_file_feed']}", file=sys.stderr, flush=True)
            feed_args = ["import", "feed", str(feeds / "feed.xml")]
            dry = feed_args + ["--dry-run"]
            try:
                add("feed cold", "feed", args.issues, measure(PUBLISHER + feed_args, news, args.repeat, reset), 10.0)
                specs["feed cold"] = (feed_args, news, reset)
                inputs["feed"]["files_written"] = sum(1 for _ in (news / "content").rglob("*.md"))  # type: ignore[index]
                add("feed again (idempotent)", "feed", args.issues, measure(PUBLISHER + feed_args, news, args.repeat),
                    10.0)
                specs["feed again (idempotent)"] = (feed_args, news, lambda: None)
                add("feed --dry-run", "feed", args.issues, measure(PUBLISHER + dry, news, args.repeat, reset), 10.0)
                specs["feed --dry-run"] = (dry, news, reset)
            except RuntimeError as exc:
                inputs["feed"]["error"] = str(exc)[-500:]  # type: ignore[index]
                print(f"  feed: {exc}", file=sys.stderr, flush=True)

        writers = {"mailchimp": (write_mailchimp, "audience.zip"), "csv": (write_csv, "subscribers.csv"),
                   "substack": (write_substack, "substack-export.zip")}
        for source, (writer, file_name) in writers.items():
            if source not in args.only:
                continue
            path = root / file_name
            inputs[source] = writer(path, args.subscribers)
            reset = fresh_folder(template, news)
            reset()
            db = fresh_db(news)
            # the profile runs after every measure, in the same folder: a fresh one for it (no issues, no db)
            fresh = reset
            sub_args = ["import", source, str(path)]
            try:
                add(f"{source} cold", source, args.subscribers, measure(PUBLISHER + sub_args, news, args.repeat, db),
                    TARGETS[source])
                specs[f"{source} cold"] = (sub_args, news, fresh)
                add(f"{source} again (idempotent)", source, args.subscribers,
                    measure(PUBLISHER + sub_args, news, args.repeat), TARGETS[source])
                specs[f"{source} again (idempotent)"] = (sub_args, news, lambda: None)
            except RuntimeError as exc:
                inputs[source]["error"] = str(exc)[-500:]  # type: ignore[index]
                print(f"  {source}: {exc}", file=sys.stderr, flush=True)

        profiles: list[dict[str, object]] = []
        if rows and not args.no_profile:
            # the slowest measure, and the slowest of the other kind (issues / subscribers) when it is different
            slowest = max((r for r in rows if r["measure"] in specs), key=lambda r: r["seconds"])
            kind = slowest["source"] == "feed"
            other = [r for r in rows if r["measure"] in specs and (r["source"] == "feed") != kind]
            for k, chosen in enumerate([slowest] + ([max(other, key=lambda r: r["seconds"])] if other else [])):
                cmd, cwd, before = specs[chosen["measure"]]
                prof = Path(tempfile.gettempdir()) / ("imp.prof" if k == 0 else "imp-2.prof")
                top, by_self = profile_top(cmd, cwd, before, prof)
                profiles.append({"measure": chosen["measure"], "command": "publisher " + " ".join(cmd),
                                 "total_s": top[0]["total_s"], "top": top[1:], "top_tottime": by_self,
                                 "prof_file": str(prof)})

    busy = max((r["other_cores"] for r in rows), default=0.0)
    lines = [f"IMPORT BENCHMARK ({cores} cores; median of {args.repeat}; whole commands, interpreter start-up "
             f"included; other processes used up to {busy:.2f} cores meanwhile)"]
    if "feed" in inputs:
        f = inputs["feed"]
        lines.append(f"  feed: {f['entries']:,} RSS entries, {f['kb_html_per_entry']:.1f} KB of HTML and "  # type: ignore[index]
                     f"{f['links_per_entry']:.0f} links each, {f['tags']} categories on "  # type: ignore[index]
                     f"{f['tag_share_min']:.0%}-{f['tag_share_max']:.0%} of the entries; {f['pages']} archive pages "  # type: ignore[index]
                     f"of {f['per_page']} ({f['largest_page_mb']:.1f} MB at most)")  # type: ignore[index]
        o = inputs["one_file_feed"]
        lines.append(f"  one-file feed ({f['one_file_mb']:.1f} MB): " + (  # type: ignore[index]
            f"imported in {o['seconds']:.2f} s" if o["outcome"] == "imported" else f"refused: {o['error']}"))  # type: ignore[index]
    for source in ("mailchimp", "csv", "substack"):
        if source in inputs:
            i = inputs[source]
            files = i.get("files", {})  # type: ignore[union-attr]
            error = str(i.get("error", "")).strip().splitlines()  # type: ignore[union-attr]
            lines.append(f"  {source}: {i['rows']:,} rows"  # type: ignore[index]
                         + (f" ({', '.join(f'{k} {v:,}' for k, v in files.items())})" if files else "")
                         + (f"; FAILED: {error[-1]}" if error else ""))
    lines.append(f"| {'measure':<28} | {'N':>7} | {'seconds':>7} | {'CPU s':>7} | {'peak MB':>7} | "
                 f"{'other cores':>11} | {'target':>8} | {'result':<6} |")
    lines.append("|" + "|".join("-" * w for w in (30, 9, 9, 9, 9, 13, 10, 8)) + "|")
    for r in rows:
        result = "-" if r["met"] is None else "met" if r["met"] else "missed"
        target = f"< {r['target_s']:.0f} s"
        lines.append(f"| {r['measure']:<28} | {r['n']:>7,} | {r['seconds']:7.2f} | {r['cpu_seconds']:7.2f} | "
                     f"{r['peak_mb']:7.0f} | "
                     f"{r['other_cores']:11.2f} | {target:>8} | {result:<6} |")
    met = sum(1 for r in rows if r["met"])
    lines.append(f"  {met} met, {len(rows) - met} missed (targets: issue 18, read as issues < 10 s, subscribers < 5 s "
                 f"each source, on 2 cores; this machine has {cores}; result from seconds, the wall time; CPU s: "
                 "user + system of the command, what a quiet machine's wall time would about be)")
    for k, profile in enumerate(profiles):
        lines.append(f"PROFILE of the {'slowest measure' if k == 0 else 'slowest of the other kind'}, "
                     f"{profile['measure']}: `{profile['command']}` ({profile['total_s']:.1f} s under cProfile, "
                     f"{profile['prof_file']}), top 15 by cumulative time")
        lines.append(f"  {'cumtime':>8} {'tottime':>8} {'calls':>9}  function")
        for t in profile["top"]:  # type: ignore[attr-defined]
            lines.append(f"  {t['cumtime']:8.2f} {t['tottime']:8.2f} {t['calls']:9,}  {t['function']}")
    text = "\n".join(lines)
    print(text, flush=True)
    if not args.no_json:
        results = {"started": started.isoformat(timespec="seconds"),
                   "machine": {"cpus": cores, "python": platform.python_version(), "platform": platform.platform()},
                   "publisher": under_test, "command": PUBLISHER, "repeat": args.repeat, "inputs": inputs,
                   "measures": rows, "profiles": profiles, "table": text}
        folder = BENCH / "results"
        folder.mkdir(exist_ok=True)
        path = folder / f"importing-{started:%Y%m%dT%H%M%SZ}.json"
        path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nwritten to {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
