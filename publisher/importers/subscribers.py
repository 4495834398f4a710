"""Subscribers from another newsletter tool's export, with consent never widened.

Each reader turns an export into rows (a `Subscriber` with publisher's status, and where it came from). The rules
(docs/import-formats.md, with the sources for every field name):
- only a row the export marks as opted in becomes `active`; pending ones `unconfirmed`;
- unsubscribed, cleaned, bounced, complained, blocklisted, disabled and deleted rows come in suppressed
  (`unsubscribed`, `bounced`, `complained`): never mailed, and a later sign-up must confirm again;
- contacts that never subscribed (Mailchimp's "non-subscribed") are not imported, and counted;
- an address in several rows or files takes the most restrictive status;
- a status that cannot be told from the export is an error, never a guess.
An address already suppressed here stays so whatever an import says (the store's `upsert`).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import Problem, PublisherError
from ..subscribers import Subscriber, validate_subscriber

SOURCES = ("mailchimp", "listmonk", "substack", "buttondown", "ghost", "csv")
# Most restrictive first: an address in two rows keeps the first of these it has.
RESTRICTIVE = ("complained", "bounced", "unsubscribed", "unconfirmed", "active")
MAX_CSV_BYTES = 512 * 1024 * 1024  # a zip member's declared size beyond this is refused (a zip bomb)


@dataclass(frozen=True)
class Row:
    subscriber: Subscriber
    where: str  # file:line
    was: str  # the status as the export said it


@dataclass
class Imported:
    """What an export holds, read and mapped; nothing stored yet."""

    source: str
    rows: dict[str, Row] = field(default_factory=dict)  # by normalized address
    skipped: Counter[str] = field(default_factory=Counter)  # why -> how many
    problems: list[Problem] = field(default_factory=list)  # rows refused, with file and line
    notes: list[str] = field(default_factory=list)

    def add(self, subscriber: Subscriber, where: str, was: str) -> None:
        try:
            subscriber = validate_subscriber(subscriber)
        except PublisherError as exc:
            file, _, line = where.rpartition(":")
            self.problems.extend(Problem(p.message, file=file, line=int(line) if line.isdigit() else None,
                                         field=p.field, hint=p.hint) for p in exc.problems)
            return
        old = self.rows.get(subscriber.email)
        if old is not None:
            keep = old if RESTRICTIVE.index(old.subscriber.status) <= RESTRICTIVE.index(subscriber.status) else None
            tags = tuple(dict.fromkeys(old.subscriber.tags + subscriber.tags))
            chosen = keep or Row(subscriber, where, was)
            subscriber = Subscriber(chosen.subscriber.email, chosen.subscriber.name or old.subscriber.name,
                                    chosen.subscriber.status, tags)
            self.rows[subscriber.email] = Row(subscriber, chosen.where, chosen.was)
            return
        self.rows[subscriber.email] = Row(subscriber, where, was)

    def by_status(self) -> Counter[str]:
        return Counter(row.subscriber.status for row in self.rows.values())


# ---- reading files ----


def _members(path: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of the CSV files of an export: a zip, a folder, or one CSV."""
    if path.is_dir():
        return [(p.relative_to(path).as_posix(), p.read_bytes()) for p in sorted(path.rglob("*.csv"))]
    if zipfile.is_zipfile(path):
        found = []
        try:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    name = PurePosixPath(info.filename)
                    if info.is_dir() or name.suffix.lower() != ".csv" or name.name.startswith(("._", ".")):
                        continue  # folders, other files, macOS resource forks
                    if info.file_size > MAX_CSV_BYTES:
                        raise PublisherError(f"{info.filename} in it would be {info.file_size} bytes unpacked",
                                             file=path.name, hint="this is not an export; check the file")
                    found.append((info.filename, archive.read(info)))
        except zipfile.BadZipFile as exc:
            raise PublisherError(f"is a damaged zip archive ({exc})", file=path.name,
                                 hint="download the export again") from None
        return sorted(found)
    if path.is_file():
        return [(path.name, path.read_bytes())]
    raise PublisherError("does not exist", file=str(path))


