"""`--download-images`: copy an imported issue's remote images beside it, so the archive no longer depends on the
old host. Every image is untrusted: http(s) only, size- and time-limited (network.fetch), and kept only when its
first bytes say it is a raster image (PNG, JPEG, GIF, WebP, AVIF): an SVG can carry script, an HTML error page
can claim to be an image. An image that cannot be copied stays remote, and the report says why."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PublisherError
from . import network

MAX_IMAGE_BYTES = 10 * 1024 * 1024
WORKERS = 8
_IMAGE = re.compile(r"!\[[^\]\n]*\]\((https?://[^)\s]+)")  # the converter writes no spaces or ( ) in a URL

Fetch = Callable[..., tuple[bytes, str]]


def kind(data: bytes) -> str | None:
    """The file extension of a raster image from its first bytes, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if data.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return ".gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[4:12] in (b"ftypavif", b"ftypavis"):
        return ".avif"
    return None


def remote_images(markdown: str) -> list[str]:
    """The http(s) images of a Markdown body, each once, in order."""
    return list(dict.fromkeys(_IMAGE.findall(markdown)))


@dataclass
class Copied:
    names: dict[str, str] = field(default_factory=dict)  # URL -> file name in the folder
    kept: list[tuple[str, str]] = field(default_factory=list)  # (URL, why it stays remote)


class ImageCopier:
    def __init__(self, fetch: Fetch = network.fetch, workers: int = WORKERS) -> None:
        self.fetch = fetch
        self.workers = workers

    def _one(self, url: str) -> tuple[str, bytes | None, str]:
        try:
            data, _ = self.fetch(url, limit=MAX_IMAGE_BYTES, accept="image/avif,image/webp,image/png,image/jpeg,"
                                                                   "image/gif;q=0.9")
        except PublisherError as exc:
            return url, None, str(exc)
        ext = kind(data)
        if ext is None:
            return url, None, "not a PNG, JPEG, GIF, WebP or AVIF image"
        return url, data, ext

    def copy(self, urls: list[str], folder: Path) -> Copied:
        """Download `urls` into `folder` (named by content hash, so two URLs of one picture share a file)."""
        from .writer import write_new

        copied = Copied()
        with ThreadPoolExecutor(max_workers=min(self.workers, len(urls) or 1)) as pool:
            for url, data, ext_or_why in pool.map(self._one, urls):
                if data is None:
                    copied.kept.append((url, ext_or_why))
                    continue
                name = hashlib.sha256(data).hexdigest()[:16] + ext_or_why
                target = folder / name
                if not target.exists():
                    write_new(target, data)
                copied.names[url] = name
        return copied


def rewrite(markdown: str, folder_name: str, names: dict[str, str]) -> str:
    """The body with each copied image's URL replaced by its path beside the issue."""
    def local(match: re.Match[str]) -> str:
        url = match.group(1)
        return match.group(0) if url not in names else match.group(0).replace(url, f"{folder_name}/{names[url]}")

    return _IMAGE.sub(local, markdown)
