"""Issue 15, "The first hour": what a new author hits from `init` to the first send (items 3, 4, 5, 10, 11,
14, 15), through the real CLI."""

from __future__ import annotations

import json

import frontmatter
from conftest import NOW

from publisher.content import load_issues
from publisher.subscribers import SqliteStore, Subscriber

SECRET_ENV = {"PUBLISHER_SECRET": "first-hour-test-secret-0123456789"}


def _subscribe(root, n=4):
    store = SqliteStore(root / "subscribers.db")
    store.upsert_many(Subscriber(f"r{i}@example.com") for i in range(n))
    store.close()


def _sendable(newsletter, extra=""):
    text = newsletter.root.joinpath("publisher.toml").read_text(encoding="utf-8")
    newsletter.config(text + '[email]\nfrom_address = "news@example.com"\n' + extra)


def _ready_to_send(newsletter, monkeypatch):
    """A newsletter that can email: the secret set, a sender address, 4 active subscribers."""
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    _sendable(newsletter)
    _subscribe(newsletter.root)


# ---- item 3: init's placeholder is a draft, in the site's language ----


def test_init_placeholder_is_a_chinese_draft_on_a_zh_site_and_never_emailed(tmp_path, run_cli, monkeypatch):
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    result = run_cli("-C", str(tmp_path), "init", "letter", "--title", "周报", "--language", "zh-CN",
                     "--timezone", "Asia/Shanghai")
    assert result.exit_code == 0, result.stderr
    root = tmp_path / "letter"
    (path,) = (root / "content").glob("*-welcome.md")
    post = frontmatter.loads(path.read_text(encoding="utf-8"))
    assert post["draft"] is True
    assert post["title"] == "欢迎订阅周报" and "Welcome" not in path.read_text(encoding="utf-8")
    assert "草稿" in post.content
    config_text = (root / "publisher.toml").read_text(encoding="utf-8")
    (root / "publisher.toml").write_text(config_text.replace('# from_address = "news@example.com"',
                                                             'from_address = "news@example.com"'), encoding="utf-8")
    _subscribe(root)
    published = run_cli("-C", str(root), "publish", "--due")
    assert published.exit_code == 0, published.stderr
    assert not (root / "outbox").exists() or not list((root / "outbox").rglob("*.eml"))
    assert not (root / "dist" / "issues" / "welcome").exists()


def test_init_placeholder_in_english_by_default(tmp_path, run_cli):
    assert run_cli("-C", str(tmp_path), "init", "en", "--title", "Notes", "--timezone", "UTC").exit_code == 0
    (path,) = (tmp_path / "en" / "content").glob("*-welcome.md")
    post = frontmatter.loads(path.read_text(encoding="utf-8"))
    assert post["title"] == "Welcome to Notes" and post["draft"] is True
    built = run_cli("-C", str(tmp_path / "en"), "build")
    assert "Built 0 issues" in built.stdout and "1 draft (use --drafts)" in built.stdout


# ---- item 5: check counts issue warnings; --strict fails on them ----


# A config `check` has nothing to say about (postal address, sender, unsubscribe endpoint all set).
CLEAN = 'postal_address = "1 Main St, Springfield"\n[serve]\npublic_url = "https://subscribe.example.com/"\n'


def test_check_summary_counts_issue_warnings(newsletter, run_cli):
    _sendable(newsletter, CLEAN)
    newsletter.issue("a.md", 'title: "A"\ndate: 2026-11-20\ntgas: [x]\n')
    newsletter.issue("b.md", 'title: "B"\ndate: 2026-11-21\n')
    result = run_cli("-C", str(newsletter.root), "check")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("warning: ") == 1 and "tgas" in result.stderr
    assert result.stdout.startswith("OK: 2 issues")
    assert "no errors but 1 warning " in result.stdout and "no errors." not in result.stdout


