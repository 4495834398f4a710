"""WebSub: every feed names the hubs of `feeds.hubs` and its own rel="self" URL, and a deploy that changed feeds
pings each hub (a real HTTP server on 127.0.0.1 that records what it received) once the feeds are live."""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

import boto3
import feedcheck
import feedparser
import pytest
from conftest import CONFIG, NOW, free_port
from lxml import etree
from waiting import FakeClock

from publisher.build import build
from publisher.deploy import deploy
from publisher.errors import PublisherError
from publisher.feeds import feed_url, is_feed
from publisher.websub import Notifier

ATOM = "{http://www.w3.org/2005/Atom}"
SITE = "https://news.example.com/daily/"
SITE_FEEDS = ["atom.xml", "feed.json", "rss.xml"]
TAG_FEEDS = ["tags/模型/atom.xml", "tags/模型/feed.json", "tags/模型/rss.xml"]


class Hub:
    """A WebSub hub on 127.0.0.1 that records every request and answers from a script (then 204)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict[str, str], bytes]] = []
        self.on_request = None  # called in the server thread with the form, before the answer
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                form = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
                seen = hub.on_request(form) if hub.on_request else None
                with hub.lock:
                    hub.requests.append({"path": self.path, "type": self.headers.get("Content-Type"),
                                         "agent": self.headers.get("User-Agent", ""), "form": form, "seen": seen})
                    status, headers, text = hub.answers.pop(0) if hub.answers else (204, {}, b"")
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def topics(self, n: int = 0) -> list[str]:
        form = self.requests[n]["form"]
        assert [v for k, v in form if k == "hub.mode"] == ["publish"]
        assert {k for k, _ in form} == {"hub.mode", "hub.url"}
        return [v for k, v in form if k == "hub.url"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def hub():
    server = Hub()
    yield server
    server.close()


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/"  # nothing listens there: connection refused


def setup(newsletter, hubs: list[str], extra: str = ""):
    newsletter.config(CONFIG + f"[feeds]\nhubs = {json.dumps(hubs)}\n" + extra)
    newsletter.issue("2026-11-20-a.md", "title: 第一期\ndate: 2026-11-20\ntags: [模型]\n", "甲的正文。\n")
    newsletter.issue("2026-11-21-b.md", "title: 第二期\ndate: 2026-11-21\n", "乙的正文。\n")
    config = newsletter.load_config()
    build(config, now=NOW)
    return config


def urls(*keys: str) -> list[str]:
    from urllib.parse import quote

    return [SITE + quote(key) for key in keys]


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


# ---- discovery: the feeds ----


def test_every_feed_names_each_hub_and_its_own_self_url(newsletter):
    hubs = ["https://pubsubhubbub.appspot.com/", "https://hub.example.net/websub"]
    config = setup(newsletter, hubs)
    dist = config.output_dir
    found = sorted(p.relative_to(dist).as_posix() for p in dist.rglob("*") if is_feed(p.relative_to(dist).as_posix()))
    assert found == SITE_FEEDS + TAG_FEEDS
    for key in found:
        data = (dist / key).read_bytes()
        self_url = feed_url(config, key)
        assert self_url == urls(key)[0]  # the exact public URL: the WebSub topic
        if key.endswith(".json"):
            feed = json.loads(data)
            assert feed["hubs"] == [{"type": "WebSub", "url": h} for h in hubs]
            assert feed["feed_url"] == self_url
            assert feedcheck.check_json_feed(data, self_url=self_url) == []
            continue
        root = etree.fromstring(data)
        parent = root.find("channel") if root.tag == "rss" else root
        links = parent.findall(f"{ATOM}link")
        assert [link.get("href") for link in links if link.get("rel") == "hub"] == hubs, key
        assert [link.get("href") for link in links if link.get("rel") == "self"] == [self_url], key
        check = feedcheck.check_rss if root.tag == "rss" else feedcheck.check_atom
        assert check(data, self_url=self_url) == [], key
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0
        assert [link.href for link in parsed.feed.links if link.rel == "hub"] == hubs, key
    rss = etree.fromstring((dist / "rss.xml").read_bytes())
    assert rss.findtext("channel/link") == SITE  # the hub links do not take RSS's <link>


def test_no_hubs_no_hub_links(newsletter):
    newsletter.issue("2026-11-20-a.md")
    config = newsletter.load_config()
    assert config.feeds.hubs == ()
    build(config, now=NOW)
    dist = config.output_dir
    assert b'rel="hub"' not in (dist / "rss.xml").read_bytes() + (dist / "atom.xml").read_bytes()
    assert "hubs" not in json.loads((dist / "feed.json").read_bytes())


def test_changing_the_hubs_changes_every_feed_past_the_render_cache(newsletter):
    config = setup(newsletter, ["https://one.example.com/"])
    before = tree(config.output_dir)
    newsletter.config(CONFIG + '[feeds]\nhubs = ["https://two.example.com/"]\n')
    changed = newsletter.load_config()
    warm = build(changed, now=NOW)
    build(changed, now=NOW, output=newsletter.root / "cold", use_cache=False)
    after, cold = tree(changed.output_dir), tree(newsletter.root / "cold")
    assert after == cold and warm.cache_misses > 0
    assert sorted(k for k in after if after[k] != before[k]) == SITE_FEEDS + TAG_FEEDS
    assert all(b"https://two.example.com/" in after[k] for k in SITE_FEEDS + TAG_FEEDS)


def test_is_feed_knows_the_feeds_render_feeds_writes():
    assert all(is_feed(k) for k in SITE_FEEDS + TAG_FEEDS + ["tags/x/rss.xml", "tags/x/feed.json"])
    assert not any(is_feed(k) for k in ("tags/x/index.json", "issues/a/rss.xml", "static/atom.xml",
                                        "tags/x/y/rss.xml", "sitemap.xml", "tags/rss.xml", "rss.xml/x"))


# ---- config ----


@pytest.mark.parametrize(("value", "message"), [
    ('"https://pubsubhubbub.appspot.com/"', "feeds.hubs must be a list of WebSub hub URLs"),
    ('["ftp://hub.example.com/"]', "feeds.hubs must hold absolute http(s) URLs"),
    ('["hub.example.com"]', "'hub.example.com' is not one"),
    ('[42]', "42 is not one"),
    ('["https://a.example.com/", "https://A.example.com"]', "feeds.hubs must name each hub once"),
    ('["https://user:secret@hub.example.com/"]', "feeds.hubs must not put a user name or password"),
])
def test_bad_hubs_are_refused_naming_feeds_hubs(newsletter, value, message):
    newsletter.config(CONFIG + f"[feeds]\nhubs = {value}\n")
    with pytest.raises(PublisherError) as info:
        newsletter.load_config()
    (problem,) = info.value.problems
    assert problem.field == "feeds.hubs" and message in problem.message, problem.message


def test_hubs_from_the_environment_are_a_toml_array(newsletter):
    from publisher.config import load_config

    config = load_config(newsletter.root, environ={"PUBLISHER_FEEDS_HUBS": '["https://hub.example.com/"]'})
    assert config.feeds.hubs == ("https://hub.example.com/",)
    with pytest.raises(PublisherError, match="environment variable PUBLISHER_FEEDS_HUBS"):
        load_config(newsletter.root, environ={"PUBLISHER_FEEDS_HUBS": "https://hub.example.com/"})


# ---- pings: a folder target ----


def test_a_deploy_pings_the_hub_with_exactly_the_changed_feeds_once_they_are_live(newsletter, hub):
    config = setup(newsletter, [hub.url])
    public = newsletter.root / "public"
    dist = config.output_dir
    # what a hub fetching the topics would see when the ping arrives
    hub.on_request = lambda form: {k: (public / k).is_file() and (public / k).read_bytes() == (dist / k).read_bytes()
                                   for k in SITE_FEEDS + TAG_FEEDS}
    first = deploy(config, notifier=Notifier(sleep=FakeClock().sleep))
    assert len(hub.requests) == 1
    request = hub.requests[0]
    assert request["path"] == "/hub" and request["type"] == "application/x-www-form-urlencoded"
    assert request["agent"].startswith("publisher/")
    assert hub.topics() == urls(*SITE_FEEDS, *TAG_FEEDS)
    assert all(request["seen"].values())  # every feed was in place before the hub heard of it
    (ping,) = first.hub_pings
    assert ping.ok and ping.status == 204 and ping.attempts == 1 and ping.hub == hub.url
    assert list(ping.feeds) == urls(*SITE_FEEDS, *TAG_FEEDS)

    again = deploy(config)  # nothing changed: nothing to tell
    assert again.uploaded == 0 and again.hub_pings == [] and len(hub.requests) == 1

    path = newsletter.content / "2026-11-21-b.md"  # b has no tag: the tag feeds stay as they are
    path.write_text(path.read_text(encoding="utf-8").replace("乙的正文", "乙改过的正文"), encoding="utf-8")
    build(config, now=NOW)
    third = deploy(config)
    assert len(hub.requests) == 2 and hub.topics(1) == urls(*SITE_FEEDS)
    assert [p.feeds for p in third.hub_pings] == [tuple(urls(*SITE_FEEDS))]


def test_a_change_that_reaches_no_feed_pings_nothing(newsletter, hub):
    config = setup(newsletter, [hub.url])
    deploy(config)
    (config.output_dir / "extra.txt").write_text("not a feed\n")
    result = deploy(config)
    assert result.uploaded == 1 and result.hub_pings == [] and len(hub.requests) == 1


def test_a_dry_run_pings_nothing_and_says_what_it_would(newsletter, hub):
    from publisher.deploy import describe

    config = setup(newsletter, [hub.url])
    result = deploy(config, dry_run=True)
    assert result.dry_run and result.hub_pings == [] and hub.requests == []
    assert not (newsletter.root / "public").exists()
    lines = describe(result.plan, False, hubs=config.feeds.hubs)
    assert lines[-1] == f"ping WebSub hub {hub.url} about 6 changed feeds"
    assert not any("WebSub" in line for line in describe(result.plan, False))


def test_a_hub_answering_500_then_204_is_asked_again(newsletter, hub):
    config = setup(newsletter, [hub.url])
    hub.answers = [(503, {"Retry-After": "3"}, b"busy"), (500, {}, b"oops")]
    clock = FakeClock()
    result = deploy(config, notifier=Notifier(sleep=clock.sleep))
    (ping,) = result.hub_pings
    assert ping.ok and ping.status == 204 and ping.attempts == 3
    assert clock.sleeps == [3.0, 2.0]  # the hub's Retry-After, then the doubled back-off
    assert len(hub.requests) == 3 and hub.topics(0) == hub.topics(2)


def test_a_hub_that_is_down_or_refuses_is_a_warning_and_the_deploy_succeeds(newsletter, hub, caplog):
    down = closed_port_url()
    config = setup(newsletter, [down, hub.url])
    hub.answers = [(400, {}, b"hub.url invalid: not a known feed")]
    clock = FakeClock()
    with caplog.at_level(logging.WARNING, logger="publisher.websub"):
        result = deploy(config, notifier=Notifier(sleep=clock.sleep))
    assert result.uploaded == len(tree(config.output_dir))
    assert tree(newsletter.root / "public") == tree(config.output_dir)  # every file in place
    refused_down, refused_400 = result.hub_pings
    assert (refused_down.hub, refused_down.status, refused_down.attempts) == (down, None, 4)
    assert "connection refused" in refused_down.error and "after 4 attempts" in refused_down.error
    assert (refused_400.hub, refused_400.status, refused_400.attempts) == (hub.url, 400, 1)  # a 4xx: not again
    assert "HTTP 400" in refused_400.error and "not a known feed" in refused_400.error
    assert len(hub.requests) == 1 and sorted(clock.sleeps) == [1.0, 2.0, 4.0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(down in w and "connection refused" in w for w in warnings)
    assert any(hub.url in w and "HTTP 400" in w for w in warnings)
    assert result.hubs_failed == [refused_down, refused_400]


def test_a_redirect_is_reported_not_followed(hub):
    hub.answers = [(301, {"Location": "https://elsewhere.example.com/"}, b"")]
    (ping,) = Notifier(sleep=FakeClock().sleep).notify([hub.url], ["https://news.example.com/rss.xml"])
    assert not ping.ok and ping.status == 301 and ping.attempts == 1
    assert "https://elsewhere.example.com/" in ping.error and len(hub.requests) == 1


def test_a_hub_that_never_answers_times_out():
    with socket.socket() as listener:  # accepts connections (the kernel does) and never says a word
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        silent = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        clock = FakeClock()
        (ping,) = Notifier(timeout=0.2, attempts=2, sleep=clock.sleep).notify([silent], ["https://x.example/a"])
    assert not ping.ok and ping.status is None and ping.attempts == 2
    assert "timed out" in ping.error and clock.sleeps == [1.0]


def test_many_feeds_go_in_batches_of_100(hub):
    feeds = [f"https://news.example.com/tags/t{n}/rss.xml" for n in range(150)]
    pings = Notifier().notify([hub.url], feeds + feeds[:10])  # each topic once
    assert [len(p.feeds) for p in pings] == [100, 50] and all(p.ok for p in pings)
    assert sorted(hub.topics(0) + hub.topics(1)) == sorted(feeds)


# ---- pings: S3 and publish ----


def test_a_deploy_to_s3_pings_the_hub_after_the_upload(newsletter, bucket, hub):
    config = setup(newsletter, [hub.url], extra=f'[deploy]\ntarget = "s3://{bucket}/news/"\n')
    s3 = boto3.client("s3")
    hub.on_request = lambda form: sorted(o["Key"] for o in s3.list_objects_v2(
        Bucket=bucket, Prefix="news/")["Contents"] if is_feed(o["Key"][len("news/"):]))
    result = deploy(config)
    assert [p.ok for p in result.hub_pings] == [True]
    assert hub.topics() == urls(*SITE_FEEDS, *TAG_FEEDS)
    assert hub.requests[0]["seen"] == sorted("news/" + k for k in SITE_FEEDS + TAG_FEEDS)  # up before the ping
    assert deploy(config).hub_pings == [] and len(hub.requests) == 1


def test_publish_pings_after_its_deploy_and_a_down_hub_fails_nothing(newsletter, hub):
    from publisher.scheduler import publish, summary

    down = closed_port_url()
    config = setup(newsletter, [hub.url, down])
    report = publish(config, now=NOW, notifier=Notifier(sleep=FakeClock().sleep))
    assert report.deployed > 0 and report.failures == []
    assert hub.topics() == urls(*SITE_FEEDS, *TAG_FEEDS)
    assert [p.ok for p in report.hub_pings] == [True, False]
    line = summary(report)
    assert ("pinged 1 of 2 WebSub hubs about 6 changed feeds; not told: "
            f"{down} (no answer (connection refused) after 4 attempts)") in line
    again = publish(config, now=NOW, notifier=Notifier(sleep=FakeClock().sleep))
    assert again.deploy_skipped and again.hub_pings == [] and len(hub.requests) == 1
