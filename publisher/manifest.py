"""The build record: what the last build read and wrote, kept in its cache folder (`build.json`), so that

- a build that would change nothing is known as such from file metadata alone, before anything is parsed,
  rendered or even imported (no input file, setting, option or issue's side of "now" changed, and `dist/` holds
  exactly the files the last build left there, untouched);
- an output whose render key is the one it had last time, in a file of `dist/` that nobody touched since, is
  not read back to be compared, nor read from the cache.

A file is "untouched" while its size, mtime, ctime and inode are the ones recorded: a write in place changes
mtime and ctime, a replacement changes the inode, and `touch -d` cannot set ctime. An input written in the
seconds before the build started is never trusted (its next write may land in the same tick of the file
system's clock, with the same size): the next build reads it again, as git does with "racily clean" entries.

The cache folder is not trusted (see `cache`): the record carries an HMAC under the same key, and anything odd
about it means "no record": a full build, never an error. The worst a forged record could do is skip a build.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from . import __version__
from .files import open_no_follow

log = logging.getLogger(__name__)

FILE = "build.json"
FORMAT = 1
SETTLE_NS = 2_000_000_000  # an input written less than this before the build started is read again next time

Stat = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode


def stat_of(info: os.stat_result) -> Stat:
    return (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)


def walk(folder: Path) -> tuple[dict[str, os.stat_result], set[str], bool]:
    """The files under `folder` with their lstat (links are not followed), its folders, by relative path with
    "/", and whether a symbolic link was seen."""
    files: dict[str, os.stat_result] = {}
    folders: set[str] = set()
    links = False
    stack = [("", str(folder))]
    while stack:
        prefix, path = stack.pop()
        with os.scandir(path) as entries:
            for entry in entries:
                name = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    folders.add(name)
                    stack.append((name + "/", entry.path))
                else:
                    links = links or entry.is_symlink()
                    files[name] = entry.stat(follow_symlinks=False)
    return files, folders, links


def input_stats(folders: Iterable[Path]) -> dict[str, Stat] | None:
    """Every file under `folders` (the content and theme folders: a superset of what a build reads) by absolute
    path; None when one holds a symbolic link, whose target may change while the link does not."""
    found: dict[str, Stat] = {}
    for folder in folders:
        try:
            files, _, links = walk(folder)
        except FileNotFoundError:
            continue  # absent, like a theme without overrides: a folder that appears brings files, a change
        except OSError:
            return None
        if links:
            return None
        top = str(folder) + "/"
        found.update({top + name: stat_of(info) for name, info in files.items()})
    return found


def window(dates: Sequence[datetime], now: datetime) -> tuple[float | None, float | None]:
    """The span of clock times around `now` in which every issue stays on its side of "now" (published or
    scheduled), as POSIX timestamps: [the latest date not after now, the earliest date after now)."""
    before = [d.timestamp() for d in dates if d <= now]
    after = [d.timestamp() for d in dates if d > now]
    return (max(before) if before else None, min(after) if after else None)


@dataclass
class Record:
    stamp: str  # the version, the settings that reach the output and the build's options
    started_ns: int  # the file system's time when the build started
    inputs: dict[str, Stat]
    window: tuple[float | None, float | None]
    outputs: dict[str, tuple[int, int, int, int, str]]  # site path -> stat, and the render key ("" if none)
    issues: int = 0
    drafts_left_out: int = 0
    scheduled_left_out: int = 0
    warnings: list[str] = field(default_factory=list)  # shown again by a build this record lets skip

    def covers(self, stamp: str, inputs: Mapping[str, Stat] | None, now: datetime) -> bool:
        """Whether a build with `stamp` and these `inputs` at `now` would make what this record's build made."""
        if stamp != self.stamp or inputs is None or inputs != self.inputs:
            return False
        if any(stat[1] >= self.started_ns - SETTLE_NS or stat[2] >= self.started_ns - SETTLE_NS
               for stat in self.inputs.values()):
            return False  # racy: may have changed again within the same tick
        low, high = self.window
        at = now.timestamp()
        return (low is None or low <= at) and (high is None or at < high)

    def output_intact(self, output: Path) -> bool:
        """Whether `output` holds exactly the recorded files, each untouched."""
        try:
            files, _, _ = walk(output)
        except OSError:
            return False
        if files.keys() != self.outputs.keys():
            return False
        return all(stat_of(info) == self.outputs[path][:4] for path, info in files.items())

    def key_of(self, path: str, info: os.stat_result) -> str:
        """The render key that made `path`, if the file is untouched since; else ""."""
        entry = self.outputs.get(path)
        return entry[4] if entry is not None and stat_of(info) == entry[:4] else ""


def stamp(fingerprint: str, output: Path, **options: object) -> str:
    return json.dumps([FORMAT, __version__, fingerprint, str(output), sorted(options.items())])


def _signer(key: bytes) -> hmac.HMAC:
    return hmac.new(hmac.digest(key, b"publisher build record", "sha256"), digestmod="sha256")


def load(folder: Path, key: bytes) -> Record | None:
    """The record in `folder`, or None when there is none or it is not one this process can trust."""
    try:
        with open_no_follow(folder / FILE) as fh:
            data = fh.read()
    except OSError:
        return None
    tag, _, body = data.partition(b"\n")
    signer = _signer(key)
    signer.update(body)
    if not hmac.compare_digest(signer.hexdigest().encode(), tag):
        log.debug("ignoring %s: its authentication code does not match", folder / FILE)
        return None
    try:
        raw = json.loads(body)
        return Record(stamp=raw["stamp"], started_ns=int(raw["started_ns"]),
                      inputs={k: tuple(v) for k, v in raw["inputs"].items()},  # type: ignore[misc]
                      window=tuple(raw["window"]),  # type: ignore[arg-type]
                      outputs={k: tuple(v) for k, v in raw["outputs"].items()},  # type: ignore[misc]
                      issues=raw["issues"], drafts_left_out=raw["drafts_left_out"],
                      scheduled_left_out=raw["scheduled_left_out"], warnings=list(raw["warnings"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def save(folder: Path, key: bytes, record: Record) -> None:
    """Write the record (a new file renamed into place: a reader sees the old record or the new one)."""
    body = json.dumps(record.__dict__, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    signer = _signer(key)
    signer.update(body)
    tmp = folder / f".{FILE}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with open(fd, "wb") as fh:
            fh.write(signer.hexdigest().encode() + b"\n" + body)
        os.replace(tmp, folder / FILE)
    except OSError as exc:
        log.debug("could not record the build in %s: %s", folder, exc.strerror)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def forget(folder: Path) -> None:
    """Drop the record (before a build changes `dist/`: a build stopped halfway must not leave a record that
    describes the tree before it)."""
    with contextlib.suppress(OSError):
        os.unlink(folder / FILE)
