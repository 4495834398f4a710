"""The key that signs what publisher keeps between runs in folders it does not trust (`.publisher-cache/`): where it
lives, making it, and whether it is fit to guard a given folder. A module of its own, and light: a build that
changes nothing checks its signed record with it before anything heavy is imported."""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

KEY_ENV = "PUBLISHER_CACHE_KEY_FILE"


class Doubt(ValueError):
    """Why a cache, a record or a key is not used."""


# ---- the key ----


def key_file(environ: Mapping[str, str] | None = None) -> Path:
    """Where this user's cache key lives: `$PUBLISHER_CACHE_KEY_FILE`, else `$XDG_CACHE_HOME/publisher/cache-key`,
    else `~/.cache/publisher/cache-key`. Never in the cache folder, whose content may come from anyone."""
    env = os.environ if environ is None else environ
    if env.get(KEY_ENV):
        return Path(env[KEY_ENV]).expanduser()
    xdg = env.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # the XDG spec ignores a relative value
    return base / "publisher" / "cache-key"


def load_key(path: Path) -> bytes:
    """The key in `path`, made (32 random bytes, mode 0600) if there is none yet; raises `Doubt` when it cannot be
    used."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise Doubt(f"cannot read the cache key {path}: {exc.strerror}") from None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".cache-key.")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
            # A link, not a rename: it never replaces a key that a build running beside this one made meanwhile,
            # and no reader ever sees a key half written.
            with suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
        return _read_key(path)
    except OSError as exc:
        raise Doubt(f"cannot create the cache key {path}: {exc.strerror}") from None


def key_for(folder: Path) -> bytes:
    """This user's key, for a cache kept in `folder`; raises `Doubt` when the key is not fit to guard it."""
    try:
        path = key_file()
    except RuntimeError as exc:  # no home folder
        raise Doubt(f"there is no place for its key ({exc}); set {KEY_ENV}") from None
    with suppress(OSError):
        inside = folder.resolve()
        if path.resolve() == inside or inside in path.resolve().parents:
            raise Doubt(f"its key {path} is inside it, where anyone who can write the cache can read it")
    if folder.is_symlink():
        raise Doubt("it is a symbolic link (it may have been restored from elsewhere); delete it")
    return load_key(path)


def _read_key(path: Path) -> bytes:
    with open(path, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Doubt(f"the cache key {path} is not a file")
        if info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise Doubt(f"the cache key {path} is open to other users, who could forge cache records "
                        f"(chmod 600 {path}, or delete it: a new one is made)")
        key = fh.read(4097)
    if not 32 <= len(key) <= 4096:
        raise Doubt(f"the cache key {path} must hold 32 to 4096 bytes (delete it: a new one is made)")
    return key
