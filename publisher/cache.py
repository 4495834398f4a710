"""The render cache: parsed issues and the pages, emails and feeds rendered from them, kept between builds in
`.publisher-cache/render.log` under a hash of their inputs.

That folder is not trusted. CI restores it from a cache other workflows can write, and anyone may copy one in;
so what is read back is plain data, never code: raw bytes, UTF-8 text, or an issue's fields as JSON (nothing is
unpickled or unmarshalled). Every record carries an HMAC-SHA256 under a key kept outside the folder
(`key_file()`), so bytes nobody here wrote are refused, and any record that is cut short, damaged, written
under another key or by another version is a cache miss: logged once, never an error. The cache is only ever a
shortcut; a miss renders again.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import hmac
import json
import logging
import multiprocessing
import os
import secrets
import struct
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePath, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

from . import __version__
from .content import Issue
from .files import open_no_follow
from .keys import KEY_ENV, Doubt, key_for

log = logging.getLogger(__name__)

FILE = "render.log"
FORMAT = 4  # bump when a record's shape changes (e.g. a new kind); a new Issue field needs no bump (see _CODECS)

# Record kinds. A value of another type is kept for this build only (never written).
BYTES, TEXT, ISSUE, DROP = b"B", b"S", b"I", b"D"
_KINDS = (BYTES, TEXT, ISSUE, DROP)
_FRAME = struct.Struct("<cHQ")  # kind, key length, value length; then the key, the value and the tag
_TAG = hashlib.sha256().digest_size


# ---- values as plain data ----


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"not text: {type(value).__name__}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"not a boolean: {type(value).__name__}")
    return value


def _optional_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"not a list: {type(value).__name__}")
    return [_str(item) for item in value]


def _path_text(value: Any) -> str:
    if not isinstance(value, PurePath):
        raise TypeError(f"not a path: {type(value).__name__}")
    return str(value)


def _datetime_to(value: Any) -> dict[str, object]:
    """ISO 8601 with its offset, and the zone's name: a naive frontmatter date is in `site.timezone`, and
    pages show that zone's rules (its daylight saving time), which an offset alone does not carry."""
    if not isinstance(value, datetime):
        raise TypeError(f"not a datetime: {type(value).__name__}")
    zone = value.tzinfo
    if isinstance(zone, ZoneInfo) and zone.key is not None:
        return {"at": value.isoformat(), "zone": zone.key, "fold": value.fold}
    if type(zone) is timezone:
        return {"at": value.isoformat(), "zone": None, "fold": 0}
    raise TypeError(f"a time zone that cannot be named: {zone!r}")


def _datetime_from(value: Any) -> datetime:
    at = datetime.fromisoformat(_str(value["at"]))
    if at.tzinfo is None:
        raise ValueError("a time without its zone")
    if value["zone"] is None:
        return at
    fold = value["fold"]
    if fold not in (0, 1):
        raise ValueError(f"fold {fold!r}")
    local = at.replace(tzinfo=ZoneInfo(_str(value["zone"])), fold=fold)
    if local.utcoffset() != at.utcoffset():  # the zone's rules changed (tzdata update): not the same time
        raise ValueError(f"{at.isoformat()} is another time in {value['zone']}")
    return local


# Issue field annotation -> (to JSON, from JSON). An Issue field of a type not listed here makes issues
# uncacheable (parsed on every build) instead of being written wrongly: add its codec.
_CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "str": (_str, _str),
    "bool": (_bool, _bool),
    "str | None": (_optional_str, _optional_str),
    "tuple[str, ...]": (_strings, lambda v: tuple(_strings(v))),
    "tuple[str, ...] | None": (lambda v: None if v is None else _strings(v),
                               lambda v: None if v is None else tuple(_strings(v))),
    "Path": (_path_text, lambda v: Path(_str(v))),
    "PurePosixPath": (_path_text, lambda v: PurePosixPath(_str(v))),
    "datetime": (_datetime_to, _datetime_from),
}
_ISSUE_FIELDS = [(f.name, f.type) for f in dataclasses.fields(Issue)]
_FIELD_NAMES = {name for name, _ in _ISSUE_FIELDS} - {"body"}


