"""publisher.toml: validation names the key, the file and the expected form; all errors at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.config import load_config
from publisher.errors import PublisherError


def write(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "publisher.toml").write_text(text, encoding="utf-8")
    return root


def problems(root: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(PublisherError) as info:
        load_config(root, environ=environ or {})
    return [str(p) for p in info.value.problems]


def test_defaults(tmp_path):
    config = load_config(write(tmp_path, '[site]\ntitle = "T"\nurl = "https://e.com/news"\n'), environ={})
    assert config.site.url == "https://e.com/news/"  # a base URL is a folder
    assert config.site.language == "en" and str(config.site.timezone) == "UTC"
    assert config.build.output == Path("dist") and config.build.theme == "default"
    assert config.feeds.limit == 20 and config.feeds.full_content is True
    assert config.output_dir == tmp_path.resolve() / "dist"


def test_missing_file_says_what_to_do(tmp_path):
    assert "run `publisher init`" in problems(tmp_path)[0]


def test_required_keys(tmp_path):
    found = problems(write(tmp_path, "[site]\n"))
    assert any(p.startswith("publisher.toml: site.title: site.title is required") for p in found)
    assert any("site.url is required" in p for p in found)


@pytest.mark.parametrize(("line", "expected"), [
    ('url = "example.com"', "site.url must be an absolute http(s) URL"),
    ('url = "ftp://example.com/"', "site.url must be an absolute http(s) URL"),
    ('timezone = "Mars/Olympus"', "site.timezone must be an IANA time zone name"),
    ('language = "Chinese"', "site.language must be a BCP 47 language tag"),
    ('author_email = "nobody"', "site.author_email must be an email address"),
    ("title = 3", "site.title must be a string"),
    ('title = "  "', "site.title must not be empty"),
])
def test_wrong_site_values(tmp_path, line, expected):
    base = {"title": '"T"', "url": '"https://e.com/"'}
    key = line.split(" = ")[0]
    base[key] = line.split(" = ", 1)[1]
    text = "[site]\n" + "".join(f"{k} = {v}\n" for k, v in base.items())
    found = problems(write(tmp_path, text))
    assert len(found) == 1
    assert found[0].startswith(f"publisher.toml: site.{key}: {expected}")


def test_all_errors_at_once(tmp_path):
    text = '[site]\ntitle = "T"\nurl = "nope"\ntimezone = "Nowhere"\n[feeds]\nlimit = 0\nfull_content = "yes please"\n'
    found = problems(write(tmp_path, text))
    assert [p.split(":")[1].strip() for p in found] == ["site.url", "site.timezone", "feeds.limit",
                                                        "feeds.full_content"]


def test_invalid_toml_names_the_file(tmp_path):
    found = problems(write(tmp_path, "[site\ntitle = 1\n"))
    assert found[0].startswith("publisher.toml: is not valid TOML")


def test_unknown_keys_warn_with_suggestion(tmp_path, caplog):
    load_config(write(tmp_path, '[site]\ntitle = "T"\nurl = "https://e.com/"\ntitel = "x"\n'), environ={})
    assert "unknown key site.titel (did you mean site.title?)" in caplog.text


def test_environment_overrides_the_file(tmp_path):
    root = write(tmp_path, '[site]\ntitle = "T"\nurl = "https://e.com/"\n[feeds]\nlimit = 5\n')
    config = load_config(root, environ={"PUBLISHER_SITE_URL": "https://other.example/", "PUBLISHER_FEEDS_LIMIT": "7"})
    assert config.site.url == "https://other.example/" and config.feeds.limit == 7
    found = problems(root, {"PUBLISHER_FEEDS_LIMIT": "many"})
    assert "environment variable PUBLISHER_FEEDS_LIMIT" in found[0]


def test_overrides_none_means_not_given(tmp_path):
    root = write(tmp_path, '[site]\ntitle = "T"\nurl = "https://e.com/"\n[build]\noutput = "out"\n')
    assert load_config(root, {"build.output": None}, environ={}).build.output == Path("out")
    assert load_config(root, {"build.output": "x"}, environ={}).build.output == Path("x")
