"""Themes: the built-in one, a user's overrides over it (file by file), and the Jinja2 environment."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath

import jinja2

from .config import Config
from .errors import PublisherError, relpath

_PACKAGED = Path(__file__).parent / "themes" / "default"  # in an installed wheel
_SOURCE = Path(__file__).parent.parent / "themes" / "default"  # in a source checkout / editable install


def builtin_theme_dir() -> Path:
    for candidate in (_PACKAGED, _SOURCE):
        if (candidate / "web").is_dir():
            return candidate
    raise PublisherError("the built-in theme is missing from this installation",
                         hint="reinstall publisher: pip install --force-reinstall publisher")


@dataclass(frozen=True)
class Theme:
    """An ordered list of theme folders: the user's `themes/<name>/` first, then the built-in theme."""

    dirs: tuple[Path, ...]
    root: Path  # the newsletter folder, for messages
    cache: Path | None = None  # where compiled templates are kept between runs

    @cached_property
    def env(self) -> jinja2.Environment:
        bytecode = None
        if self.cache is not None:
            try:
                self.cache.mkdir(parents=True, exist_ok=True)
                # Compiling the templates costs more than a one-issue rebuild; a new process reuses them.
                bytecode = jinja2.FileSystemBytecodeCache(str(self.cache))
            except OSError:  # a read-only folder (Lambda): compile every time
                bytecode = None
        env = jinja2.Environment(
            bytecode_cache=bytecode,
            loader=jinja2.FileSystemLoader([str(d) for d in self.dirs]),
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
                for path in sorted(top.rglob("*")):
                    if path.is_file() and not path.name.startswith("."):
                        found[PurePosixPath(path.relative_to(top).as_posix())] = path
        return dict(sorted(found.items()))

    @cached_property
    def fingerprint(self) -> str:
        """A hash of every file of the theme (for the render cache)."""
        digest = hashlib.sha256()
        for base in self.dirs:
            for path in sorted(base.rglob("*")):
                if path.is_file():
                    digest.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()


def load_theme(config: Config) -> Theme:
    builtin = builtin_theme_dir()
    user = config.themes_dir / config.build.theme
    cache = config.root / ".publisher-cache" / "templates"
    if user.is_dir() and user.resolve() != builtin.resolve():
        return Theme((user, builtin), config.root, cache)
    if config.build.theme != "default" and not user.is_dir():
        raise PublisherError(f"build.theme is {config.build.theme!r} but there is no folder "
                             f"{relpath(user, config.root)}",
                             file=config.file.name, field="build.theme",
                             hint="create the folder with the templates you override, or use theme = \"default\"")
    return Theme((builtin,), config.root, cache)
