"""Small filesystem helpers shared by the writers of folders (build writes dist/, deploy writes a folder)."""

from __future__ import annotations

from pathlib import Path


def prune_empty_parents(path: Path, top: Path) -> None:
    """Remove the folders above a deleted `path` that became empty, up to (not including) `top`."""
    for parent in path.parents:
        if parent == top or top not in parent.parents:
            return
        try:
            parent.rmdir()
        except OSError:  # not empty
            return