def _rows(name: str, data: bytes) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) of a CSV with a header row; cell names and values trimmed. Excel's UTF-8 BOM is fine."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PublisherError(f"is not UTF-8 text (byte {exc.start})", file=name,
                             hint="export it again, or save it as CSV UTF-8") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None:
        return
    reader.fieldnames = [(c or "").strip() for c in reader.fieldnames]
    for row in reader:
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)
                                and isinstance(v, str)}


def _need(name: str, columns: Iterable[str], wanted: Iterable[str], source: str) -> None:
    missing = [c for c in wanted if c not in set(columns)]
    if missing:
        raise PublisherError(f"has no {', '.join(repr(c) for c in missing)} column, which a {source} export has",
                             file=name, line=1, hint=f"is this a {source} export? see docs/import-formats.md")


def _split_list(cell: str) -> tuple[str, ...]:
    """Mailchimp's TAGS: a CSV row inside the cell ("A","B, with comma")."""
    if not cell:
        return ()
    return tuple(t.strip() for t in next(csv.reader([cell], skipinitialspace=True)) if t.strip())


def _lists(path: Path, column: str, what: str, hint: str) -> Iterator[tuple[str, int, dict[str, str]]]:
    """(file, line, row) of every CSV of the export that has `column` (the others, such as a list of posts, are
    not subscribers); an export with none is an error naming `what` it lacks."""
    found = False
    for name, data in _members(path):
        rows = list(_rows(name, data))
        if rows and column in rows[0][1]:
            found = True
            yield from ((name, line, row) for line, row in rows)
    if not found:
        raise PublisherError(f"holds no {what} (a CSV with the column {column})", file=path.name, hint=hint)


def _flag(imported: Imported, name: str, line: int, row: Mapping[str, str], column: str) -> bool | None:
    """A true/false cell; anything else is a refused row (None), never read as either."""
    value = row.get(column, "").lower()
    if value not in ("true", "false"):
        imported.problems.append(Problem(f"{column} is {value!r}, not true or false", file=name, line=line,
                                         field=column))
        return None
    return value == "true"


# ---- Mailchimp: the status is in the file's name ----

_MAILCHIMP_FILES = {"subscribed": "active", "unsubscribed": "unsubscribed", "cleaned": "bounced",
                    "nonsubscribed": None}
_MAILCHIMP_NAME = re.compile(r"(?:^|/)(nonsubscribed|unsubscribed|subscribed|cleaned)_members_export_[^/]*\.csv$",
                             re.IGNORECASE)
_EMAIL_ALIASES = ("Email Address", "Email", "email", "E-mail", "email_address")


def read_mailchimp(path: Path) -> Imported:
    imported = Imported("mailchimp")
    for name, data in _members(path):
        match = _MAILCHIMP_NAME.search(name)
        rows = list(_rows(name, data))
        columns = rows[0][1].keys() if rows else set()
        if match:
            kind = match.group(1).lower()
            status = _MAILCHIMP_FILES[kind]
        elif "UNSUB_TIME" in columns:
            kind, status = "unsubscribed", "unsubscribed"
        elif "CLEAN_TIME" in columns:
            kind, status = "cleaned", "bounced"
        else:
            raise PublisherError("is not named like a Mailchimp export file (subscribed_members_export_*.csv, "
                                 "unsubscribed_…, cleaned_…, nonsubscribed_…), so its members' status is unknown",
                                 file=name, hint="import the audience export zip as Mailchimp made it, or use "
                                 "`publisher import csv --status …` for a list you know the status of")
        address = next((a for a in _EMAIL_ALIASES if a in columns), None)
        if rows and address is None:
            _need(name, columns, ["Email Address"], "Mailchimp")
        for line, row in rows:
            if status is None:
                imported.skipped["never subscribed (Mailchimp non-subscribed)"] += 1
                continue
            full = " ".join(part for part in (row.get("First Name", ""), row.get("Last Name", "")) if part)
            imported.add(Subscriber(row.get(address or "", ""), full, status, _split_list(row.get("TAGS", ""))),
                         f"{name}:{line}", kind)
    return imported


