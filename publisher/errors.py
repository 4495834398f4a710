"""The one exception type for things a user did wrong and can fix.

Library code raises `PublisherError`; the CLI prints it (every problem, one line each) and exits 1. A bug in
`publisher` itself is any other exception and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where it is, which field, what is wrong and what to do."""

    message: str
    file: Path | str | None = None
    field: str | None = None
    line: int | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = str(self.file)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        field = f"{self.field}: " if self.field else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{field}{self.message}{hint}"


class PublisherError(Exception):
    """A user-facing error. Carries one or more `Problem`s so a build can report all of them at once."""

    def __init__(
        self,
        message: str = "",
        *,
        file: Path | str | None = None,
        field: str | None = None,
        line: int | None = None,
        hint: str | None = None,
        problems: Iterable[Problem] = (),
    ) -> None:
        self.problems: list[Problem] = list(problems) or [Problem(message, file, field, line, hint)]
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)

    def __reduce__(self) -> tuple[object, ...]:
        # Keeps every problem when the error crosses from a worker process.
        return (self.__class__, (), {"problems": self.problems})


def relpath(path: Path, root: Path) -> Path:
    """A path as the user knows it: relative to the newsletter folder when it is inside it."""
    try:
        return path.relative_to(root)
    except ValueError:
        return path
