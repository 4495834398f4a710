"""Reading an export as its vendor made it: a zip, the folder it unpacks to, or one file; its CSVs row by row.

Everything in an export is untrusted: a member's declared size is checked before it is read (a zip bomb), names
are only matched, never joined to a path we write to, and CSV text must be UTF-8 (Excel's BOM is fine)."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from ..errors import Problem, PublisherError
from .writer import Imported, IssueReport

MAX_MEMBER_BYTES = 512 * 1024 * 1024  # a zip member's declared size beyond this is refused
MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024


class NoTable(PublisherError):
    """The export holds no CSV of the kind asked for (an export of issues only, say)."""


def members(path: Path, suffixes: Iterable[str] = (".csv",)) -> list[tuple[str, bytes]]:
    """(name, bytes) of the export's files ending in one of `suffixes`, sorted by name: from a zip, a folder, or
    `path` itself when it is one file."""
    wanted = tuple(s.lower() for s in suffixes)
    refuse_non_zip(path, "download the export again")
    if path.is_dir():
        return [(p.relative_to(path).as_posix(), p.read_bytes()) for p in sorted(path.rglob("*"))
                if p.is_file() and p.name.lower().endswith(wanted) and not p.name.startswith(".")]
    if zipfile.is_zipfile(path):
        found = []
        total = 0
        try:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    name = PurePosixPath(info.filename)
                    if info.is_dir() or not name.name.lower().endswith(wanted) or name.name.startswith(("._", ".")):
                        continue  # folders, other files, macOS resource forks
                    total += info.file_size
                    if info.file_size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES:
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


def text(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PublisherError(f"is not UTF-8 text (byte {exc.start})", file=name,
                             hint="export it again, or save it as CSV UTF-8") from None


def rows(name: str, data: bytes) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) of a CSV with a header row; cell names and values trimmed."""
    reader = csv.DictReader(io.StringIO(text(name, data), newline=""))
    if reader.fieldnames is None:
        return
    reader.fieldnames = [(c or "").strip() for c in reader.fieldnames]
    for row in reader:
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)
                                and isinstance(v, str)}


def need(name: str, columns: Iterable[str], wanted: Iterable[str], source: str) -> None:
    missing = [c for c in wanted if c not in set(columns)]
    if missing:
        raise PublisherError(f"has no {', '.join(repr(c) for c in missing)} column, which a {source} export has",
                             file=name, line=1, hint=f"is this a {source} export? see docs/import-formats.md")


def split_list(cell: str) -> tuple[str, ...]:
    """A list inside one cell written as a CSV row ("A","B, with comma"), as Mailchimp's TAGS and Ghost's labels."""
    if not cell:
        return ()
    return tuple(t.strip() for t in next(csv.reader([cell], skipinitialspace=True)) if t.strip())


def tables(path: Path, column: str, what: str, hint: str) -> Iterator[tuple[str, int, dict[str, str]]]:
    """(file, line, row) of every CSV of the export that has `column` (the others, such as a list of posts, are
    not subscribers); an export with none is an error naming `what` it lacks."""
    found = False
    for name, data in members(path):
        found_rows = list(rows(name, data))
        if found_rows and column in found_rows[0][1]:
            found = True
            yield from ((name, line, row) for line, row in found_rows)
    if not found:
        raise NoTable(f"holds no {what} (a CSV with the column {column})", file=path.name, hint=hint)


def flag(imported: Imported, name: str, line: int, row: Mapping[str, str], column: str) -> bool | None:
    """A true/false cell; anything else is a refused row (None), never read as either."""
    value = row.get(column, "").lower()
    if value not in ("true", "false"):
        imported.problems.append(Problem(f"{column} is {value!r}, not true or false", file=name, line=line,
                                         field=column))
        return None
    return value == "true"


def old_base(old_url: str | None, report: IssueReport) -> str | None:
    """`--old-url` without its trailing slash, checked to be http(s); None (and a note) when not given."""
    if not old_url:
        report.notes.append("no --old-url: issues get no `source` link to their old address")
        return None
    parts = urlsplit(old_url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise PublisherError(f"--old-url {old_url!r} is not an http(s) address",
                             hint="give the newsletter's old address, e.g. https://name.substack.com")
    return old_url.strip().rstrip("/")


def top_level(name: str, wanted: str) -> bool:
    """True when the member `name` is `wanted` at the export's top, or inside one top-level folder (as an unzipped
    and re-zipped export is)."""
    parts = PurePosixPath(name).parts
    return parts[-len(PurePosixPath(wanted).parts):] == PurePosixPath(wanted).parts and \
        len(parts) <= len(PurePosixPath(wanted).parts) + 1


def refuse_non_zip(path: Path, hint: str) -> None:
    """A `.zip` that is not one (a truncated download, an HTML error page) is an error, not an empty export."""
    if path.is_file() and path.suffix.lower() == ".zip" and not zipfile.is_zipfile(path):
        raise PublisherError("is not a zip archive (damaged, or not the export)", file=path.name, hint=hint)
