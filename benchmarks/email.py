"""Email speed: the MJML render per issue, and personalized MIME messages per subscriber.

    python benchmarks/email.py [--messages N]        (default N=100000)

Renders each sample issue's email (MJML to HTML, styles inlined, plain text) and prints the time per issue,
then makes N personalized messages (To, Message-ID, signed unsubscribe token and URL, name and address in
both parts, base64 bodies) from one rendered issue and prints the time per message.
Target: under 100 us per message.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# This file is named email.py (the issue fixes the name): its folder must not stand first on sys.path, or it
# would shadow the standard library's `email` package.
sys.path[0] = str(REPO)

from publisher import markdown  # noqa: E402
from publisher.config import load_config  # noqa: E402
from publisher.content import load_issues  # noqa: E402
from publisher.emails import MessageFactory, Recipient, render_email, sender_of  # noqa: E402
from publisher.themes import load_theme  # noqa: E402


def measure(messages: int = 100_000) -> dict[str, float]:
    config = load_config(REPO, environ={})
    issues = load_issues(config)
    theme = load_theme(config)
    pages = {str(i.path): i.url_path for i in issues}
    bodies = {i.slug: markdown.to_html(i.body) for i in issues}
    render_email(config, issues[0], bodies[issues[0].slug], theme=theme, pages=pages)  # warm up
    times = []
    for _ in range(5):
        for issue in issues:
            started = time.perf_counter()
            render_email(config, issue, bodies[issue.slug], theme=theme, pages=pages)
            times.append(time.perf_counter() - started)
    issue = next(i for i in issues if i.slug == "coding-agents")
    rendered = render_email(config, issue, bodies[issue.slug], theme=theme, pages=pages)
    factory = MessageFactory(rendered, sender_of(config), b"benchmark-secret-" * 2, date=datetime.now(UTC))
    recipients = [Recipient(f"subscriber{n}@example.com", "张三" if n % 3 else "") for n in range(messages)]
    started = time.perf_counter()
    size = 0
    for recipient in recipients:
        size += len(factory.message(recipient))
    elapsed = time.perf_counter() - started
    return {"render_ms": statistics.median(times) * 1e3, "render_max_ms": max(times) * 1e3, "issues": len(issues),
            "html_kb": rendered.html_size / 1024, "messages": messages, "seconds": elapsed,
            "per_message_us": elapsed / messages * 1e6, "message_kb": size / messages / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    r = measure(args.messages)
    print(f"email render per issue (MJML + CSS inlining + text): median {r['render_ms']:.2f} ms, "
          f"max {r['render_max_ms']:.2f} ms over {r['issues']} issues x 5")
    print(f"HTML size of 'coding-agents': {r['html_kb']:.1f} KB (Gmail clips at 102 KB)")
    print(f"{r['messages']:,} personalized messages: {r['seconds']:.2f} s, {r['per_message_us']:.1f} us per message "
          f"(target < 100 us), {r['message_kb']:.1f} KB each")


if __name__ == "__main__":
    main()
