"""The per-issue report: what happened to one sent issue, read from the delivery ledger. Reads, never writes.

The database is opened read-only (`mode=ro`): a report cannot change a row, run a migration or take the write
lock, so it is safe while a `send` is running. Every number is a count over the ledger's rows (`deliveries`,
joined to `subscribers` for what happened since), so the report equals the ledger:

- recipients: the audience snapshot (every delivery row of the issue); sent, failed (grouped by `last_error`),
  uncertain (rows left `sending`), skipped (grouped by `last_error`), pending.
- bounced (hard, soft), complained: among the messages of the issue that were *sent*. `publisher events`
  records which message each SES notification was about (`message_events`: SES's message id, our Message-ID),
  so these are counted "per message" when any notification names one of the issue's messages. Otherwise (no
  SES, or no notification yet) they are the recipients' "status now": a hard bounce or complaint caused by a
  later issue counts too; soft: sent recipients still active, with a soft-bounce count, whose record changed
  since the send started.
- unsubscribed since the send: recipients whose status is now `unsubscribed` and whose record changed after the
  send started (`subscribers.changed_at`: the time of the record's last change of any kind, not of the status).
- segment: the audience the send was made with (`issue_audiences`, see audience.py), else "everyone".
No open or click tracking exists in publisher, and none is reported.

With `[subscribers] dynamodb_table` the ledger is in the DynamoDB table: stores/dynamodb_report.py reads the send
item, the issue's delivery items (events included) and the recipients' subscriber items (Query and GetItem/
BatchGetItem, never a Scan or a write), and `_build_dynamodb` computes the same figures as `_build`'s SQL; both
end in `_assemble`, so the two ledgers give the same report. A send made before the move to DynamoDB is still
read from SQLite (its subscriber figures then unknown: the list is no longer there).

`--json` (`IssueReport.as_json()`), format 1, stable keys:
  format, issue, subject, segment, started_at, finished_at (ISO 8601, UTC; null while unfinished),
  recipients, sent, failed, uncertain, skipped, pending,
  failures, skips ([{"reason", "count"}], most frequent first),
  bounced {"hard", "soft"}, complained, unsubscribed_since_send (null when the subscriber list is not in the
  database, e.g. an SES contact list), attribution ("per message" or "status now"),
  timeline {"bucket": "minute"|"hour", "start", "end", "sent": [{"at", "count", "total"}],
  "unsubscribed": [...]} (cumulative totals; `at` is the bucket's start), notes ([text]).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from .config import Config
from .errors import PublisherError

FORMAT = 1
MINUTE_SPAN = timedelta(hours=3)  # a send shorter than this is charted by minute, a longer one by hour
ATTRIBUTION = "status now"
PER_MESSAGE = "per message"  # from the SES notifications about the issue's own messages (events.py)
NO_TRACKING = "No open or click tracking: publisher does not track readers (privacy first)."


class NotSent(PublisherError):
    """The issue (or any issue) has no delivery ledger rows: it was never sent."""


@dataclass(frozen=True)
class Point:
    at: datetime  # the bucket's start, UTC
    count: int
    total: int  # cumulative


@dataclass
class IssueReport:
    issue: str
    subject: str
    segment: str
    started_at: datetime
    finished_at: datetime | None
    recipients: int
    sent: int
    failed: int
    uncertain: int
    skipped: int
    pending: int
    failures: list[tuple[str, int]]
    skips: list[tuple[str, int]]
    bounced_hard: int | None
    bounced_soft: int | None
    complained: int | None
    unsubscribed: int | None
    attribution: str  # ATTRIBUTION ("status now") or PER_MESSAGE
    bucket: str
    end: datetime
    sent_timeline: list[Point] = field(default_factory=list)
    unsubscribed_timeline: list[Point] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        def points(series: list[Point]) -> list[dict[str, Any]]:
            return [{"at": _iso(p.at), "count": p.count, "total": p.total} for p in series]

        return {
            "format": FORMAT, "issue": self.issue, "subject": self.subject, "segment": self.segment,
            "started_at": _iso(self.started_at), "finished_at": _iso(self.finished_at) if self.finished_at else None,
            "recipients": self.recipients, "sent": self.sent, "failed": self.failed, "uncertain": self.uncertain,
            "skipped": self.skipped, "pending": self.pending,
            "failures": [{"reason": r, "count": n} for r, n in self.failures],
            "skips": [{"reason": r, "count": n} for r, n in self.skips],
            "bounced": {"hard": self.bounced_hard, "soft": self.bounced_soft}, "complained": self.complained,
            "unsubscribed_since_send": self.unsubscribed, "attribution": self.attribution,
            "timeline": {"bucket": self.bucket, "start": _iso(self.started_at), "end": _iso(self.end),
                         "sent": points(self.sent_timeline), "unsubscribed": points(self.unsubscribed_timeline)},
            "notes": list(self.notes),
        }

    def lines(self, tz: tzinfo | None = None) -> list[str]:
        """The report as text, for the terminal."""
        def n(value: int | None) -> str:
            return "unknown" if value is None else str(value)

        when = _local(self.started_at, tz)
        done = f", finished {_local(self.finished_at, tz)}" if self.finished_at else ", not finished"
        out = [f"{self.issue}: {self.subject}", f"  sent to {self.segment}, started {when}{done}",
               f"  recipients {self.recipients}: {self.sent} sent, {self.failed} failed, {self.uncertain} uncertain, "
               f"{self.skipped} skipped, {self.pending} pending"]
        out += [f"    failed ({count}): {reason}" for reason, count in self.failures]
        out += [f"    skipped ({count}): {reason}" for reason, count in self.skips]
        out.append(f"  bounced ({self.attribution}): {n(self.bounced_hard)} hard, {n(self.bounced_soft)} soft; "
                   f"complained ({self.attribution}): {n(self.complained)}; unsubscribed since the send: "
                   f"{n(self.unsubscribed)}")
        out += [f"  note: {note}" for note in self.notes]
        return out


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _local(value: datetime, tz: tzinfo | None) -> str:
    return value.astimezone(tz or UTC).strftime("%Y-%m-%d %H:%M %Z")


def _parse(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """The database opened read-only: no write, no migration, no lock is possible through it."""
    if not path.is_file():
        raise NotSent("no issue has been sent yet", file=path.name, hint="publisher send SLUG sends one")
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        yield db
    except sqlite3.DatabaseError as exc:
        raise PublisherError(f"cannot read the delivery ledger: {exc}", file=path.name) from None
    finally:
        db.close()


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def sent_issues(path: Path) -> list[str]:
    """The slugs the SQLite ledger at `path` has, most recently started first (empty without a database)."""
    if not path.is_file():
        return []
    with read_only(path) as db:
        if "issue_sends" not in _tables(db):
            return []
        return [r[0] for r in db.execute("SELECT issue FROM issue_sends ORDER BY created_at DESC, rowid DESC")]


def sends_of(config: Config) -> list[str]:
    """The slugs of the newsletter's sends, most recently started first: with `[subscribers] dynamodb_table`, those
    of the DynamoDB ledger, then any left in the SQLite ledger from before (the preview's list of reports)."""
    path = config.root / config.subscribers.database
    if not config.subscribers.dynamodb_table:
        return sent_issues(path)
    from .stores.dynamodb_report import LedgerReader

    with LedgerReader(config) as reader:
        found = [send.issue for send in reader.sends()]
    return found + [slug for slug in sent_issues(path) if slug not in found]


def issue_report(config: Config, slug: str | None = None) -> IssueReport:
    """The report of issue `slug` (default: the most recently sent issue) from the newsletter's ledger: the SQLite
    database, or the DynamoDB table with `[subscribers] dynamodb_table` (a send made there before the move to
    DynamoDB is still read from SQLite)."""
    path = config.root / config.subscribers.database
    if config.subscribers.dynamodb_table:
        from .stores.dynamodb_report import LedgerReader

        with LedgerReader(config) as reader:
            if slug is None:
                sends = reader.sends()
                send = sends[0] if sends else None
            else:
                send = reader.send(slug)
            if send is not None:
                return _build_dynamodb(reader, send)
        if not sent_issues(path):
            raise NotSent(f"{slug} has not been sent" if slug else "no issue has been sent yet",
                          hint="publisher list shows which issues were sent" if slug
                          else "publisher send SLUG sends one")
        return report_from(path, slug, subscribers=False)  # the subscriber list is in DynamoDB now
    return report_from(path, slug, subscribers=config.subscribers.in_sqlite)


def _segment(key: str | None) -> str:
    from .audience import Audience

    return Audience.from_key(key).describe() if key else "everyone"


def report_from(path: Path, slug: str | None = None, *, subscribers: bool = True) -> IssueReport:
    """The report from the database at `path`; `subscribers=False` when the subscriber list lives elsewhere (an
    SES contact list), so a stale local table is not read."""
    with read_only(path) as db:
        tables = _tables(db)
        if not {"issue_sends", "deliveries"} <= tables:
            raise NotSent("no issue has been sent yet", file=path.name, hint="publisher send SLUG sends one")
        query = "SELECT issue, subject, created_at, finished_at FROM issue_sends"
        row = (db.execute(query + " WHERE issue = ?", (slug,)).fetchone() if slug is not None
               else db.execute(query + " ORDER BY created_at DESC, rowid DESC LIMIT 1").fetchone())
        if row is None:
            raise NotSent(f"{slug} has not been sent" if slug else "no issue has been sent yet",
                          hint="publisher list shows which issues were sent")
        issue, subject, created, finished = row
        segment = "everyone"
        if "issue_audiences" in tables:  # sending.py keeps each send's audience there
            key = db.execute("SELECT audience FROM issue_audiences WHERE issue = ?", (issue,)).fetchone()
            segment = _segment(key[0] if key else None)
        return _build(db, issue, subject, segment, _parse(created), _parse(finished) if finished else None,
                      subscribers and "subscribers" in tables, "message_events" in tables)


def _build_dynamodb(reader: Any, send: Any) -> IssueReport:
    """The report of a send whose ledger is in DynamoDB (stores/dynamodb_report.py reads it): the same figures,
    computed as `_build`'s SQL computes them, from the issue's delivery items and its recipients' subscriber
    items (the subscriber list is in the same table)."""
    rows = reader.rows(send.issue)
    started = _parse(send.created)
    states: dict[str, int] = {}
    for row in rows:
        states[row.state] = states.get(row.state, 0) + 1

    def reasons(state: str) -> list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for row in rows:
            if row.state == state:
                counts[row.last_error] = counts.get(row.last_error, 0) + 1
        return [(reason or "(no reason recorded)", n)
                for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]

    sent = [row for row in rows if row.state == "sent"]
    sent_at = sorted(_parse(row.changed) for row in sent)
    per_message = None
    if any(row.events for row in sent):
        hard, soft, complained = (sum(1 for row in sent if kind in row.events)
                                  for kind in ("bounce-hard", "bounce-soft", "complaint"))
        per_message = (hard, soft, complained)
    people = reader.people([row.email for row in rows])

    def since(email: str) -> bool:
        person = people[email]
        return bool(person.changed) and _parse(person.changed) >= started

    now = (sum(1 for row in sent if row.email in people and people[row.email].status == "bounced"),
           sum(1 for row in sent if row.email in people and people[row.email].soft_bounces > 0
               and people[row.email].status == "active" and since(row.email)),
           sum(1 for row in sent if row.email in people and people[row.email].status == "complained"))
    unsub_at = sorted(_parse(people[row.email].changed) for row in rows
                      if row.email in people and people[row.email].status == "unsubscribed" and since(row.email))
    return _assemble(send.issue, send.subject, _segment(send.audience_key), started,
                     _parse(send.finished) if send.finished else None, states, reasons("failed"), reasons("skipped"),
                     sent_at, per_message, now, unsub_at)


_PER_MESSAGE = (
    "SELECT count(DISTINCT d.id) FILTER (WHERE e.kind = 'bounce-hard'), "
    "count(DISTINCT d.id) FILTER (WHERE e.kind = 'bounce-soft'), "
    "count(DISTINCT d.id) FILTER (WHERE e.kind = 'complaint'), count(e.kind) "
    "FROM deliveries d JOIN message_events e ON (e.provider_id != '' AND e.provider_id = d.provider_id) "
    "OR (e.message_id != '' AND e.message_id = d.message_id) WHERE d.issue = ? AND d.state = 'sent'")


def _build(db: sqlite3.Connection, issue: str, subject: str, segment: str, started: datetime,
           finished: datetime | None, with_subscribers: bool, with_events: bool = False) -> IssueReport:
    states = dict(db.execute("SELECT state, count(*) FROM deliveries WHERE issue = ? GROUP BY state", (issue,)))

    def reasons(state: str) -> list[tuple[str, int]]:
        rows = db.execute("SELECT coalesce(last_error, ''), count(*) AS n FROM deliveries WHERE issue = ? AND "
                          "state = ? GROUP BY 1 ORDER BY n DESC, 1", (issue, state))
        return [(reason or "(no reason recorded)", n) for reason, n in rows]

    sent_at = [_parse(r[0]) for r in db.execute(
        "SELECT changed_at FROM deliveries WHERE issue = ? AND state = 'sent' ORDER BY changed_at", (issue,))]
    per_message = None
    if with_events:
        *counts, events = db.execute(_PER_MESSAGE, (issue,)).fetchone()
        if events:
            per_message = (counts[0], counts[1], counts[2])
    now: tuple[int, int, int] | None = None
    unsub_at: list[datetime] | None = None
    if with_subscribers:
        stamp = _iso(started)
        now = db.execute(
            "SELECT count(*) FILTER (WHERE s.status = 'bounced'), "
            "count(*) FILTER (WHERE s.soft_bounces > 0 AND s.status = 'active' AND s.changed_at >= ?), "
            "count(*) FILTER (WHERE s.status = 'complained') "
            "FROM deliveries d JOIN subscribers s ON s.email = d.email WHERE d.issue = ? AND d.state = 'sent'",
            (stamp, issue)).fetchone()
        unsub_at = [_parse(r[0]) for r in db.execute(
            "SELECT s.changed_at FROM deliveries d JOIN subscribers s ON s.email = d.email WHERE d.issue = ? "
            "AND s.status = 'unsubscribed' AND s.changed_at >= ? ORDER BY s.changed_at", (issue, stamp))]
    return _assemble(issue, subject, segment, started, finished, states, reasons("failed"), reasons("skipped"),
                     sent_at, per_message, now, unsub_at)


def _assemble(issue: str, subject: str, segment: str, started: datetime, finished: datetime | None,
              states: dict[str, int], failures: list[tuple[str, int]], skips: list[tuple[str, int]],
              sent_at: list[datetime], per_message: tuple[int, int, int] | None,
              now: tuple[int, int, int] | None, unsub_at: list[datetime] | None) -> IssueReport:
    """The report from the ledger's figures, whichever ledger they were read from (SQLite: `_build`, DynamoDB:
    `_build_dynamodb`). `per_message`: (hard, soft, complained) counted from the notifications about the issue's
    messages, None when none names one; `now` the same as the recipients' status now and `unsub_at` the times of
    the unsubscribes since the send, both None when the subscriber list cannot be read."""
    notes = ["Unsubscribe times are each subscriber record's last change (the database keeps no separate time of "
             "the status change).", NO_TRACKING]
    hard = soft = complained = None
    attribution = ATTRIBUTION
    if per_message is not None:
        hard, soft, complained = per_message
        attribution = PER_MESSAGE
        notes.insert(0, "Bounces and complaints are counted per message: the SES notifications about this "
                        "issue's messages (publisher events).")
    else:
        notes.insert(0, "Bounces and complaints are the recipients' status now: no SES notification names one of "
                        "this issue's messages, so one caused by a later issue counts here too.")
    with_subscribers = now is not None and unsub_at is not None
    if now is not None and attribution == ATTRIBUTION:
        hard, soft, complained = now
    if not with_subscribers:
        notes.insert(0, "The subscriber list is not in this database (an SES contact list?): bounces, complaints "
                        "and unsubscribes are unknown.")
    unsub = unsub_at or []
    last = max([started, *sent_at[-1:], *unsub[-1:]])
    bucket = "minute" if last - started <= MINUTE_SPAN else "hour"
    end = _floor(last, bucket) + (timedelta(minutes=1) if bucket == "minute" else timedelta(hours=1))
    return IssueReport(
        issue=issue, subject=subject, segment=segment, started_at=started, finished_at=finished,
        recipients=sum(states.values()), sent=states.get("sent", 0), failed=states.get("failed", 0),
        uncertain=states.get("sending", 0), skipped=states.get("skipped", 0), pending=states.get("pending", 0),
        failures=failures, skips=skips, bounced_hard=hard, bounced_soft=soft,
        complained=complained, unsubscribed=len(unsub) if with_subscribers else None, attribution=attribution,
        bucket=bucket, end=end,
        sent_timeline=_timeline(sent_at, bucket), unsubscribed_timeline=_timeline(unsub, bucket), notes=notes)


def _floor(value: datetime, bucket: str) -> datetime:
    value = value.astimezone(UTC).replace(second=0, microsecond=0)
    return value if bucket == "minute" else value.replace(minute=0)


def _timeline(times: list[datetime], bucket: str) -> list[Point]:
    """Events per bucket with the running total (buckets without events are left out)."""
    counts: dict[datetime, int] = {}
    for t in times:
        key = _floor(t, bucket)
        counts[key] = counts.get(key, 0) + 1
    total, out = 0, []
    for at in sorted(counts):
        total += counts[at]
        out.append(Point(at, counts[at], total))
    return out


# ---- HTML ----

# One page, no script, nothing fetched: it works saved to disk and offline. Autoescaped (subjects and failure
# reasons come from the ledger). The charts are step lines of cumulative totals drawn from `_chart`'s geometry.
TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Report: {{ r.subject }}{% if title %} · {{ title }}{% endif %}</title>
<style>
:root { --fg: #1f2328; --bg: #fff; --muted: #59636e; --line: #d1d9e0; --sent: #1a7f37; --unsub: #bc4c00; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9198a1; --line: #3d444d; --sent: #3fb950; --unsub: #f0883e; }
}
body { color: var(--fg); background: var(--bg); margin: 0 auto; max-width: 760px; padding: 16px 20px;
       font: 15px/1.5 -apple-system, "Segoe UI", "PingFang SC", "Noto Sans CJK SC", sans-serif; }
table { border-collapse: collapse; margin: 8px 0 20px; min-width: 50%; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px 4px 0; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.muted, figcaption { color: var(--muted); }
figure { margin: 0 0 20px; } svg { max-width: 100%; height: auto; }
svg text { fill: var(--muted); font-size: 11px; } svg .axis { stroke: var(--line); }
svg .sent { stroke: var(--sent); } svg .unsub { stroke: var(--unsub); }
</style>
</head>
<body>
<main>
<h1 lang="{{ language }}">{{ r.subject }}</h1>
<p class="muted">Issue <code>{{ r.issue }}</code>{% if title %} of <span lang="{{ language }}">{{ title }}</span>
{% endif %}, sent to {{ r.segment }}; started {{ r.started_at | local }},
{% if r.finished_at %}finished {{ r.finished_at | local }}{% else %}not finished{% endif %}.</p>
<p id="no-tracking">{{ no_tracking }}</p>
<table id="deliveries">
<caption>Deliveries ({{ r.recipients }} recipients)</caption>
<thead><tr><th scope="col">State</th><th scope="col">Recipients</th></tr></thead>
<tbody>
{% for label, value in [("Sent", r.sent), ("Failed", r.failed), ("Uncertain (may have gone out)", r.uncertain),
                        ("Skipped", r.skipped), ("Pending", r.pending)] %}
<tr><th scope="row">{{ label }}</th><td class="n">{{ value }}</td></tr>
{% endfor %}
</tbody>
</table>
{% for heading, rows in [("Why deliveries failed", r.failures), ("Why recipients were skipped", r.skips)] %}
{% if rows %}
<table>
<caption>{{ heading }}</caption>
<thead><tr><th scope="col">Reason</th><th scope="col">Recipients</th></tr></thead>
<tbody>
{% for reason, count in rows %}<tr><td>{{ reason }}</td><td class="n">{{ count }}</td></tr>
{% endfor %}
</tbody>
</table>
{% endif %}
{% endfor %}
<table id="afterwards">
<caption>Since the send (bounces and complaints: {{ r.attribution }})</caption>
<thead><tr><th scope="col">Among the recipients</th><th scope="col">Recipients</th></tr></thead>
<tbody>
{% for label, value in [("Hard bounced", r.bounced_hard), ("Soft bounced", r.bounced_soft),
                        ("Complained (marked as spam)", r.complained), ("Unsubscribed", r.unsubscribed)] %}
<tr><th scope="row">{{ label }}</th><td class="n">{{ "unknown" if value is none else value }}</td></tr>
{% endfor %}
</tbody>
</table>
{% macro chart(id, c, series, css, what) %}
<figure>
<svg id="{{ id }}" role="img" aria-labelledby="{{ id }}-title {{ id }}-desc" viewBox="0 0 {{ c.width }} {{ c.height }}"
     width="{{ c.width }}" height="{{ c.height }}" xmlns="http://www.w3.org/2000/svg">
<title id="{{ id }}-title">{{ what }} over time, cumulative, by {{ r.bucket }}</title>
<desc id="{{ id }}-desc">{{ what }}, running total:
{% for p in series %} {{ p.total }} by {{ p.at | local }}{{ ";" if not loop.last else "." }}{% else %} none.{% endfor %}
</desc>
<line class="axis" x1="{{ c.left }}" y1="{{ c.base }}" x2="{{ c.right }}" y2="{{ c.base }}"/>
<line class="axis" x1="{{ c.left }}" y1="{{ c.top }}" x2="{{ c.left }}" y2="{{ c.base }}"/>
<text x="{{ c.left - 6 }}" y="{{ c.top + 4 }}" text-anchor="end">{{ c.peak }}</text>
<text x="{{ c.left - 6 }}" y="{{ c.base }}" text-anchor="end">0</text>
<text x="{{ c.left }}" y="{{ c.height - 8 }}">{{ start | local }}</text>
<text x="{{ c.right }}" y="{{ c.height - 8 }}" text-anchor="end">{{ r.end | local }}</text>
<polyline class="{{ css }}" fill="none" stroke-width="2" points="{{ c.points }}"/>
</svg>
<figcaption>{{ what }}: {{ series[-1].total if series else 0 }} in all.</figcaption>
</figure>
{% endmacro %}
<h2>Over time</h2>
{{ chart("sent-chart", sent_chart, r.sent_timeline, "sent", "Messages sent") }}
{{ chart("unsubscribed-chart", unsub_chart, r.unsubscribed_timeline, "unsub", "Recipients who unsubscribed") }}
<h2>Notes</h2>
<ul>{% for note in r.notes if note != no_tracking %}<li>{{ note }}</li>{% endfor %}</ul>
</main>
</body>
</html>
"""

def _chart(report: IssueReport, series: list[Point], width: int = 640, height: int = 180) -> dict[str, Any]:
    """Geometry of one step chart of a cumulative series (x: time from the send's start, y: total)."""
    left, right, top, bottom = 48, 12, 12, 28
    start = _floor(report.started_at, report.bucket)
    span = max((report.end - start).total_seconds(), 1.0)
    peak = max([p.total for p in series] + [1])

    def x(at: datetime) -> float:
        return round(left + (at - start).total_seconds() / span * (width - left - right), 1)

    def y(total: int) -> float:
        return round(height - bottom - total / peak * (height - top - bottom), 1)

    points, before = [(float(left), y(0))], 0
    for p in series:
        points += [(x(p.at), y(before)), (x(p.at), y(p.total))]
        before = p.total
    points.append((float(width - right), y(before)))
    return {"width": width, "height": height, "left": left, "right": width - right, "top": top,
            "base": height - bottom, "peak": peak, "points": " ".join(f"{a},{b}" for a, b in points)}


def render_html(report: IssueReport, *, title: str = "", tz: tzinfo | None = None, language: str = "en") -> str:
    """The report as one self-contained page (inline CSS and SVG, no script, no external request)."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["local"] = lambda value: _local(value, tz)
    template = env.from_string(TEMPLATE)
    return template.render(r=report, title=title, language=language or "en", no_tracking=NO_TRACKING,
                           sent_chart=_chart(report, report.sent_timeline),
                           unsub_chart=_chart(report, report.unsubscribed_timeline),
                           start=_floor(report.started_at, report.bucket))


def html_page(config: Config, report: IssueReport) -> str:
    """The report page as `publisher report --html` writes it and the preview serves it."""
    return render_html(report, title=config.site.title, tz=config.site.timezone, language=config.site.language)
