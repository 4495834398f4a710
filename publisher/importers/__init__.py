"""Importers: one module per source, each reading an export into `writer.Post`s and/or `writer.Imported`
subscriber rows, and one shared writer (`writer.py`) that writes the issues and stores the subscribers under the
consent rules. A source module has `read_posts(path, report, **options)` when the export holds past issues and
`read_subscribers(path, **options)` when it holds a list."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import PublisherError

SOURCES = ("feed", "substack", "buttondown", "ghost", "mailchimp", "listmonk", "csv")
_MODULES = {"csv": "csv_file"}  # never shadow the stdlib


def source(name: str) -> ModuleType:
    """The module that reads exports of `name`."""
    if name not in SOURCES:
        raise PublisherError(f"unknown source {name!r}", hint=f"one of {', '.join(SOURCES)}")
    return importlib.import_module(f".{_MODULES.get(name, name)}", __name__)