def test_check_strict_fails_on_warnings_and_passes_without(newsletter, run_cli):
    _sendable(newsletter, CLEAN)
    newsletter.issue("a.md", 'title: "A"\ndate: 2026-11-20\ntgas: [x]\n')
    strict = run_cli("-C", str(newsletter.root), "check", "--strict")
    assert strict.exit_code == 1
    assert "error: publisher.toml: check --strict: 1 warning (listed above) with --strict (fix each" in strict.stderr
    assert "Traceback" not in strict.stderr and "OK" not in strict.stdout
    quiet = run_cli("-C", str(newsletter.root), "-q", "check", "--strict")
    assert quiet.exit_code == 1 and "tgas" not in quiet.stderr  # -q hides warnings but --strict still counts them
    newsletter.issue("a.md", 'title: "A"\ndate: 2026-11-20\n')
    clean = run_cli("-C", str(newsletter.root), "check", "--strict")
    assert clean.exit_code == 0, clean.stderr
    assert clean.stdout == "OK: 1 issue (0 drafts, 0 scheduled), no errors, no warnings.\n"


# ---- item 4: -q/--quiet leaves only errors for build, deploy and publish ----


def test_quiet_silences_build_deploy_and_publish_but_not_errors(newsletter, run_cli, monkeypatch):
    _ready_to_send(newsletter, monkeypatch)
    newsletter.issue("2026-11-26-a.md", 'title: "A"\ndate: 2026-11-26 19:00\n')
    newsletter.issue("d.md", 'title: "D"\ndate: 2026-11-20\ndraft: true\n')
    root = str(newsletter.root)
    for args in (("build",), ("deploy",), ("publish", "--due"), ("publish", "--due")):
        result = run_cli("-C", root, "-q", *args)
        assert result.exit_code == 0, result.stderr
        assert (result.stdout, result.stderr) == ("", ""), args
    assert len(list((newsletter.root / "outbox" / "a").glob("*.eml"))) == 4  # it did publish
    loud = run_cli("-C", root, "build")
    assert loud.stdout.startswith("Built 1 issue")
    newsletter.issue("bad.md", 'title: "B"\ndate: not-a-date\n')
    failed = run_cli("-C", root, "-q", "build")
    assert failed.exit_code == 1 and "bad.md" in failed.stderr and failed.stdout == ""


# ---- item 15: `new` twice with one title; `publisher list` ----


def test_new_twice_with_one_title_names_files_by_the_slug(newsletter, run_cli):
    root = str(newsletter.root)
    for _ in range(3):
        assert run_cli("-C", root, "new", "周报").exit_code == 0
    assert sorted(p.name for p in newsletter.content.glob("*.md")) == [
        "2026-11-26-2.md", "2026-11-26-3.md", "2026-11-26.md"]
    slugs = {i.slug for i in load_issues(newsletter.load_config())}
    assert slugs == {"2026-11-26", "2026-11-26-2", "2026-11-26-3"}
    # an English title that is taken gets a numbered slug after the date
    assert run_cli("-C", root, "new", "Hello").exit_code == 0
    assert run_cli("-C", root, "new", "Hello").exit_code == 0
    assert (newsletter.content / "2026-11-26-hello-2.md").exists()


