"""`publisher import … --download-images`: remote images copied beside each issue from a real local HTTP server;
what is not a raster image, too large, or missing stays remote and is reported."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
import yaml
from browsers import served_folder
from conftest import NOW

from publisher import build as build_mod
from publisher.importers import images, writer
from publisher.importers.feed import read_posts


def png(width: int = 2, height: int = 1, seed: int = 0) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes([seed % 256, 0, 0] * width) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def host(tmp_path: Path):
    folder = tmp_path / "host"
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "chart.png").write_bytes(png(seed=1))
    (folder / "img" / "same-chart.png").write_bytes(png(seed=1))  # the same picture at a second URL
    (folder / "img" / "cover.png").write_bytes(png(seed=2))
    (folder / "img" / "evil.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script>'
                                             '</svg>', encoding="utf-8")
    (folder / "img" / "page.png").write_text("<html>not found</html>", encoding="utf-8")
    (folder / "img" / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (images.MAX_IMAGE_BYTES + 1))
    with served_folder(folder) as base:
        yield base


def feed(base: str) -> str:
    pictures = "".join(f'<p><img src="{base}img/{name}" alt="{name}"></p>'
                       for name in ("chart.png", "same-chart.png", "evil.svg", "page.png", "huge.png", "gone.png"))
    body = f"<p>图表 and text.</p>{pictures}".replace("&", "&amp;").replace("<", "&lt;")
    return (f'<?xml version="1.0"?><rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>'
            f'<title>Old</title><link>{base}</link><item><title>Charts 图表</title><link>{base}p/charts</link>'
            f'<pubDate>Tue, 01 Sep 2026 08:00:00 +0000</pubDate><description>{body}</description>'
            f'<media:thumbnail url="{base}img/cover.png"/></item></channel></rss>')


def test_images_are_copied_beside_the_issue_and_the_rest_stay_remote(newsletter, host, tmp_path):
    source = tmp_path / "feed.xml"
    source.write_text(feed(host), encoding="utf-8")
    config = newsletter.load_config()
    report = writer.IssueReport(str(source))
    writer.write_issues(config, read_posts(str(source), report), report,
                        images=images.ImageCopier())
    [written] = report.written
    issue = newsletter.root / written.path
    folder = issue.with_suffix("")
    files = sorted(p.name for p in folder.iterdir())
    assert len(files) == 2 and all(f.endswith(".png") for f in files)  # chart (twice, one file) and the cover
    assert report.images == 3  # three URLs now point to local copies
    text = issue.read_text(encoding="utf-8")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["image"].startswith(f"{folder.name}/") and (newsletter.content / meta["image"]).read_bytes() == \
        png(seed=2)
    assert "img/chart.png" not in text and "img/same-chart.png" not in text
    assert text.count(f"]({folder.name}/") == 2
    kept = {note.split("image ")[1].split(" stays")[0]: note for note in report.notes}
    assert set(kept) == {f"{host}img/{n}" for n in ("evil.svg", "page.png", "huge.png", "gone.png")}
    assert "not a PNG" in kept[f"{host}img/evil.svg"] and "not a PNG" in kept[f"{host}img/page.png"]
    assert "limit" in kept[f"{host}img/huge.png"] and "404" in kept[f"{host}img/gone.png"]
    for name in ("evil.svg", "page.png", "huge.png", "gone.png"):
        assert f"{host}img/{name}" in text  # still there, remote

    # the copies are published with the issue, at the paths the page uses
    result = build_mod.build(config, now=NOW, use_cache=False)
    page = (result.output / "issues" / written.path.split("-", 3)[-1].removesuffix(".md") / "index.html")
    html = page.read_text(encoding="utf-8")
    for name in files:
        assert name in html
        assert list(result.output.rglob(name)), name


def test_a_dry_run_counts_the_images_and_downloads_nothing(newsletter, host, tmp_path, run_cli):
    source = tmp_path / "feed.xml"
    source.write_text(feed(host), encoding="utf-8")
    result = run_cli("-C", str(newsletter.root), "import", "feed", str(source), "--download-images", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "1 issue would be written, 0 skipped, 7 images to copy (dry run" in result.output
    assert [p for p in newsletter.content.rglob("*") if p.is_file()] == []
    done = run_cli("-C", str(newsletter.root), "import", "feed", str(source), "--download-images")
    assert "1 issue written, 0 skipped, 3 images copied" in done.output, done.output


@pytest.mark.parametrize(("data", "ext"), [(png(), ".png"), (b"\xff\xd8\xff\xe0JFIF", ".jpg"),
                                          (b"GIF89a....", ".gif"), (b"RIFF\0\0\0\0WEBPVP8 ", ".webp"),
                                          (b"\0\0\0\x1cftypavif", ".avif"), (b"<svg/>", None),
                                          (b"<!doctype html>", None), (b"", None)])
def test_an_image_is_known_by_its_bytes_not_its_name(data, ext):
    assert images.kind(data) == ext