# ---- listmonk: one CSV; opt-in per list is not in it ----

_LISTMONK = {"confirmed": "active", "unconfirmed": "unconfirmed", "unsubscribed": "unsubscribed"}


def read_listmonk(path: Path, subscription_status: str | None = None) -> Imported:
    """`subscription_status`: the filter the export was made with (listmonk ≥ 4: confirmed, unconfirmed or
    unsubscribed), which the file cannot show. Without it, enabled subscribers come in unconfirmed."""
    if subscription_status is not None and subscription_status not in _LISTMONK:
        raise PublisherError(f"--subscription-status must be one of {', '.join(_LISTMONK)}",
                             field="subscription_status")
    imported = Imported("listmonk")
    enabled = _LISTMONK[subscription_status] if subscription_status else "unconfirmed"
    if subscription_status is None:
        imported.notes.append("a listmonk export does not say who confirmed which list: enabled subscribers come "
                              "in unconfirmed (export each list with subscription_status=confirmed and pass "
                              "--subscription-status confirmed to import them active)")
    for name, data in _members(path):
        rows = list(_rows(name, data))
        if rows:
            _need(name, rows[0][1].keys(), ["email", "status"], "listmonk")
        for line, row in rows:
            state = row.get("status", "").lower()
            if state == "enabled":
                status = enabled
            elif state in ("disabled", "blocklisted"):
                status = "unsubscribed"
            else:
                imported.problems.append(Problem(f"unknown status {state!r} (listmonk has enabled, disabled, "
                                                 "blocklisted)", file=name, line=line, field="status"))
                continue
            imported.add(Subscriber(row.get("email", ""), row.get("name", ""), status), f"{name}:{line}", state)
    return imported


# ---- Substack: the signups list; email_disabled decides, not active_subscription (a paid plan) ----


def read_substack(path: Path) -> Imported:
    imported = Imported("substack")
    for name, line, row in _lists(path, "email_disabled", "subscriber list",
                                  "use the zip from Substack's Settings → Exports, or the email list CSV in it"):
        disabled = _flag(imported, name, line, row, "email_disabled")
        if disabled is not None:
            imported.add(Subscriber(row.get("email", ""), "", "unsubscribed" if disabled else "active"),
                         f"{name}:{line}", f"email_disabled={str(disabled).lower()}")
    return imported


# ---- Buttondown: subscriber_type says it all ----

# buttondown/openapi enums.json SubscriberType (see docs/import-formats.md): every value, mapped; an unknown one
# is refused (never guessed), as is "unpaid" (a paid-only newsletter's reader who never paid: not opted in to
# anything we would send).
_BUTTONDOWN = {"regular": "active", "premium": "active", "trialed": "active", "gifted": "active",
               "churning": "active", "paused": "active", "past_due": "active", "churned": "active",
               "upcoming": "active", "unactivated": "unconfirmed", "unsubscribed": "unsubscribed",
               "removed": "unsubscribed", "blocked": "unsubscribed", "spammy": "unsubscribed"}


