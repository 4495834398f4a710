"""`.publisher-cache/` is hostile: CI restores it from a shared cache, anyone may copy one in. Whatever it holds,
a build executes none of it, publishes none of it unless this machine's key signed it, and gives the output of
a cold build (no cache), exit 0, no traceback.

The helpers read both the current record format and the one before it (a pickle log, format 3), so that each
test also fails on the code before the change.
"""

from __future__ import annotations

import ast
import os
import pickle
import shlex
import struct
from pathlib import Path

import pytest
from conftest import NOW, REPO

from publisher import __version__
from publisher.build import build

CACHE = ".publisher-cache"
LOG = "render.log"
RECORD = "build.json"  # the last build's record: with it, a build that changes nothing reads no render at all


def plant(log: Path, data: bytes) -> None:
    """Put `data` in the render cache's place, and drop the build record, so the next build reads the cache."""
    log.write_bytes(data)
    (log.parent / RECORD).unlink(missing_ok=True)
KEY_ENV = "PUBLISHER_CACHE_KEY_FILE"
FRAME = struct.Struct("<cHQ")
BYTES, TEXT, ISSUE = b"B", b"S", b"I"  # record kinds: raw bytes, UTF-8 text, a parsed issue as JSON


@pytest.fixture(autouse=True)
def key(tmp_path, monkeypatch, run_cli):
    """This machine's key, outside the newsletter folder (set after `run_cli`, which clears PUBLISHER_*)."""
    path = tmp_path / "home" / "cache-key"
    monkeypatch.setenv(KEY_ENV, str(path))
    return path


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def records(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes, int, int]], int]:
    """The first line of a render.log, its records as (kind, key, value start, value end), and the tag size."""
    first = data[:data.index(b"\n") + 1]
    tag = 0 if len(first.split(b" ")) == 3 else 32  # format 3 ("publisher-cache VERSION 3") had no tags
    found, offset = [], len(first)
    while offset + FRAME.size <= len(data):
        kind, key_length, value_length = FRAME.unpack_from(data, offset)
        start = offset + FRAME.size + key_length
        found.append((kind, data[offset + FRAME.size:start], start, start + value_length))
        offset = start + value_length + tag
    return first, found, tag


def frame(kind: bytes, key: bytes, value: bytes, tag: int) -> bytes:
    return FRAME.pack(kind, len(key), len(value)) + key + value + b"\0" * tag