def _is_parsed(value: object) -> bool:
    """Whether `value` is what the `issue` memo holds: (Issue, warnings)."""
    return isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], Issue)


def encode(value: object) -> tuple[bytes, bytes]:
    """(kind, payload) for a value; raises TypeError for one that is not cached on disk."""
    if isinstance(value, bytes):
        return BYTES, value
    if isinstance(value, str):
        return TEXT, value.encode("utf-8", "surrogatepass")
    if _is_parsed(value):
        issue, warnings = value  # type: ignore[misc]
        fields = {}
        for name, kind in _ISSUE_FIELDS:
            if kind not in _CODECS:
                raise TypeError(f"Issue.{name} has no codec for {kind}")
            if name != "body":
                fields[name] = _CODECS[kind][0](getattr(issue, name))
        head = json.dumps({"issue": fields, "warnings": _strings(warnings)}, ensure_ascii=False,
                          separators=(",", ":"))
        # The body after the line break (compact JSON has none): read back with one UTF-8 decode, not
        # scanned as a JSON string. It is nine tenths of the record.
        return ISSUE, f"{head}\n{_str(issue.body)}".encode("utf-8", "surrogatepass")
    raise TypeError(f"{type(value).__name__} is not cached on disk")


def decode(kind: bytes, payload: bytes | memoryview) -> object:
    """The value `encode` gave (kind, payload) for; raises ValueError, TypeError or KeyError on anything else."""
    if kind == BYTES:
        return bytes(payload)
    if kind == TEXT:
        return bytes(payload).decode("utf-8", "surrogatepass")
    if kind != ISSUE:
        raise ValueError(f"record kind {kind!r}")
    head, _, body = bytes(payload).decode("utf-8", "surrogatepass").partition("\n")
    data = json.loads(head)
    fields = data["issue"]
    if not isinstance(fields, dict) or fields.keys() != _FIELD_NAMES:
        raise ValueError("the issue's fields are not those of this version")
    fields = {name: _CODECS[kind][1](fields[name]) for name, kind in _ISSUE_FIELDS if name != "body"}
    return Issue(body=body, **fields), tuple(_strings(data["warnings"]))


# ---- the cache ----


@dataclass(frozen=True)
class Pending:
    """Stands for a value the cache holds or will hold under `key`: what `memo` returns. `RenderCache.resolve`
    gives the value; `key` alone says whether an output is the one an earlier build wrote (`manifest`)."""

    key: str


@dataclass(frozen=True)
class _Stored:
    """In `RenderCache.new`: a value a log holds (the old one, or this build's spill), read each time it is asked
    for and never kept in memory; `make` renders it again if the record turns out not to be usable."""

    spilled: bool
    make: Callable[[], object] | None = None


Entry = tuple[bytes, int, int, int]  # kind, where the record starts, where its value starts, where it ends