def read_buttondown(path: Path) -> Imported:
    imported = Imported("buttondown")
    for name, line, row in _lists(path, "subscriber_type", "subscriber list",
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


# ---- Ghost: the members CSV (members are not in the JSON export) ----


def read_ghost(path: Path) -> Imported:
    imported = Imported("ghost")
    for name, line, row in _lists(path, "subscribed_to_emails", "Ghost members",
                                  "export the members from Ghost Admin → Members → Export (the JSON export "
                                  "holds no members)"):
        subscribed = _flag(imported, name, line, row, "subscribed_to_emails")
        if subscribed is None:
            continue
        # false covers "unsubscribed" and "never subscribed": both stay out of the mail, kept so a later sign-up
        # confirms again; a deleted member is unsubscribed whatever the flag says.
        deleted = bool(row.get("deleted_at"))
        status = "active" if subscribed and not deleted else "unsubscribed"
        was = f"subscribed_to_emails={str(subscribed).lower()}" + (" deleted" if deleted else "")
        labels = _split_list(row.get("labels", ""))
        imported.add(Subscriber(row.get("email", ""), row.get("name", ""), status, labels), f"{name}:{line}", was)
    return imported


# ---- any CSV, with a column map ----


def parse_map(text: str) -> dict[str, str]:
    """`email=Email Address,name=Full name,tags=Groups,status=State` -> {field: column}."""
    mapping: dict[str, str] = {}
    for part in (p for p in text.split(",") if p.strip()):
        key, sep, column = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("email", "name", "tags", "status") or not column.strip():
            raise PublisherError(f"--map takes field=column pairs for email, name, tags and status; {part!r} is "
                                 "not one", field="map")
        mapping[key] = column.strip()
    return mapping


def read_csv(path: Path, mapping: Mapping[str, str] | None = None, status: str = "active") -> Imported:
    """A CSV with a header row; `mapping` names the columns (default: email, name, tags, status). A `status`
    column must hold publisher's statuses; without one every row gets `status`."""
    imported = Imported("csv")
    columns = {"email": "email", "name": "name", "tags": "tags", "status": "status"} | dict(mapping or {})
    for name, data in _members(path):
        rows = list(_rows(name, data))
        if rows:
            _need(name, rows[0][1].keys(), [columns["email"]], "CSV (see --map)")
        for line, row in rows:
            row_status = (row.get(columns["status"]) or status).lower()
            if row_status not in RESTRICTIVE:
                imported.problems.append(Problem(f"status {row_status!r} is not one of {', '.join(RESTRICTIVE)}",
                                                 file=name, line=line, field=columns["status"]))
                continue
            tags = tuple(t.strip() for t in re.split(r"[;,]", row.get(columns["tags"], "")) if t.strip())
            imported.add(Subscriber(row.get(columns["email"], ""), row.get(columns["name"], ""), row_status, tags),
                         f"{name}:{line}", row_status)
    return imported


def read(source: str, path: Path, **options: object) -> Imported:
    readers = {"mailchimp": read_mailchimp, "listmonk": read_listmonk, "substack": read_substack,
               "buttondown": read_buttondown, "ghost": read_ghost, "csv": read_csv}
    if source not in readers:
        raise PublisherError(f"unknown source {source!r}", hint=f"one of {', '.join(readers)}")
    return readers[source](path, **options)  # type: ignore[operator]


# ---- storing ----


@dataclass
class Report:
    imported: Imported
    verdicts: Counter[str] = field(default_factory=Counter)  # added / updated / unchanged / kept
    dry_run: bool = False

    def lines(self) -> list[str]:
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(self.imported.by_status().items()))
        verb = "would change" if self.dry_run else "changed"
        out = [f"{self.imported.source}: {len(self.imported.rows)} addresses ({statuses or 'none'})"]
        if self.verdicts:
            out.append(f"  {verb}: " + ", ".join(f"{n} {v}" for v, n in sorted(self.verdicts.items())))
        if self.verdicts.get("kept"):
            out.append(f"  {self.verdicts['kept']} kept their suppressed status here (unsubscribed, bounced or "
                       "complained earlier): an import never brings an address back")
        out += [f"  not imported: {n} {why}" for why, n in sorted(self.imported.skipped.items())]
        out += [f"  note: {note}" for note in self.imported.notes]
        out += [f"  refused: {p}" for p in self.imported.problems]
        if self.dry_run:
            out.append("  (dry run: nothing was stored)")
        elif not self.imported.rows:
            out.append("  the export holds no address to import")
        elif not (self.verdicts.keys() - {"unchanged", "kept"}):
            out.append("  nothing changed: the list already holds this export")
        return out


def store(imported: Imported, subscribers_store, *, dry_run: bool = False) -> Report:  # type: ignore[no-untyped-def]
    """Put the rows in the store (a `subscribers.Store`); a dry run only says what each row would do."""
    from ..subscribers import _merge

    report = Report(imported, dry_run=dry_run)
    for row in imported.rows.values():
        if dry_run:
            report.verdicts[_merge(subscribers_store.get(row.subscriber.email), row.subscriber, False,
                                   validated=True)[1]] += 1
        else:
            report.verdicts[subscribers_store.upsert(row.subscriber)] += 1
    return report
