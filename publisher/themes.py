"""Themes: the built-in one, a user's overrides over it (file by file), and the Jinja2 environment."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import posixpath
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath

import jinja2
import jinja2.bccache

from .config import Config, builtin_theme_dir
from .errors import PublisherError, relpath
from .files import inside, read_no_follow, short, walk_files


class _ThemeLoader(jinja2.FileSystemLoader):
    """Jinja's loader follows a symbolic link anywhere: a template must come from inside a theme folder."""

    def __init__(self, dirs: tuple[Path, ...], root: Path) -> None:
        super().__init__([str(d) for d in dirs])
        self.real_dirs = [d.resolve() for d in dirs]
        self.root = root

    def get_source(self, environment: jinja2.Environment, template: str):  # type: ignore[no-untyped-def]
        pieces = jinja2.loaders.split_template_path(template)  # refuses ".." itself
        for folder in self.searchpath:
            path = Path(posixpath.join(folder, *pieces))
            if os.path.isfile(path):  # the one the loader would read: checked before it reads it
                if not any(inside(path, real) for real in self.real_dirs):
                    raise PublisherError(f"the template {template} is a symbolic link out of the theme folder",
                                         file=relpath(path, self.root),
                                         hint="copy the file into the theme instead of linking to it")
                break
        return super().get_source(environment, template)


class _SignedBytecodeCache(jinja2.BytecodeCache):
    """Compiled templates kept between runs (compiling them costs more than a one-issue rebuild). Jinja reads its
    files with marshal, which runs what it is given, and `.publisher-cache/` may be restored from anywhere: so
    each file carries an HMAC under the render cache's key (kept outside the cache folder), checked before Jinja
    sees a byte. A file that does not verify is ignored and the template compiled again."""

    def __init__(self, folder: Path, key: bytes) -> None:
        self.folder = folder
        self.key = hmac.digest(key, b"publisher compiled templates", "sha256")

    @classmethod
    def at(cls, folder: Path) -> _SignedBytecodeCache | None:
        from .keys import Doubt, key_for

        try:
            key = key_for(folder.parent)  # the cache folder the templates folder is in
            folder.mkdir(parents=True, exist_ok=True)
        except (Doubt, OSError, RuntimeError):  # no usable key, or a read-only folder (Lambda): compile each time
            return None
        return cls(folder, key)

    def _path(self, bucket: jinja2.bccache.Bucket) -> Path:
        return self.folder / f"__jinja2_{bucket.key}.cache"

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            data = read_no_follow(self._path(bucket))
        except OSError:
            return
        tag, body = data[:32], data[32:]
        if hmac.compare_digest(tag, hmac.digest(self.key, body, "sha256")):
            bucket.bytecode_from_string(body)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        body = bucket.bytecode_to_string()
        path, tmp = self._path(bucket), ""
        try:
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tpl.")
            with os.fdopen(fd, "wb") as fh:
                fh.write(hmac.digest(self.key, body, "sha256") + body)
            os.replace(tmp, path)
        except OSError:  # a full or read-only disk: the next run compiles again
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


@dataclass(frozen=True)
class Theme:
    """An ordered list of theme folders: the user's `themes/<name>/` first, then the built-in theme."""

    dirs: tuple[Path, ...]
    root: Path  # the newsletter folder, for messages
    cache: Path | None = None  # where compiled templates are kept between runs

    @cached_property
    def env(self) -> jinja2.Environment:
        bytecode = _SignedBytecodeCache.at(self.cache) if self.cache is not None else None
        env = jinja2.Environment(
            bytecode_cache=bytecode,
            loader=_ThemeLoader(self.dirs, self.root),
            autoescape=jinja2.select_autoescape(("html", "xml", "mjml"), default_for_string=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        return env

    def render(self, template: str, **context: object) -> str:
        try:
            return self.env.get_template(template).render(**context)
        except jinja2.TemplateSyntaxError as exc:
            raise PublisherError(f"template error: {exc.message}", file=self._shown(exc.filename),
                                 line=exc.lineno) from None
        except jinja2.TemplateNotFound as exc:
            raise PublisherError(f"template {exc.name} not found in the theme",
                                 hint=f"looked in {', '.join(str(d) for d in self.dirs)}") from None
        except jinja2.UndefinedError as exc:
            raise PublisherError(f"template error: {exc.message}", file=template,
                                 hint="the variable is not available to this template; see the theme docs "
                                 "in the README") from None

    def _shown(self, filename: str | None) -> Path | str:
        return relpath(Path(filename), self.root) if filename else "theme"

    def files(self, folder: str) -> dict[PurePosixPath, Path]:
        """Every file under `folder` of the theme, an override hiding the built-in file of the same name."""
        found: dict[PurePosixPath, Path] = {}
        for base in reversed(self.dirs):
            top = base / folder
            if top.is_dir():
                # a symbolic link out of the theme folder is skipped (and named in a warning)
                for path in walk_files(top, skip_folders=(), root=base, shown=self.root):
                    found[PurePosixPath(path.relative_to(top).as_posix())] = path
        return dict(sorted(found.items()))

    @cached_property
    def email_css(self) -> str:
        """The theme's `email/content.css` (inlined into every email: read once, not per issue)."""
        return "\n".join(path.read_text(encoding="utf-8") for rel, path in self.files("email").items()
                         if str(rel) == "content.css")

    @cached_property
    def fingerprint(self) -> str:
        """A hash of every file of the theme (for the render cache)."""
        digest = hashlib.sha256()
        for base in self.dirs:
            # the files a build can use: what a link out of the theme points at is never read
            for path in sorted(walk_files(base, skip_files=(), skip_folders=(), warn=False)):
                digest.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()


def load_theme(config: Config) -> Theme:
    builtin = builtin_theme_dir()
    user = config.themes_dir / config.build.theme
    cache = config.root / ".publisher-cache" / "templates"
    if user.is_dir() and user.resolve() != builtin.resolve():
        return Theme((user, builtin), config.root, cache)
    if config.build.theme != "default" and not user.is_dir():
        raise PublisherError(f"build.theme is {short(repr(config.build.theme))} but there is no folder "
                             f"{short(str(relpath(user, config.root)))}",
                             file=config.file.name, field="build.theme",
                             hint="create the folder with the templates you override, or use theme = \"default\"")
    return Theme((builtin,), config.root, cache)