class RenderCache:
    """Parsed issues and Markdown renders from the last build, keyed by a hash of their inputs.

    Stored in `folder/render.log`: a header line naming the format, the version and the key (by a hash of it),
    then records: put key value, or drop key, each with its HMAC. Loading reads only the records' heads, to index
    them; a record is read (with pread), authenticated and decoded only when a build asks for it, so a build
    that needs a tenth of the cache pays for a tenth, and memory does not grow with the cache. Renders made by
    this build go to disk as they come (`_spill`: appended to the log, or to the new log being written) and are
    read back when written out, so a full build of 10,000 issues does not hold them all in memory. A save
    appends only what is left (drops, and values kept in memory) and rewrites the log compactly once dead
    records outnumber live ones, or when something in it was refused. Keys are hashes of inputs, so a key's
    value never changes.
    """

    FILE = FILE

    def __init__(self, folder: Path | None, salt: str = "", *, parallel_min: int | None = None,
                 workers: int | None = None, key: bytes | None = None,
                 progress: Callable[[int, int], None] | None = None) -> None:
        """`key`: the HMAC key (default: `load_key(key_file())`); `parallel_min`: the fewest queued renders worth
        starting worker processes for (default `PARALLEL_MIN`); `workers`: how many (default: one per core, at
        most 8; fewer than 2 renders serially); `progress(done, total)`: told as queued renders are made."""
        self.folder = folder
        self.salt = salt  # settings that change how a file parses (the time zone)
        self.parallel_min = PARALLEL_MIN if parallel_min is None else parallel_min
        self.workers = min(os.cpu_count() or 1, 8) if workers is None else workers
        self.progress = progress
        self.misses = 0  # values made or queued because no build had made them
        self.parallel_renders = 0  # queued values made in worker processes
        self.old: dict[str, Entry] = {}  # key -> where its record is in the log read (`_fd`)
        self.new: dict[str, object] = {}  # key -> value, or _Stored
        self._fd: int | None = None  # the log read, open for pread
        self._spill_fd: int | None = None  # where this build's renders go: the log (appended), or a new file
        self._spill_tmp: str | None = None  # that new file, while it is not the log yet
        self._spilled: dict[str, Entry] = {}
        self._recent: dict[str, object] = {}  # a render worker's last few issue HTMLs (see `html`)
        self._queue: dict[str, Callable[[], object]] | None = None
        self._records = 0  # records in the log, live or not
        self._compact = True  # rewrite rather than append (no usable log yet, or one with refused records)
        self._doubted = False
        self._owner = os.getpid()  # a forked render worker never closes or deletes what is this process's
        self._lock = threading.Lock()  # spills from the threads that write dist/ (a render made again)
        self._key = key if key is not None else secrets.token_bytes(32)  # without a folder: this build only
        if folder is not None:
            try:
                self._key = key if key is not None else key_for(folder)
            except Doubt as exc:
                log.warning("not using the render cache in %s: %s", folder, exc)
                self.folder = None
        self._record_key = hmac.digest(self._key, f"publisher render cache record {self._header()}".encode(),
                                       "sha256")
        self._signer = hmac.new(self._record_key, digestmod="sha256")
        if self.folder is not None:
            self._load(self.folder / FILE)

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        """Let go of the files (a spill file that never became the log is deleted)."""
        if getattr(self, "_owner", None) != os.getpid():
            return
        for name in ("_fd", "_spill_fd"):
            fd = getattr(self, name, None)
            if fd is not None:
                setattr(self, name, None)
                with suppress(OSError):
                    os.close(fd)
        tmp, self._spill_tmp = getattr(self, "_spill_tmp", None), None
        if tmp is not None:
            with suppress(OSError):
                os.unlink(tmp)

    def _header(self) -> str:
        return f"publisher-cache {FORMAT} {__version__}"

    def _first_line(self) -> bytes:
        key_id = hmac.digest(self._key, b"publisher cache key id", "sha256")[:8].hex()
        return f"{self._header()} {key_id}\n".encode()

    def _doubt(self, reason: str) -> None:
        """Note a refused record: its value is rendered again, and the next save rewrites the log without it."""
        self._compact = True
        if not self._doubted:
            self._doubted = True
            log.warning("ignoring part of the render cache %s: %s; what it held is rendered again",
                        self.folder / FILE if self.folder else FILE, reason)

    def _load(self, path: Path) -> None:
        try:
            fh = open_no_follow(path)  # a planted link or FIFO is not followed, nor waited on
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("ignoring the render cache %s: %s", path, exc.strerror)
            return
        fd = os.dup(fh.fileno())
        fh.close()
        first = self._first_line()
        head = os.pread(fd, 256, 0)
        if head[:len(first)] != first:
            os.close(fd)
            found, mine = head.split(b"\n", 1)[0].split(b" "), first.rstrip(b"\n").split(b" ")
            if len(found) != len(mine) or found[0] != mine[0]:
                log.warning("ignoring the render cache %s: it is damaged", path)
            elif found[1:3] != mine[1:3]:  # expected once after an upgrade
                log.debug("ignoring the render cache %s: written by another version of publisher", path)
            else:
                log.warning("ignoring the render cache %s: it was written under another key (on another machine or "
                            "by another user; in CI, keep a key file outside the cache and name it in %s)",
                            path, KEY_ENV)
            return
        self._fd, self._compact = fd, False
        self._index(fd, len(first), os.fstat(fd).st_size)

    def _index(self, fd: int, offset: int, size: int) -> None:
        """Read the heads of the records from `offset` to `size` (values are skipped, not read)."""
        frame = _FRAME.size
        while offset < size:
            head = os.pread(fd, frame + 128, offset)  # the head and (nearly always) the whole key
            if len(head) < frame:
                self._doubt("it is cut short (a build was stopped while saving)")
                return
            kind, key_length, value_length = _FRAME.unpack_from(head)
            start = offset + frame + key_length
            end = start + value_length
            if kind not in _KINDS or end + _TAG > size:
                self._doubt("it is cut short or damaged")
                return
            raw = head[frame:frame + key_length] if key_length <= 128 else os.pread(fd, key_length, offset + frame)
            try:
                key = raw.decode("ascii")
            except UnicodeDecodeError:
                self._doubt("it is damaged")
                return
            self._records += 1
            if kind == DROP:
                if self._record(fd, offset, end) is not None:
                    self.old.pop(key, None)
            else:
                self.old[key] = (kind, offset, start, end)  # authenticated when asked for (see `_read`)
            offset = end + _TAG

    def _record(self, fd: int, record: int, end: int) -> bytes | None:
        """The signed bytes of a record (its tag included) if they verify, else None."""
        data = os.pread(fd, end + _TAG - record, record)
        tag = hmac.digest(self._record_key, memoryview(data)[:end - record], "sha256")
        if len(data) == end + _TAG - record and hmac.compare_digest(tag, data[end - record:]):
            return data
        self._doubt("a record's authentication code does not match (altered, or written under another key)")
        return None

    def _read(self, key: str, spilled: bool = False) -> object:
        """The value of `key` in the old log (or in this build's spill), or None if it cannot be used."""
        fd, table = (self._spill_fd, self._spilled) if spilled else (self._fd, self.old)
        entry = table.get(key)
        if entry is None or fd is None:
            return None
        kind, record, start, end = entry
        data = self._record(fd, record, end)
        if data is None:
            del table[key]
            return None
        try:
            return decode(kind, memoryview(data)[start - record:end - record])
        except (ValueError, TypeError, KeyError) as exc:  # authentic, so ours: a format this code cannot read
            del table[key]
            self._doubt(f"a record cannot be read ({exc})")
            return None

    def _frame(self, key: str, kind: bytes, payload: bytes = b"") -> bytes:
        encoded = key.encode("ascii")
        head = _FRAME.pack(kind, len(encoded), len(payload)) + encoded
        signer = self._signer.copy()
        signer.update(head)
        signer.update(payload)
        return head + payload + signer.digest()

    def _spill(self, key: str, value: object) -> None:
        """Keep a value this build made: on disk if it can be (read back when asked for), else in memory."""
        try:
            kind, payload = encode(value)
        except TypeError:
            self.new[key] = value
            return
        frame = self._frame(key, kind, payload)
        with self._lock:
            if self._spill_fd is None:
                self._open_spill()
            offset = _append(self._spill_fd, frame)  # type: ignore[arg-type]
            start = offset + _FRAME.size + len(key)
            self._spilled[key] = (kind, offset, start, start + len(payload))
            self.new[key] = _Stored(spilled=True)

    def _open_spill(self) -> None:
        """Append to the log when it is sound (those records are the ones a save would append); else write a
        new log, which a save completes and puts in place; without a cache folder, an unnamed file."""
        if self.folder is not None and not self._compact and self._fd is not None:
            try:
                # O_NOFOLLOW: a link planted in the folder must not make this append to a file elsewhere.
                fd = os.open(self.folder / FILE, os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
                if os.path.samestat(os.fstat(fd), os.fstat(self._fd)):
                    self._spill_fd = fd
                    return
                os.close(fd)
            except OSError:
                pass
            self._compact = True  # the log changed under us: write a new one
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, self._spill_tmp = tempfile.mkstemp(dir=self.folder, prefix=FILE + ".", suffix=".tmp")
            os.write(fd, self._first_line())
        else:
            fd = os.open(tempfile.gettempdir(), os.O_RDWR | os.O_TMPFILE | os.O_CLOEXEC, 0o600) \
                if hasattr(os, "O_TMPFILE") else _unnamed_file()
        self._spill_fd = fd

    def get(self, key: str, make, *, lazy: bool = False):  # type: ignore[no-untyped-def]
        """The value remembered under `key`, else `make()` (remembered for the next build).

        Inside `parallel()`, a value not remembered is not made at once: `make` is queued and a `Pending`
        placeholder returned (`resolve` gives the value once the block has ended). `lazy`: a `Pending` in every
        case, and a remembered value is not even read until `resolve` asks for it.
        """
        value = self.new.get(key)
        if value is None:
            if lazy and key in self.old:
                self.new[key] = _Stored(spilled=False, make=make)
                return Pending(key)
            value = self._read(key)
            if value is None:
                if self._queue is not None:
                    if key not in self._queue:
                        self.misses += 1
                        self._queue[key] = make
                    return Pending(key)
                self.misses += 1
                value = make()
            self.new[key] = value
        elif isinstance(value, _Stored) and not lazy:
            value = self.resolve(Pending(key))
        return Pending(key) if lazy else value

    @contextmanager
    def parallel(self) -> Iterator[None]:
        """Queue the renders that are not cached, then run them on every core (forked workers inherit the
        queued closures, so nothing but the results crosses between processes, in memory). Each result goes
        to disk as it comes (`_spill`)."""
        self._queue = {}
        try:
            yield
            queued, self._queue = self._queue, None
            self.parallel_renders += _run_all(queued, self.parallel_min, self.workers, self._spill, self.progress)
        finally:
            self._queue = None

    def resolve(self, value: object) -> object:
        """A value, or the one that a `Pending` placeholder stands for (read from disk each time: a page is
        asked for once or twice, and a build's pages do not all fit in memory)."""
        if not isinstance(value, Pending):
            return value
        found = self.new[value.key]
        if isinstance(found, _Stored):
            stored, found = found, self._read(value.key, found.spilled)
            if found is None:  # refused when read at last: render it again
                if stored.make is None:
                    raise RuntimeError(f"a render of this build could not be read back ({value.key})")
                self.misses += 1
                found = stored.make()
                self._spill(value.key, found)
        return found

    def memo(self, shared: str):  # type: ignore[no-untyped-def]
        """A memo for renderers: `memo(inputs, make)` keyed by a hash of `inputs` and `shared` (the theme and
        the settings, which every rendering depends on); it returns a `Pending` (see `resolve`)."""

        prefix = hashlib.sha256(f"{__version__}\0{shared}".encode("utf-8", "surrogatepass")).hexdigest()

        def memo(inputs: object, make):  # type: ignore[no-untyped-def]
            text = prefix + repr(inputs)
            return self.get("render:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(), make,
                            lazy=True)

        return memo

    def html(self, body: str, render) -> str:  # type: ignore[no-untyped-def]
        key = "html:" + hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
        if os.getpid() == self._owner:
            return self.get(key, lambda: render(body))  # type: ignore[no-any-return]
        # In a forked render worker, whose values never reach the log: an issue's HTML serves its page and its
        # email (rendered side by side, see `_run_all`), then no one. Keeping every one would hold the HTML of
        # half the archive per worker (150 MB at 10,000 issues).
        value = self._recent.get(key)
        if value is None:
            value = self._read(key)
            if value is None:
                value = render(body)
            self._recent[key] = value
            if len(self._recent) > 16:
                del self._recent[next(iter(self._recent))]
        return value  # type: ignore[no-any-return]

    def issue(self, raw: bytes, file: Path, parse):  # type: ignore[no-untyped-def]
        """A `content.load_issues` memo: the parsed issue of a file whose bytes and path did not change."""
        key = "issue:" + hashlib.sha256(raw + f"\0{file}\0{self.salt}".encode("utf-8", "surrogatepass")).hexdigest()
        return self.get(key, parse)

    def _frame_of(self, key: str) -> bytes:
        """The signed record of a live key, as a new log holds it ("" for a value that is not cached on disk)."""
        value = self.new[key]
        if isinstance(value, _Stored):
            fd, (_, record, _, end) = (self._spill_fd, self._spilled[key]) if value.spilled else \
                (self._fd, self.old[key])
            data = self._record(fd, record, end)  # type: ignore[arg-type]
            if data is not None:
                return data
            value = self.resolve(Pending(key))  # renders it again
            if isinstance(self.new[key], _Stored):
                return self._frame_of(key)
        try:
            return self._frame(key, *encode(value))
        except TypeError as exc:  # kept for this build only
            log.debug("not caching %s: %s", key, exc)
            return b""

    def save(self) -> None:
        try:
            self._save()
        finally:
            self.close()

    def _save(self) -> None:
        if self.folder is None or (self.new.keys() == self.old.keys() and not self._compact):
            return
        added = [key for key in self.new if key not in self.old and key not in self._spilled]
        dropped = [key for key in self.old if key not in self.new]
        path = self.folder / FILE
        appended = len(self._spilled) if self._spill_tmp is None else 0
        if not self._compact and self._records + appended + len(added) + len(dropped) <= 2 * len(self.new):
            frames = [self._frame(key, DROP) for key in dropped] + [self._frame_of(key) for key in added]
            try:
                # O_NOFOLLOW: a link planted in the folder must not make this append to a file elsewhere. One
                # write, so that a build running beside this one (with another output) cannot interleave with it.
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
            except OSError:
                pass  # gone or replaced since it was read: write it anew
            else:
                with open(fd, "wb") as fh:
                    fh.write(b"".join(frames))
                return
        # A new log: this build's spill file if it is one (its renders are in it already), else a new file.
        if self._spill_tmp is not None:
            tmp, fd, keep = self._spill_tmp, os.dup(self._spill_fd), set(self._spilled)  # type: ignore[arg-type]
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=FILE + ".", suffix=".tmp")  # a new file, not a link
            os.write(fd, self._first_line())
            keep = set()
        try:
            try:
                for key in list(self.new):
                    if key not in keep:
                        _append(fd, self._frame_of(key))  # unbuffered: a render made again spills to this file too
            finally:
                os.close(fd)
            os.replace(tmp, path)
            self._spill_tmp = None  # it is the log now
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            self._spill_tmp = None
            raise


