"""The sample newsletter a newcomer previews first: nothing on it is broken."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from lxml import html as lxml_html


def test_every_image_on_the_sample_site_is_shipped_with_it(sample_build):
    """Every <img> of every page, web and email copies alike, resolves to a file in dist/ (no image on a host
    that does not answer)."""
    site = "https://ai-daily.example.com/"  # the sample's site.url: emails use absolute URLs on it
    checked = 0
    for page in sample_build.rglob("*.html"):
        url = site + page.relative_to(sample_build).as_posix()
        for src in lxml_html.fromstring(page.read_bytes()).xpath("//img/@src"):
            target = urlsplit(urljoin(url, src))
            assert target.netloc == urlsplit(site).netloc, f"{page.relative_to(sample_build)}: {src} is on another host"
            assert (sample_build / target.path.lstrip("/")).is_file(), f"{page.relative_to(sample_build)}: {src}"
            checked += 1
    assert checked >= 10  # the sample really has illustrations
