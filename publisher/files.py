"""Small filesystem helpers shared by the writers of folders (build writes dist/, deploy writes a folder) and by
the readers of the author's folders (content/, themes), which a symbolic link must not lead out of them."""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import PublisherError

log = logging.getLogger(__name__)

# What marks a folder as someone's project (a folder holding one is never filled, replaced or emptied by us).
PROJECT_MARKERS = (".git", "publisher.toml")


def prune_empty_parents(path: Path, top: Path) -> None:
    """Remove the folders above a deleted `path` that became empty, up to (not including) `top`."""
    for parent in path.parents:
        if parent == top or top not in parent.parents:
            return
        try:
            parent.rmdir()
        except OSError:  # not empty
            return


def _home() -> Path | None:
    try:
        return Path.home().resolve()
    except (RuntimeError, KeyError, OSError):  # no HOME and no passwd entry: nothing to protect by that name
        return None


def _holds_markdown(folder: Path) -> bool:
    """True when `folder` (a newsletter's content/) has Markdown in it or one level down. A build never copies
    Markdown, so a content/ folder of assets inside dist/ or a deployed site does not count."""
    try:
        with os.scandir(folder) as entries:
            subfolders = []
            for entry in entries:
                if entry.name.lower().endswith((".md", ".markdown")):
                    return True
                if entry.is_dir(follow_symlinks=False):
                    subfolders.append(entry.path)
        for sub in subfolders:
            with os.scandir(sub) as entries:
                if any(e.name.lower().endswith((".md", ".markdown")) for e in entries):
                    return True
    except OSError:
        return False
    return False


def unsafe_folder_reason(folder: Path, *, project: Path, protected: Iterable[Path] = ()) -> str | None:
    """Why `folder` must never be filled, replaced or emptied by publisher (None when it may be).

    Refused whatever is in it: the file system root, the home folder and the folders above it, the newsletter
    folder `project` and the folders above it, any `protected` folder (content/, themes/, dist/...), the folders
    inside or above one, anything inside a `.git` folder, and any folder holding `.git`, `publisher.toml` or a
    content/ folder with Markdown (someone's project). Marks do not matter here: a mark can be copied or planted.
    """
    folder = folder.resolve()
    if folder.parent == folder:
        return "is the root of the file system"
    if ".git" in folder.parts:
        return "is inside a .git folder"
    home = _home()
    if home is not None and (folder == home or folder in home.parents):
        return "is your home folder" if folder == home else f"holds your home folder {home}"
    project = project.resolve()
    if folder == project or folder in project.parents:
        return "is the newsletter folder" if folder == project else f"holds the newsletter folder {project}"
    for kept in protected:
        kept = kept.resolve()
        if folder == kept:
            return f"is {kept}"
        if kept in folder.parents:
            return f"is inside {kept}"
        if folder in kept.parents:
            return f"holds {kept}"
    for name in PROJECT_MARKERS:
        if os.path.lexists(folder / name):
            return f"holds {name}, so it is someone's project"
    if (folder / "content").is_dir() and _holds_markdown(folder / "content"):
        return "holds a content/ folder with Markdown, so it is a newsletter"
    return None


def refuse_unsafe_folder(folder: Path, *, project: Path, protected: Iterable[Path] = (),
                         file: Path | str | None = None, field: str | None = None) -> None:
    """Raise a `PublisherError` naming `field` when `unsafe_folder_reason` refuses `folder`."""
    reason = unsafe_folder_reason(folder, project=project, protected=protected)
    if reason is not None:
        raise PublisherError(f"{short(str(folder))} {reason}; publisher only writes and deletes in a folder of "
                             "its own", file=file, field=field,
                             hint='use a new folder inside the newsletter, e.g. "public"')


# ---- reading the author's folders without being led out of them ----


def walk_files(top: Path, *, skip_files: tuple[str, ...] = (".",), skip_folders: tuple[str, ...] = (".",),
               root: Path | None = None, shown: Path | None = None, warn: bool = True) -> Iterator[Path]:
    """Every regular file under `top`, at any depth (unsorted).

    A symbolic link is followed only when it resolves to a regular file inside `root` (default `top`); a link
    out of it, a linked folder that leads out of it, and anything that is not a regular file (a FIFO would hang
    a read) are skipped with a warning naming the file. Linked folders inside `root` are not followed (their
    files are reached by their real path). File and folder names starting with one of `skip_files` or
    `skip_folders` are skipped silently. `shown`: what paths in warnings are relative to (default: the parent
    of `top`); `warn=False` for a second walk of a folder already warned about.
    """
    real_root = (top if root is None else root).resolve()
    base = top.parent if shown is None else shown

    def skipped(path: Path, why: str) -> None:
        if warn:
            log.warning("%s %s; it is skipped", _rel(path, base), why)

    if not inside(top, real_root):
        skipped(top, f"leads out of {_rel(real_root, base)}")
        return
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError as exc:
            skipped(folder, f"cannot be read ({exc.strerror})")
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                if not entry.name.startswith(skip_folders):
                    stack.append(path)
                continue
            if entry.is_symlink():
                try:
                    real = path.resolve(strict=True)
                except (OSError, RuntimeError):  # dangling, or a loop
                    if not entry.name.startswith(skip_files):
                        skipped(path, "is a broken symbolic link")
                    continue
                if entry.name.startswith(skip_folders if real.is_dir() else skip_files):
                    continue
                if real != real_root and real_root not in real.parents:
                    skipped(path, f"is a symbolic link to {short(str(real))}, outside {_rel(real_root, base)} "
                            "(publisher never publishes a file from outside it)")
                elif real.is_file():
                    yield path
                elif not real.is_dir():
                    skipped(path, "links to something that is not a regular file")
                continue  # a linked folder inside root: its files are walked under their real path
            if entry.name.startswith(skip_files):
                continue
            if entry.is_file(follow_symlinks=False):
                yield path
            else:
                skipped(path, "is not a regular file (a device, FIFO or socket)")


def inside(path: Path, root: Path) -> bool:
    """True when `path`, all links resolved, is `root` or under it (`root` already resolved)."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return False
    return real == root or root in real.parents


def _rel(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def open_no_follow(path: Path) -> BinaryIO:
    """A regular file opened for reading, refusing a symbolic link in its place (checked by the open itself, so
    that a link swapped in after a listing is not followed either) and anything else (a FIFO would block)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    fh = open(fd, "rb")  # noqa: SIM115 (returned to the caller, who closes it)
    if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
        fh.close()
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return fh


def read_no_follow(path: Path) -> bytes:
    """The bytes of a regular file, never through a symbolic link (see `open_no_follow`)."""
    with open_no_follow(path) as fh:
        return fh.read()


def short(text: str, limit: int = 80) -> str:
    """`text` cut to about `limit` characters, for messages that show a value the user (or a file) gave."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
