"""`publisher import buttondown`: the export zip (emails.csv or emails.json, emails/<slug>.md, subscribers.csv).

Everything in the zip is untrusted: cells and JSON values are type-checked and only copied; a fancy-mode body is
HTML for the shared converter, a plaintext one Markdown kept as written (the build checks it like any issue)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path, PurePosixPath

from ..errors import Problem, PublisherError
from ..subscribers import Subscriber
from . import archive
from .writer import Imported, IssueReport, Post, Skipped

# buttondown/openapi enums.json SubscriberType (see docs/import-formats.md): every value, mapped; an unknown one
# is refused (never guessed), as is "unpaid" (a paid-only newsletter's reader who never paid: not opted in to
# anything we would send).
_BUTTONDOWN = {"regular": "active", "premium": "active", "trialed": "active", "gifted": "active",
               "churning": "active", "paused": "active", "past_due": "active", "churned": "active",
               "upcoming": "active", "unactivated": "unconfirmed", "unsubscribed": "unsubscribed",
               "removed": "unsubscribed", "blocked": "unsubscribed", "spammy": "unsubscribed"}


def read_subscribers(path: Path) -> Imported:
    imported = Imported("buttondown")
    for name, line, row in archive.tables(path, "subscriber_type", "subscriber list",
                                  "use the export from Buttondown's Settings → Exports (subscribers)"):
        kind = row.get("subscriber_type", "").lower()
        if kind == "unpaid":
            imported.skipped["never paid for a paid-only newsletter (Buttondown unpaid)"] += 1
            continue
        status = _BUTTONDOWN.get(kind)
        if status is None:
            imported.problems.append(Problem(f"unknown subscriber_type {kind!r}", file=name, line=line,
                                             field="subscriber_type"))
            continue
        tags = tuple(t.strip() for t in row.get("tags", "").split(";") if t.strip())
        imported.add(Subscriber(row.get("email", ""), "", status, tags), f"{name}:{line}", kind)
    return imported


# ---------------------------------------------------------------------------------------------------- emails
# docs/import-formats.md §4 (from TryGhost/migrate's mg-buttondown and buttondown/docs): emails.csv, or emails.json
# in older exports, beside emails/<slug>.md whose first line says the editor mode.

_MODE = re.compile(r"\A\s*<!--\s*buttondown-editor-mode:\s*([\w-]*)\s*-->[ \t]*\r?\n?")
_PUBLIC = {"public", "archival", "free", ""}
_DRAFT_STATUS = {"draft", "scheduled", "paused"}
_HINT = "use the zip from Buttondown's Settings → Exports (emails)"


def _table(files: list[tuple[str, bytes]], report: IssueReport) -> list[tuple[str, dict[str, str]]] | None:
    """(where, row) of emails.csv, else of emails.json; None when the export has neither."""
    for name, data in files:
        if archive.top_level(name, "emails.csv"):
            report.pages.append(name)
            rows = list(archive.rows(name, data))
            if rows:
                archive.need(name, rows[0][1], ("subject", "publish_date", "slug"), "Buttondown")
            return [(f"{name}:{line}", row) for line, row in rows]
    for name, data in files:
        if archive.top_level(name, "emails.json"):
            report.pages.append(name)
            return _json_rows(name, data)
    return None


def _json_rows(name: str, data: bytes) -> list[tuple[str, dict[str, str]]]:
    try:
        items = json.loads(archive.text(name, data))
    except (ValueError, RecursionError):
        items = None
    if not isinstance(items, list):
        raise PublisherError("is not a JSON array of emails", file=name, hint=_HINT)
    rows = []
    for n, item in enumerate(items, 1):
        if isinstance(item, dict):  # values kept only when they are plain scalars: the rest is not ours to guess
            rows.append((f"{name}[{n}]", {str(k): str(v).strip() for k, v in item.items()
                                          if isinstance(v, str | int | float) and not isinstance(v, bool)}))
    return rows


def _bodies(files: list[tuple[str, bytes]]) -> dict[str, tuple[str, bytes]]:
    found = {}
    for name, data in files:
        path = PurePosixPath(name)
        if path.suffix.lower() == ".md" and path.parent.name == "emails" and len(path.parts) <= 3:
            found.setdefault(path.stem, (name, data))
    return found


def read_posts(path: Path, report: IssueReport, *, old_url: str | None = None) -> list[Post]:
    """The export's emails as past issues; drafts and scheduled ones (when a status says so) as drafts."""
    archive.refuse_non_zip(path, _HINT)
    files = archive.members(path, (".csv", ".json", ".md"))
    table = _table(files, report)
    if table is None:
        report.notes.append(f"{path.name} has no emails.csv or emails.json: no past issues to import")
        return []
    base = archive.old_base(old_url, report)
    bodies = _bodies(files)
    counts: Counter[str] = Counter()
    posts = [post for where, row in table if (post := _post(where, row, bodies, base, report, counts))]
    _notes(report, counts, len(posts))
    return posts


def _body(member: str, data: bytes) -> tuple[str | None, str, str]:
    """(markdown, html, mode) of a body file: plaintext (or no mode comment) is Markdown; fancy is HTML."""
    text = archive.text(member, data)
    match = _MODE.match(text)
    mode = match.group(1).lower() if match else ""
    text = text[match.end():] if match else text
    if mode == "fancy":
        return None, text, mode
    return text, "", mode


def _post(where: str, row: dict[str, str], bodies: dict[str, tuple[str, bytes]], base: str | None,
          report: IssueReport, counts: Counter[str]) -> Post | None:
    slug = row.get("slug", "")
    what = row.get("subject") or slug or where
    kind = row.get("email_type", "").lower()
    status = row.get("status", "").lower()
    if status == "deleted":
        report.skipped.append(Skipped(what, "deleted in Buttondown"))
        return None
    if kind not in _PUBLIC | {"private", "premium", "churned"}:
        report.skipped.append(Skipped(what, f"unknown email_type {kind!r} (not imported: it may not be public)"))
        return None
    if slug not in bodies:
        counts["no body"] += 1
        report.skipped.append(Skipped(what, f"no body file in the export (emails/{slug}.md)"))
        return None
    member, data = bodies[slug]
    report.pages.append(member)
    markdown, html, mode = _body(member, data)
    if mode not in ("plaintext", "fancy"):
        counts["no mode"] += 1
    counts[kind] += 1
    return Post(key=f"buttondown:{row.get('id') or slug}", title=row.get("subject", ""),
                date_text=row.get("publish_date") or row.get("creation_date") or None,
                link=f"{base}/{slug}/" if base and slug else None, html=html, markdown=markdown,
                draft=status in _DRAFT_STATUS, slug=slug or None)


def _notes(report: IssueReport, counts: Counter[str], imported: int) -> None:
    def emails(n: int) -> str:
        return f"{n} email{'s' if n != 1 else ''}"

    if counts["private"]:
        report.notes.append(f"{emails(counts['private'])} private in Buttondown (not in its public archive) "
                            "imported as public issues; add `draft: true` to keep one off the web")
    if counts["premium"] or counts["churned"]:
        report.notes.append(f"{emails(counts['premium'] + counts['churned'])} for paying subscribers imported "
                            "as public issues (publisher has no paid tier)")
    if counts["no body"]:
        have = "has" if counts["no body"] == 1 else "have"
        report.notes.append(f"{emails(counts['no body'])} in the list {have} no body file in emails/")
    if counts["no mode"]:
        report.notes.append(f"{emails(counts['no mode'])} without an editor-mode comment read as Markdown")
    if not imported:
        report.notes.append("no email to import in the export")