def _append(fd: int, data: bytes) -> int:
    """Write `data` at the end of the file `fd`; where it starts."""
    offset = os.lseek(fd, 0, os.SEEK_END)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    return offset


def _unnamed_file() -> int:
    fd, name = tempfile.mkstemp()
    os.unlink(name)
    return fd


PARALLEL_MIN = 48  # below this many renders, starting worker processes costs more than it saves
_QUEUED: list[Callable[[], object]] = []


def _run_queued(index: int) -> object:
    return _QUEUED[index]()


def _run_all(queued: Mapping[str, Callable[[], object]], minimum: int, workers: int,
             keep: Callable[[str, object], None], progress: Callable[[int, int], None] | None = None) -> int:
    """Make every queued value and hand each to `keep(key, value)` as it comes; how many worker processes made."""
    total = len(queued)

    def told(keys: list[str], results: Iterable[object]) -> None:
        for done, (key, result) in enumerate(zip(keys, results, strict=True), 1):
            keep(key, result)
            if progress is not None and (done % 16 == 0 or done == total):
                progress(done, total)

    if len(queued) < minimum or workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        told(list(queued), (make() for make in queued.values()))
        return 0
    # Renders of one issue (its page, its email: see `group`) run side by side, so that a worker makes the
    # issue's HTML once for both.
    keys = sorted(queued, key=lambda k: getattr(queued[k], "group", ""))
    _QUEUED[:] = [queued[k] for k in keys]
    gc.freeze()  # the workers then share the parent's objects without copying the pages the GC would touch
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            told(keys, pool.map(_run_queued, range(len(_QUEUED)), chunksize=max(2, len(_QUEUED) // (workers * 8))))
            return len(keys)
    finally:
        gc.unfreeze()
        _QUEUED.clear()