def test_list_shows_every_issue_with_its_status_and_the_ledger(newsletter, run_cli, monkeypatch):
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    _sendable(newsletter)
    newsletter.issue("2026-11-20-old.md", 'title: "Old"\ndate: 2026-11-20\ntags: [AI, 芯片]\n')
    newsletter.issue("2026-11-21-web.md", 'title: "Web"\ndate: 2026-11-21\nsend: false\n')
    newsletter.issue("2026-11-26-today.md", 'title: "Today"\ndate: 2026-11-26 19:00\n')
    newsletter.issue("2026-11-27-draft.md", 'title: "D"\ndate: 2026-11-25\ndraft: true\n')
    newsletter.issue("2027-01-01-later.md", 'title: "Later"\ndate: 2027-01-01\n')
    root = str(newsletter.root)
    before = run_cli("-C", root, "list")
    assert before.exit_code == 0, before.stderr
    assert not (newsletter.root / "subscribers.db").exists()  # list only reads
    _subscribe(newsletter.root, 3)
    assert run_cli("-C", root, "publish", "--due").exit_code == 0
    result = run_cli("-C", root, "list")
    assert result.exit_code == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [r[0] for r in rows] == ["later", "today", "draft", "web", "old"]  # newest first
    status = {r[0]: r[2] for r in rows}
    assert status == {"later": "scheduled", "today": "sent to 3", "draft": "draft",
                      "web": "published (not emailed: send: false)",
                      "old": "published (not emailed: too late, publish --force sends it)"}
    assert dict((r[0], r[1]) for r in rows)["today"] == "2026-11-26 19:00"
    assert dict((r[0], r[3]) for r in rows)["old"] == "AI, 芯片"
    data = json.loads(run_cli("-C", root, "list", "--json").stdout)
    today = next(d for d in data if d["slug"] == "today")
    assert today["status"] == "sent" and today["sent"] == 3 and today["date"] == "2026-11-26T19:00:00+08:00"
    assert next(d for d in data if d["slug"] == "old")["tags"] == ["AI", "芯片"]


# ---- item 10: publish says what happened and where ----


def test_publish_names_its_folders_and_why_an_issue_was_not_emailed(newsletter, run_cli, monkeypatch):
    _ready_to_send(newsletter, monkeypatch)
    newsletter.issue("2026-11-26-a.md", 'title: "A"\ndate: 2026-11-26 19:00\n')
    newsletter.issue("2026-11-26-web.md", 'title: "W"\ndate: 2026-11-26 19:30\nsend: false\n')
    result = run_cli("-C", str(newsletter.root), "publish", "--due")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "emailed a to 4" in out
    assert "not emailing web (send: false: web and feeds only)" in out
    lines = out.splitlines()
    assert f"Site: {newsletter.root / 'dist'}/ (deployed: {newsletter.root / 'public'}/)" in lines
    assert any(line.startswith(f"Emails: {newsletter.root / 'outbox'}/<issue>/*.eml") for line in lines)
    assert any(line.startswith(f"Ledger: {newsletter.root / 'subscribers.db'} ") for line in lines)


def test_publish_says_already_sent_to_all_instead_of_to_0(newsletter, run_cli, monkeypatch):
    _ready_to_send(newsletter, monkeypatch)
    newsletter.issue("2026-11-26-a.md", 'title: "A"\ndate: 2026-11-26 19:00\n')
    root = str(newsletter.root)
    assert run_cli("-C", root, "send", "a").exit_code == 0  # sent by hand before the scheduler ran
    result = run_cli("-C", root, "publish", "--due")
    assert result.exit_code == 0, result.stderr
    assert "to 0" not in result.stdout
    assert "a was already emailed to all 4 subscribers (nothing new to send)" in result.stdout


# ---- item 14: a no-change deploy writes nothing, not even the manifest ----


def test_no_change_deploy_does_not_rewrite_the_manifest_on_a_versioned_bucket(newsletter, bucket, run_cli):
    import boto3

    from publisher.deploy import MANIFEST

    s3 = boto3.client("s3")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    text = newsletter.root.joinpath("publisher.toml").read_text(encoding="utf-8")
    newsletter.config(text + f'[deploy]\ntarget = "s3://{bucket}/news/"\n')
    newsletter.issue("2026-11-20-a.md", 'title: "A"\ndate: 2026-11-20\n')
    root = str(newsletter.root)

    def manifest_versions():
        listed = s3.list_object_versions(Bucket=bucket, Prefix="news/" + MANIFEST)
        return [v["VersionId"] for v in listed.get("Versions", []) if v["Key"] == "news/" + MANIFEST]

    assert run_cli("-C", root, "build").exit_code == 0
    assert run_cli("-C", root, "deploy").exit_code == 0
    assert len(manifest_versions()) == 1
    for _ in range(2):
        again = run_cli("-C", root, "deploy")
        assert again.exit_code == 0 and "0 uploaded" in again.stdout
    assert len(manifest_versions()) == 1  # no PUT: no new version
    newsletter.issue("2026-11-21-b.md", 'title: "B"\ndate: 2026-11-21\n')
    assert run_cli("-C", root, "build").exit_code == 0
    assert run_cli("-C", root, "deploy").exit_code == 0
    assert len(manifest_versions()) == 2  # a change still updates it


