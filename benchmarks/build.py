"""Build speed on a generated corpus of newsletter issues, in one of two shapes.

    python benchmarks/build.py [N] [--shape reference|linky]          (default N=1000, reference)

Generates N issues in a temp folder (`content/YYYY/YYYY-MM-DD-issue-K.md`, one a day from 2020-01-01), then
prints the time of a full build (empty cache, empty dist/), a no-change rebuild, and a rebuild after one issue
changed (in-process: no interpreter start-up; benchmarks/run.py times whole commands).

The shapes (`make_corpus(root, n, shape)`, both seeded, so the same N gives the same files every time):
- "reference": about 10 KB of Chinese/English Markdown an issue: sections of links, nested lists, bold,
  tables, code, images on other hosts; 3 tags an issue out of 12. Its output never changes (results stay
  comparable across runs of the suite).
- "linky": shaped like the real content, a daily AI-news digest: about 13 KB an issue, mostly long bullet lists
  of links (about 100 an issue), bold, nested lists, setext headings, images on other hosts, `* * *` rules;
  links to GitHub `README.md` files (absolute: the `.md` link scan sees them); relative links to other issues'
  Markdown files (`2020-03-04-issue-63.md`, `../2019/2019-12-31-issue-364.md` across years: yesterday, a week
  ago, older ones; every target exists); 8 tags an issue out of 13, each shared by 20-100 % of the issues.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[0] = str(REPO)  # not this folder: its email.py would shadow the standard library's `email`

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
from publisher.build import build, render  # noqa: E402
from publisher.config import load_config  # noqa: E402
from publisher.content import load_issues  # noqa: E402

TAGS = ["大模型", "Agents", "开源", "评测", "芯片", "政策", "OpenAI", "多模态", "机器人", "安全", "融资", "论文"]
COMPANIES = ["OpenAI", "Anthropic", "Google DeepMind", "Meta", "Mistral", "Qwen", "DeepSeek", "NVIDIA", "Moonshot"]


def section(rng: random.Random, n: int) -> str:
    company = rng.choice(COMPANIES)
    lines = [f"## {n}. {company} 的新动态", ""]
    lines.append(f"**{company}** 今天发布了新的模型与工具链，社区反应热烈。以下是要点整理，"
                 f"附上原始链接，方便大家查证。详见 https://arxiv.org/abs/2611.{rng.randint(10000, 99999)}")
    lines.append("")
    for i in range(4):
        lines.append(f"- **要点 {i + 1}**：{company} 在 [官方博客](https://example.com/{company.lower()}/{n}/{i}) "
                     f"中提到，新版本在推理速度上提升了 {rng.randint(10, 90)}%，同时降低了价格。")
        lines.append(f"  - 评测细节见 [技术报告](https://example.org/report/{n}-{i}.pdf)，"
                     f"作者 @\\_researcher{i} 在 [X](https://x.com/user{i}/status/{rng.randint(1, 10**9)}) 上做了解读")
        lines.append(f"    - 代码已开源：[GitHub](https://github.com/example/repo-{n}-{i})，"
                     f"许可证为 `Apache-2.0`，支持 `snake_case` 风格的 API")
    lines += ["", f"![图：{company} 榜单截图](https://images.example.org/bench/{n}.png)", ""]
    lines += ["| 模型 | 参数量 | 上下文 | 价格 |", "|---|---|---|---|"]
    for i in range(3):
        lines.append(f"| {company}-{i} | {rng.randint(7, 400)}B | {rng.choice([32, 128, 1000])}K | "
                     f"${rng.randint(1, 30) / 10} |")
    lines += ["", "```python", "client = Client(api_key=os.environ['KEY'])",
              f"print(client.generate('你好，{company}'))", "```", "",
              f"> 来源：[{company} Blog](https://example.com/{company.lower()}/post/{n})", "", "* * *", ""]
    return "\n".join(lines)


def issue_text(rng: random.Random, n: int, when: datetime) -> str:
    tags = rng.sample(TAGS, 3)
    body = ["AI 日报\n====\n", "今天的 AI 新闻很多，我们挑了最重要的几条，花十分钟就能读完。"
            "Today we cover models, chips and policy.\n", "要闻速览\n----\n"]
    size = 0
    k = 0
    while size < 9500:
        part = section(rng, k)
        body.append(part)
        size += len(part.encode("utf-8"))
        k += 1
    return (f"---\ntitle: \"AI 日报第 {n} 期：{rng.choice(COMPANIES)} 与 {rng.choice(COMPANIES)}\"\n"
            f"date: {when.isoformat()}\ntags: [{', '.join(tags)}]\n---\n\n" + "\n".join(body))


# ---- the "linky" shape: like the real content (see the module docstring) ----

# (tag, share of the issues that carry it): the shares add up to 8, the tags of each issue (`linky_tags`)
LINKY_PER_ISSUE = 8


def linky_tags(rng: random.Random) -> list[str]:
    """8 of the 13 tags, each with its share as its chance (systematic sampling: exact shares, exactly 8)."""
    chosen, total, u = [], 0.0, rng.random()
    for tag, share in LINKY_TAGS:
        if int(total + share - u + 1) > int(total - u + 1):  # a point u, u+1, ..., u+7 falls in [total, total+share)
            chosen.append(tag)
        total += share
    rng.shuffle(chosen)
    return chosen


def issue_link(here: Path, there: Path) -> str:
    """The relative link from the issue file `here` to the issue file `there`, as an author writes it."""
    return there.name if here.parent == there.parent else f"../{there.parent.name}/{there.name}"


def linky_repo(rng: random.Random) -> str:
    return f"https://github.com/{rng.choice(ORGS)}/{rng.choice(REPOS)}-{rng.randint(1, 99)}"


def linky_item(rng: random.Random, n: int, k: int) -> list[str]:
    """One bullet of the digest: a bold lead, two or three links, and a nested list of more links."""
    org = rng.choice(ORGS)
    post = f"{rng.choice(HOSTS)}{rng.randint(10**6, 10**8)}"
    repo = linky_repo(rng)
    lines = [f"* **{org}** {rng.choice(VERBS)}{rng.choice(THINGS)}：{rng.choice(REMARKS)}"
             f"[原文]({post}) · [讨论](https://news.ycombinator.com/item?id={rng.randint(10**7, 5 * 10**7)})"]
    kind = rng.random()
    if kind < 0.45:
        lines.append(f"    * 代码：[{repo[19:]}]({repo}) · [README]({repo}/blob/main/README.md)")
    if kind > 0.3:
        lines.append(f"    * 论文：[{rng.choice(EN_TITLES)}](https://arxiv.org/abs/{2000 + n % 20:04d}."
                     f"{rng.randint(10000, 99999)})，作者解读见 "
                     f"[X](https://x.com/{org}/status/{rng.randint(1, 10**18)})")
    if kind > 0.8:
        lines.append(f"    * 模型：[Hugging Face](https://huggingface.co/{org}/{rng.choice(REPOS)}-{k}) · "
                     f"[Demo](https://huggingface.co/spaces/{org}/demo-{n}-{k})")
    return lines


def linky_text(rng: random.Random, n: int, when: datetime, paths: list[Path]) -> str:
    """Issue `n` (`paths[n]` is its file, `paths[:n]` the older issues, every one of them there to link to)."""
    here = paths[n]
    older = []  # (label, the older issue's number)
    if n >= 1:
        older.append(("昨天的日报", n - 1))
    if n >= 7:
        older.append(("上周今日", n - 7))
    for _ in range(rng.randint(0, 2) if n >= 30 else 0):
        older.append(("此前报道", rng.randrange(n - 7)))
    title = f"AI 日报 {when:%Y-%m-%d}：{rng.choice(ORGS)} {rng.choice(VERBS)}{rng.choice(THINGS)}"
    head = f"AI 日报 · 第 {n + 1} 期"
    recap = f" 没看昨天的？见 [{older[0][0]}]({issue_link(here, paths[older[0][1]])})。" if older else ""
    body = [head, "=" * len(head), "",
            f"今天的 AI 新闻很多，我们挑了最重要的几条，花十分钟就能读完。**{rng.choice(THINGS)}** 是今天的主角；"
            "Today: models, agents, chips and funding." + recap,
            "", f"![今日封面]({rng.choice(IMAGE_HOSTS)}{when:%Y%m%d}-cover.jpg)", ""]
    size, k = len("\n".join(body).encode("utf-8")), 0
    sections = rng.sample(SECTIONS, len(SECTIONS))
    while size < 12000:
        name = sections[k % len(sections)] + ("" if k < len(sections) else f"（{k // len(sections) + 1}）")
        part = [name, "-" * (2 * len(name)), ""]
        for i in range(rng.randint(5, 9)):
            part += linky_item(rng, n, k * 10 + i)
        if rng.random() < 0.5:
            part += ["", f"![配图]({rng.choice(IMAGE_HOSTS)}{n}-{k}.png)"]
        part += ["", "* * *", ""]
        text = "\n".join(part)
        body.append(text)
        size += len(text.encode("utf-8")) + 1
        k += 1
    if older:
        body += ["往期回顾", "--------", ""]
        body += [f"* [{label}：第 {i + 1} 期]({issue_link(here, paths[i])})" for label, i in older]
        body.append("")
    body.append(f"本期由编辑部整理，欢迎转发。原始链接汇总：[GitHub]({linky_repo(rng)}/blob/main/README.md)\n")
    return (f"---\ntitle: \"{title}\"\ndate: {when.isoformat()}\ntags: [{', '.join(linky_tags(rng))}]\n---\n\n"
            + "\n".join(body))


SHAPES = ("reference", "linky")


def make_corpus(root: Path, n: int, shape: str = "reference") -> list[Path]:
    """N issues of `shape` (see the module docstring) in root/content/YYYY/, and root/publisher.toml; the issue
    files, oldest first (the last one is the newest issue, the one in every feed)."""
    if shape not in SHAPES:
        raise ValueError(f"unknown corpus shape {shape!r}: one of {', '.join(SHAPES)}")
    rng = random.Random(42 if shape == "reference" else 2020)
    (root / "content").mkdir(parents=True)
    (root / "publisher.toml").write_text(
        '[site]\ntitle = "AI 日报"\nurl = "https://bench.example.com/"\nlanguage = "zh-CN"\n'
        'timezone = "Asia/Shanghai"\nauthor = "编辑部"\n'
        # Hugo and Pelican build no search index: the comparison leaves publisher's out too (benchmarks/search.py
        # measures what it adds).
        '[search]\nenabled = false\n', encoding="utf-8")
    start = datetime(2020, 1, 1, 8, tzinfo=UTC)
    whens = [start + timedelta(days=i) for i in range(n)]
    paths = [root / "content" / f"{when:%Y}" / f"{when:%Y-%m-%d}-issue-{i}.md" for i, when in enumerate(whens)]
    for i, (when, path) in enumerate(zip(whens, paths, strict=True)):
        path.parent.mkdir(exist_ok=True)
        text = issue_text(rng, i, when) if shape == "reference" else linky_text(rng, i, when, paths)
        path.write_text(text, encoding="utf-8")
    return paths


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(n: int, repeat: int = 3, victim: str = "middle", shape: str = "reference") -> dict[str, float]:
    """Build timings (in-process) on a fresh corpus of `n` issues; `victim` is which issue the one-changed
    rebuild edits: "middle" (an old issue) or "newest" (today's, which is also in every feed)."""
    now = datetime(2100, 1, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        paths = make_corpus(root, n, shape)
        total = sum(p.stat().st_size for p in paths)
        config = load_config(root, environ={})
        fulls = []
        for _ in range(repeat):
            shutil.rmtree(root / "dist", ignore_errors=True)
            shutil.rmtree(root / ".publisher-cache", ignore_errors=True)
            os.sync()  # so that writing back the corpus or the last build does not land inside this one
            fulls.append(timed(lambda: build(config, now=now)))
        issues = load_issues(config)
        in_memory = statistics.median(timed(lambda: render(config, issues, now=now)) for _ in range(repeat))
        nochange = statistics.median(timed(lambda: build(config, now=now)) for _ in range(repeat))
        changed = []
        target = paths[-1] if victim == "newest" else paths[len(paths) // 2]
        for k in range(repeat):
            target.write_text(target.read_text(encoding="utf-8") + f"\n补充说明 {k}。\n", encoding="utf-8")
            changed.append(timed(lambda: build(config, now=now)))
        files = sum(1 for p in (root / "dist").rglob("*") if p.is_file())
    return {"issues": n, "kb_per_issue": total / n / 1024, "files": files, "full": statistics.median(fulls),
            "in_memory": in_memory, "nochange": nochange, "one_changed": statistics.median(changed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=1000, help="number of issues (default 1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (the median is shown)")
    parser.add_argument("--victim", choices=["middle", "newest"], default="middle",
                        help="which issue the one-changed rebuild edits")
    parser.add_argument("--shape", choices=SHAPES, default="reference", help="the corpus (see above)")
    args = parser.parse_args()
    r = measure(args.n, args.repeat, args.victim, args.shape)
    print(f"corpus: {args.n} {args.shape} issues, {r['kb_per_issue']:.1f} KB each on average, "
          f"{r['files']} output files")
    print(f"full build (cold cache):      {r['full']:7.3f} s   target < 3 s at N=1000  (median of {args.repeat})")
    print(f"  of which rendering (in memory, no disk, parsed issues given): {r['in_memory']:.3f} s")
    print(f"no-change rebuild:            {r['nochange']:7.3f} s")
    print(f"one issue changed, rebuild:   {r['one_changed']:7.3f} s   target < 1 s at N=1000 ({args.victim} issue)")


if __name__ == "__main__":
    main()
