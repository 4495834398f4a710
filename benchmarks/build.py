"""Build speed on a generated corpus of reference-style issues.

    python benchmarks/build.py [N]          (default N=1000)

Generates N issues of about 10 KB of Chinese/English Markdown each (links, nested lists, bold, tables, code,
images on other hosts) in a temp folder, then prints the time of a full build (empty cache, empty dist/),
a no-change rebuild, and a rebuild after one issue changed. Targets on 2 cores for N=1000: full build under
3 s, one-changed rebuild under 1 s.
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


def make_corpus(root: Path, n: int) -> list[Path]:
    rng = random.Random(42)
    (root / "content").mkdir(parents=True)
    (root / "publisher.toml").write_text(
        '[site]\ntitle = "AI 日报"\nurl = "https://bench.example.com/"\nlanguage = "zh-CN"\n'
        'timezone = "Asia/Shanghai"\nauthor = "编辑部"\n', encoding="utf-8")
    start = datetime(2020, 1, 1, 8, tzinfo=UTC)
    paths = []
    for i in range(n):
        when = start + timedelta(days=i)
        path = root / "content" / f"{when:%Y}" / f"{when:%Y-%m-%d}-issue-{i}.md"
        path.parent.mkdir(exist_ok=True)
        path.write_text(issue_text(rng, i, when), encoding="utf-8")
        paths.append(path)
    return paths


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(n: int, repeat: int = 3, victim: str = "middle") -> dict[str, float]:
    """Build timings (in-process) on a fresh corpus of `n` issues; `victim` is which issue the one-changed
    rebuild edits: "middle" (an old issue) or "newest" (today's, which is also in every feed)."""
    now = datetime(2100, 1, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        paths = make_corpus(root, n)
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
    args = parser.parse_args()
    r = measure(args.n, args.repeat, args.victim)
    print(f"corpus: {args.n} issues, {r['kb_per_issue']:.1f} KB each on average, {r['files']} output files")
    print(f"full build (cold cache):      {r['full']:7.3f} s   target < 3 s at N=1000  (median of {args.repeat})")
    print(f"  of which rendering (in memory, no disk, parsed issues given): {r['in_memory']:.3f} s")
    print(f"no-change rebuild:            {r['nochange']:7.3f} s")
    print(f"one issue changed, rebuild:   {r['one_changed']:7.3f} s   target < 1 s at N=1000 ({args.victim} issue)")


if __name__ == "__main__":
    main()