class Exploit:
    """Unpickled, it runs a shell command that creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


@pytest.fixture
def exploit(tmp_path):
    marker = tmp_path / "PWNED"
    payload = pickle.dumps(Exploit(marker))
    pickle.loads(payload)  # the payload is real: unpickled, it runs the command...
    assert marker.exists()
    marker.unlink()  # ...so its marker appearing later proves the build unpickled it
    return payload, marker


def newsletter_with_cache(newsletter):
    """Three issues (one marked ORIGINAL), a warm cache, and the output of a cold build to compare with."""
    newsletter.issue("2026-11-18-a.md", "title: 第一期\ndate: 2026-11-18\ntags: [模型]\n", "甲的正文 ORIGINAL。\n")
    newsletter.issue("2026-11-19-b.md", "title: 第二期\ndate: 2026-11-19 08:00\n", "乙见[上一期](2026-11-18-a.md)。\n")
    newsletter.issue("2026-11-20-c.md", "title: 第三期\ndate: 2026-11-20\n", "丙的正文。\n")
    config = newsletter.load_config()
    cold = build(config, now=NOW, output=newsletter.root / "cold", use_cache=False)
    warm = build(config, now=NOW)  # fills the cache
    assert warm.cache_misses == cold.cache_misses > 0
    assert build(config, now=NOW, output=newsletter.root / "warm").cache_misses == 0  # it is used
    return config, cold


def assert_like_a_cold_build(newsletter, result, cold, *, all_missed=True):
    dist, reference = tree(newsletter.root / "dist"), tree(newsletter.root / "cold")
    assert dist.keys() == reference.keys()
    assert [p for p in dist if dist[p] != reference[p]] == []
    if all_missed:
        assert result.cache_misses == cold.cache_misses  # nothing was taken from the cache


def test_a_planted_pickle_is_never_executed(newsletter, exploit):
    payload, marker = exploit
    config, cold = newsletter_with_cache(newsletter)
    log = newsletter.root / CACHE / LOG
    first, found, tag = records(log.read_bytes())
    crafted = {
        # the format before this change, which unpickled every record that was not raw bytes
        "format 3": f"publisher-cache {__version__} 3\n".encode() + b"".join(frame(b"P", k, payload, 0)
                                                                         for _, k, _, _ in found),
        # the current format with this machine's own first line (an attacker can read it from the shared cache)
        "current": first + b"".join(frame((BYTES, TEXT, ISSUE)[n % 3], k, payload, tag)
                                    for n, (_, k, _, _) in enumerate(found)) + frame(b"P", found[0][1], payload, tag),
    }
    for name, data in crafted.items():
        plant(log, data)
        try:
            result = build(config, now=NOW)
        finally:  # whatever the build made of it, the command must not have run
            assert not marker.exists(), f"the {name} record was unpickled: it ran a command"
        assert_like_a_cold_build(newsletter, result, cold)


def test_nothing_read_back_is_unpickled_even_if_it_were_signed(exploit):
    """Past the authentication, too, a record is data: a parsed issue is JSON, never a pickle."""
    from publisher.cache import decode

    payload, marker = exploit
    with pytest.raises(ValueError):
        decode(ISSUE, payload)
    assert decode(BYTES, payload) == payload  # raw bytes stay bytes
    assert not marker.exists()


def test_a_parsed_issue_reads_back_equal_to_itself_zone_included(newsletter):
    """An issue is stored as its fields (the date as ISO 8601 with the zone's name) and rebuilt from them."""
    from conftest import CONFIG

    from publisher.cache import decode, encode
    from publisher.content import load_issues

    newsletter.config(CONFIG.replace("Asia/Shanghai", "America/New_York"))
    newsletter.issue("a.md", "title: A\ndate: 2026-11-01 01:30\ntags: [x, 大模型]\nauthors: [张三]\n")  # twice that day
    newsletter.issue("b.md", "title: B\ndate: 2026-03-08 02:30\nsubject: 主题\nsend: false\n")  # not that day
    newsletter.issue("c.md", "title: C\ndate: 2026-11-20T08:00:00+05:30\nsource: https://example.org/x\n")
    newsletter.issue("d.md", "title: D\ndate: 2026-11-20T08:00:00Z\ndraft: true\nimage: a.png\n", body="")
    (newsletter.content / "a.png").write_bytes(b"\x89PNG")  # a local image must exist (issue 15)
    issues = load_issues(newsletter.load_config())
    assert len(issues) == 4
    for issue in issues:
        again, warnings = decode(*encode((issue, ("a warning",))))
        assert again == issue and warnings == ("a warning",)
        assert repr(again.date) == repr(issue.date) and again.date.utcoffset() == issue.date.utcoffset()


def test_edited_bytes_in_a_record_are_detected(newsletter, caplog):
    config, cold = newsletter_with_cache(newsletter)
    log = newsletter.root / CACHE / LOG
    data = log.read_bytes()
    assert data.count(b"ORIGINAL") >= 3  # the parsed issue, its HTML, its page...
    plant(log, data.replace(b"ORIGINAL", b"HACKED!!"))  # same length: every frame still parses
    caplog.clear()
    result = build(config, now=NOW)
    assert b"HACKED!!" not in b"".join(tree(newsletter.root / "dist").values())
    assert_like_a_cold_build(newsletter, result, cold, all_missed=False)
    assert 0 < result.cache_misses < cold.cache_misses  # the records left alone are still used
    assert caplog.text.count("ignoring part of the render cache") == 1 and LOG in caplog.text  # once, named
    assert b"HACKED!!" not in log.read_bytes()  # the save rewrote the log without the refused records
    assert build(config, now=NOW).cache_misses == 0


def zero_values(data: bytes) -> bytes:
    first, found, _ = records(data)
    out = bytearray(data)
    for _, _, start, end in found:
        out[start:end] = bytes(end - start)
    return bytes(out)


DAMAGE = {
    "zeroed records": zero_values,
    "zeroed file": lambda data: bytes(len(data)),
    "cut in half": lambda data: data[:len(data) // 2],
    "cut in the first line": lambda data: data[:10],
    "empty": lambda data: b"",
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_cache_is_a_miss_not_an_error(newsletter, run_cli, damage):
    config, _ = newsletter_with_cache(newsletter)
    log = newsletter.root / CACHE / LOG
    plant(log, damage(log.read_bytes()))
    result = run_cli("-C", str(newsletter.root), "build")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "Error" not in result.output
    assert result.stderr.count(LOG) <= 1  # said once, if at all
    assert tree(newsletter.root / "dist") == tree(newsletter.root / "cold")


def test_a_cache_from_another_machine_is_all_misses(newsletter, tmp_path, monkeypatch, key):
    config, cold = newsletter_with_cache(newsletter)  # under this machine's key
    log = newsletter.root / CACHE / LOG
    mine = log.read_bytes()
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "elsewhere" / "cache-key"))
    log.unlink()
    build(config, now=NOW, output=tmp_path / "theirs")  # another machine: the same content, its own key
    theirs = log.read_bytes()
    monkeypatch.setenv(KEY_ENV, str(key))  # back on this machine, with their cache
    # The key's id on the first line is no secret (it is in every cache): a forged one changes nothing either.
    forged = mine[:mine.index(b"\n") + 1] + theirs[theirs.index(b"\n") + 1:]
    for data in (theirs, forged):
        plant(log, data)
        assert_like_a_cold_build(newsletter, build(config, now=NOW), cold)
    assert build(config, now=NOW).cache_misses == 0  # rewritten under this machine's key


def test_the_key_is_made_once_private_and_outside_the_cache(newsletter, tmp_path, monkeypatch, key, caplog):
    newsletter.issue("2026-11-20-a.md")
    config = newsletter.load_config()
    assert not key.exists()
    build(config, now=NOW)
    made = key.read_bytes()
    assert len(made) == 32 and key.stat().st_mode & 0o777 == 0o600
    assert not list((newsletter.root / CACHE).rglob("*key*"))
    assert build(config, now=NOW).cache_misses == 0 and key.read_bytes() == made  # kept, not remade
    key.chmod(0o644)  # other users could read it, and forge records
    caplog.clear()
    assert build(config, now=NOW).cache_misses > 0 and "open to other users" in caplog.text
    monkeypatch.setenv(KEY_ENV, str(newsletter.root / CACHE / "cache-key"))  # where the attacker can read it
    caplog.clear()
    assert build(config, now=NOW).cache_misses > 0 and "is inside it" in caplog.text
    assert not (newsletter.root / CACHE / "cache-key").exists()


def test_default_key_place_follows_xdg(tmp_path):
    from publisher.keys import key_file, load_key

    assert key_file({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "publisher" / "cache-key"
    assert key_file({"XDG_CACHE_HOME": "relative"}) == Path.home() / ".cache" / "publisher" / "cache-key"
    assert key_file({KEY_ENV: str(tmp_path / "k")}) == tmp_path / "k"
    assert load_key(tmp_path / "made" / "k") == load_key(tmp_path / "made" / "k")


def test_links_planted_in_the_cache_folder_are_not_followed(newsletter, tmp_path):
    """A restored cache can hold symbolic links: reading, saving the cache or taking the lock never goes through
    one to a file elsewhere."""
    config, _ = newsletter_with_cache(newsletter)
    folder = newsletter.root / CACHE
    victims = {"victim": b"precious", "a cache": (folder / LOG).read_bytes()}
    for name, data in victims.items():
        (tmp_path / name).write_bytes(data)
    for name, target in ((LOG, "a cache"), (LOG + ".tmp", "victim"), ("build.lock", "victim")):
        (folder / name).unlink(missing_ok=True)
        (folder / name).symlink_to(tmp_path / target)
    newsletter.issue("2026-11-21-d.md", "title: 第四期\ndate: 2026-11-21\n")  # something to save
    build(config, now=NOW)
    assert {name: (tmp_path / name).read_bytes() for name in victims} == victims


# ---- the source: no reading back through pickle, marshal or eval ----

UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "jsonpickle", "joblib"}
UNSAFE_CALLS = {"eval", "exec"}


def unsafe_uses(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append(node.module or "")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in UNSAFE_CALLS:
            found.append(node.func.id + "()")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__":
            found.append("__import__()")
    return found


def test_the_package_neither_unpickles_nor_evaluates():
    """No module imports pickle or marshal (or a wrapper of them) or calls eval/exec. The render workers' results
    do cross processes as pickles, but only inside concurrent.futures, in memory, from a fork of this process:
    never bytes read from a file."""
    found = {str(path.relative_to(REPO)): uses for path in sorted((REPO / "publisher").rglob("*.py"))
             if (uses := unsafe_uses(path.read_text(encoding="utf-8")))}
    assert found == {}


def test_the_scan_finds_what_it_looks_for():
    assert unsafe_uses("import pickle\nfrom marshal import loads\nimport shelve as s\neval('1')\n") == [
        "pickle", "marshal", "shelve", "eval()"]
    assert unsafe_uses("import json\npickled = 1\n") == []


def test_compiled_templates_in_the_cache_are_never_executed(newsletter, exploit, run_cli):
    from jinja2.bccache import bc_magic

    payload, marker = exploit
    newsletter.issue("2026-11-20-a.md")
    assert run_cli("-C", str(newsletter.root), "build").exit_code == 0
    for path in (newsletter.root / CACHE).rglob("*"):
        if path.is_file() and path.name != LOG and path.name != "build.lock":
            path.write_bytes(bc_magic + payload)
    newsletter.issue("2026-11-20-a.md", body="changed: every page renders again\n")
    run_cli("-C", str(newsletter.root), "build")
    assert not marker.exists()



def test_compiled_templates_are_kept_signed_and_only_what_verifies_is_loaded(newsletter, run_cli):
    """The template cache still saves compiling in a new process, and a file whose tag does not verify (one bit
    flipped, or a planted one) never reaches Jinja's unmarshalling."""
    import jinja2

    from publisher.themes import _SignedBytecodeCache

    newsletter.issue("2026-11-20-a.md")
    assert run_cli("-C", str(newsletter.root), "build").exit_code == 0
    folder = newsletter.root / CACHE / "templates"
    assert list(folder.glob("__jinja2_*.cache"))  # the build kept its compiled templates
    cache = _SignedBytecodeCache.at(folder)
    env = jinja2.Environment()
    source = "你好，{{ name }}"

    def fresh() -> jinja2.bccache.Bucket:
        return jinja2.bccache.Bucket(env, "probe", cache.get_source_checksum(source))

    made = fresh()
    made.code = env.compile(source, "probe")
    cache.dump_bytecode(made)
    loaded = fresh()
    cache.load_bytecode(loaded)
    assert loaded.code is not None  # a verified file is used
    path = cache._path(loaded)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    tampered = fresh()
    cache.load_bytecode(tampered)
    assert tampered.code is None  # not verified: compiled again, never unmarshalled