def test_no_change_deploy_sends_no_put_at_all(newsletter, bucket):
    import boto3

    from publisher.build import build
    from publisher.deploy import S3Target, deploy

    text = newsletter.root.joinpath("publisher.toml").read_text(encoding="utf-8")
    newsletter.config(text + f'[deploy]\ntarget = "s3://{bucket}/"\n')
    newsletter.issue("2026-11-20-a.md", 'title: "A"\ndate: 2026-11-20\n')
    config = newsletter.load_config()
    build(config, now=NOW)
    deploy(config)
    s3 = boto3.client("s3")
    puts: list[str] = []
    s3.meta.events.register("before-parameter-build.s3.PutObject", lambda params, **_: puts.append(params["Key"]))
    result = deploy(config, target=S3Target(config, client=s3))  # a real client against the moto server
    assert result.uploaded == 0 and puts == []


# ---- item 11: build suggests `publisher preview`; the 404 page works from any path ----


def test_build_suggests_preview_not_opening_a_file(newsletter, run_cli):
    newsletter.issue("2026-11-20-a.md", 'title: "A"\ndate: 2026-11-20\n')
    result = run_cli("-C", str(newsletter.root), "build")
    assert result.exit_code == 0, result.stderr
    last = result.stdout.splitlines()[-1]
    assert "publisher preview" in last and "index.html" not in last


def _static_host(folder, mount):
    """A real HTTP server for `folder` under the path `mount`, answering a missing path with 404.html and status
    404, as S3's and CloudFront's error documents do."""
    import threading
    from http import HTTPStatus
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            path = self.path.split("?")[0]
            target = folder / path[len(mount):] if path.startswith(mount) else None
            if target is not None and target.is_dir():
                target = target / "index.html"
            found = target is not None and target.is_file()
            body = (target if found else folder / "404.html").read_bytes()
            self.send_response(HTTPStatus.OK if found else HTTPStatus.NOT_FOUND)
            kind = "text/css" if str(target).endswith(".css") and found else "text/html; charset=utf-8"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_404_page_links_work_from_any_depth_in_chromium(newsletter, run_cli):
    import playwright.sync_api as playwright_api
    from browsers import CHROMIUM_FLAGS, chromium_path

    chromium = chromium_path()
    newsletter.issue("2026-11-20-a.md", 'title: "第一期"\ndate: 2026-11-20\n')
    assert run_cli("-C", str(newsletter.root), "build").exit_code == 0
    server = _static_host(newsletter.root / "dist", "/daily/")  # site.url is https://news.example.com/daily/
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            page = browser.new_page()
            elsewhere: list[str] = []

            def only_local(route):
                if route.request.url.startswith(base):
                    return route.continue_()
                elsewhere.append(route.request.url)
                return route.abort()

            page.route("**/*", only_local)
            styles: list[int] = []
            page.on("response", lambda r: styles.append(r.status) if r.url.endswith("/style.css") else None)
            for missing in ("/daily/nope", "/daily/issues/nope/deeper/still/", "/daily/tags/x/y/z.html"):
                response = page.goto(base + missing)
                assert response.status == 404 and page.locator("h1").inner_text() == "404"
                page.get_by_role("link", name="返回全部期刊").click()  # "Back to all issues" in zh-CN
                page.wait_for_url(base + "/daily/")
                assert page.locator(".issue-item").count() == 1  # the archive, served by this host
            assert styles and set(styles) == {200}
            assert not [u for u in elsewhere if "news.example.com" in u]  # never off to production
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
