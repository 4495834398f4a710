"""Deploy: S3 through a real moto server over HTTP, and a folder. Uploads only what changed, in order."""

from __future__ import annotations

import boto3
import pytest
from conftest import NOW

from publisher.build import build
from publisher.deploy import MANIFEST, deploy, make_plan, phase
from publisher.errors import PublisherError


def s3_newsletter(newsletter, bucket, prefix="news/", extra=""):
    text = newsletter.root.joinpath("publisher.toml").read_text()
    newsletter.config(text + f'[deploy]\ntarget = "s3://{bucket}/{prefix}"\n{extra}')
    newsletter.issue("2026-11-20-a.md", "title: 第一期\ndate: 2026-11-20\ntags: [大模型]\n",
                     "第一段。\n\n![图](img/a.png)\n")
    (newsletter.content / "img").mkdir(exist_ok=True)
    (newsletter.content / "img" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    newsletter.issue("2026-11-21-b.md", "title: 第二期\ndate: 2026-11-21\n")
    config = newsletter.load_config()
    build(config, now=NOW)
    return config


def local_keys(config):
    return sorted(p.relative_to(config.output_dir).as_posix() for p in config.output_dir.rglob("*") if p.is_file())


def objects(bucket, prefix=""):
    s3 = boto3.client("s3")
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = item
    return found


def test_first_deploy_uploads_all_second_nothing_then_only_changes(newsletter, bucket):
    config = s3_newsletter(newsletter, bucket)
    dist_files = local_keys(config)
    first = deploy(config)
    assert first.uploaded == len(dist_files) and first.unchanged == 0
    assert sorted(k[len("news/"):] for k in objects(bucket, "news/") if k != "news/" + MANIFEST) == dist_files
    second = deploy(config)
    assert (second.uploaded, second.unchanged) == (0, len(dist_files))
    path = newsletter.content / "2026-11-21-b.md"
    path.write_text(path.read_text() + "\n新增一段。\n", encoding="utf-8")
    build(config, now=NOW)
    third = deploy(config)
    changed = {f.key for f in third.plan.uploads}
    # the page, its email and the feeds carry the new text; the archive shows only the (unchanged) summary
    assert {"issues/b/index.html", "issues/b/email.html", "rss.xml", "atom.xml", "feed.json"} <= changed
    assert "issues/a/index.html" not in changed and "img/a.png" not in changed and "static/style.css" not in changed
    assert third.uploaded == len(changed)


def test_content_types_cache_headers_and_hash_metadata(newsletter, bucket):
    config = s3_newsletter(newsletter, bucket)
    deploy(config)
    s3 = boto3.client("s3")
    expected = {
        "rss.xml": ("application/rss+xml; charset=utf-8", "public, max-age=300"),
        "atom.xml": ("application/atom+xml; charset=utf-8", "public, max-age=300"),
        "feed.json": ("application/feed+json; charset=utf-8", "public, max-age=300"),
        "index.html": ("text/html; charset=utf-8", "public, max-age=300"),
        "issues/a/index.html": ("text/html; charset=utf-8", "public, max-age=300"),
        "static/style.css": ("text/css; charset=utf-8", "public, max-age=86400"),
        "img/a.png": ("image/png", "public, max-age=86400"),
        "sitemap.xml": ("application/xml; charset=utf-8", "public, max-age=300"),
    }
    import hashlib

    for key, (ctype, cache) in expected.items():
        head = s3.head_object(Bucket=bucket, Key="news/" + key)
        assert (head["ContentType"], head["CacheControl"]) == (ctype, cache), key
        local = (config.output_dir / key).read_bytes()
        assert head["Metadata"]["sha256"] == hashlib.sha256(local).hexdigest()


def create_distribution(bucket):
    return boto3.client("cloudfront").create_distribution(DistributionConfig={
        "CallerReference": bucket, "Comment": "", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "s3", "DomainName": f"{bucket}.s3.amazonaws.com",
                                              "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "s3", "ViewerProtocolPolicy": "redirect-to-https", "MinTTL": 0,
                                 "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                                 "TrustedSigners": {"Enabled": False, "Quantity": 0}},
    })["Distribution"]["Id"]


def test_many_changed_paths_become_one_wildcard(newsletter, bucket):
    from publisher.deploy import S3Target

    distribution = create_distribution(bucket)
    config = s3_newsletter(newsletter, bucket, extra=f'cloudfront_distribution = "{distribution}"\n')
    invalidation = S3Target(config).invalidate([f"issues/{n}/index.html" for n in range(40)])
    batch = boto3.client("cloudfront").get_invalidation(DistributionId=distribution, Id=invalidation)
    assert batch["Invalidation"]["InvalidationBatch"]["Paths"]["Items"] == ["/*"]


def test_hashed_assets_are_immutable():
    from publisher.deploy import cache_control

    assert cache_control("static/app.3f9a2b7c1d.css") == "public, max-age=31536000, immutable"
    assert cache_control("static/style.css") == "public, max-age=86400"


def test_upload_order_assets_pages_index_feeds(newsletter, bucket):
    config = s3_newsletter(newsletter, bucket)
    s3 = boto3.client("s3")
    order = []
    s3.meta.events.register("before-parameter-build.s3.PutObject", lambda params, **kw: order.append(params["Key"]))
    from publisher.deploy import S3Target

    deploy(config, target=S3Target(config, client=s3))
    keys = [k[len("news/"):] for k in order if not k.endswith(MANIFEST)]
    phases = [phase(k) for k in keys]
    assert phases == sorted(phases)  # assets, issue pages, archive and tag pages, then feeds
    position = {key: n for n, key in enumerate(keys)}
    assert position["rss.xml"] > position["index.html"] > position["issues/a/index.html"] > position["img/a.png"]
    assert order[-1].endswith(MANIFEST)


def test_delete_removes_stale_files_only_under_the_prefix(newsletter, bucket):
    config = s3_newsletter(newsletter, bucket)
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key="other/keep.html", Body=b"another site")
    s3.put_object(Bucket=bucket, Key="news-archive/keep.html", Body=b"a sibling prefix")
    s3.put_object(Bucket=bucket, Key="news/old/gone.html", Body=b"stale")
    kept = deploy(config)
    assert kept.stale == 1 and "news/old/gone.html" in objects(bucket)  # not without --delete
    result = deploy(config, delete=True)
    assert result.deleted == 1
    remaining = objects(bucket)
    assert "news/old/gone.html" not in remaining
    assert "other/keep.html" in remaining and "news-archive/keep.html" in remaining
    assert "news/" + MANIFEST in remaining


def test_dry_run_changes_nothing(newsletter, bucket):
    config = s3_newsletter(newsletter, bucket)
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key="news/old.html", Body=b"stale")
    result = deploy(config, dry_run=True, delete=True)
    assert result.dry_run and len(result.plan.uploads) > 10 and result.plan.stale == ["old.html"]
    assert set(objects(bucket)) == {"news/old.html"}


def test_interrupted_deploy_completes_when_run_again(newsletter, bucket):
    config = s3_newsletter(newsletter, bucket)
    s3 = boto3.client("s3")
    calls = {"n": 0}

    def fail_after_five(params, **kwargs):
        # A fault injected into a real boto3 client talking to the real moto server: the process "dies"
        # after 5 uploads (no real part can be made to fail at exactly that point).
        calls["n"] += 1
        if calls["n"] > 5:
            raise ConnectionError("injected: the network went away")

    s3.meta.events.register("before-parameter-build.s3.PutObject", fail_after_five)
    from publisher.deploy import S3Target

    with pytest.raises(ConnectionError):
        deploy(config, target=S3Target(config, client=s3))
    assert "news/" + MANIFEST not in objects(bucket)  # the manifest is written only at the end
    partial = {k for k in objects(bucket)}
    assert 1 <= len(partial) <= 5 + config.deploy.concurrency
    again = deploy(config)  # a fresh client, nothing injected
    assert again.unchanged == len(partial)  # each upload that made it is recognised and not sent again
    assert again.uploaded == len(local_keys(config)) - len(partial)  # and everything else is
    final = deploy(config)
    assert final.uploaded == 0
    assert sorted(k[len("news/"):] for k in objects(bucket) if not k.endswith(MANIFEST)) == local_keys(config)


def test_object_changed_behind_our_back_is_uploaded_again(newsletter, bucket):
    config = s3_newsletter(newsletter, bucket)
    deploy(config)
    boto3.client("s3").put_object(Bucket=bucket, Key="news/index.html", Body=b"defaced")
    result = deploy(config)
    assert [f.key for f in result.plan.uploads] == ["index.html"]


def test_broken_manifest_costs_only_head_requests(newsletter, bucket):
    config = s3_newsletter(newsletter, bucket)
    deploy(config)
    boto3.client("s3").put_object(Bucket=bucket, Key="news/" + MANIFEST, Body=b"{not json")
    assert deploy(config).uploaded == 0


def test_cloudfront_invalidation_for_changed_paths(newsletter, bucket):
    cf = boto3.client("cloudfront")
    distribution = create_distribution(bucket)
    config = s3_newsletter(newsletter, bucket, extra=f'cloudfront_distribution = "{distribution}"\n')
    first = deploy(config)
    assert first.invalidation
    batch = cf.get_invalidation(DistributionId=distribution, Id=first.invalidation)["Invalidation"]
    assert {"/", "/index.html", "/rss.xml"} <= set(batch["InvalidationBatch"]["Paths"]["Items"])
    path = newsletter.content / "2026-11-20-a.md"
    path.write_text(path.read_text().replace("第一段", "改过的第一段"), encoding="utf-8")
    build(config, now=NOW)
    second = deploy(config)
    items = cf.get_invalidation(DistributionId=distribution, Id=second.invalidation)["Invalidation"][
        "InvalidationBatch"]["Paths"]["Items"]
    assert "/issues/a/" in items and "/issues/a/index.html" in items and "/rss.xml" in items
    assert deploy(config).invalidation is None  # nothing changed, nothing to invalidate


def test_missing_bucket_is_a_clear_error(newsletter, aws, run_cli):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + '[deploy]\ntarget = "s3://no-such-bucket-here/"\n')
    newsletter.issue("x.md")
    build(newsletter.load_config(), now=NOW)
    result = run_cli("-C", str(newsletter.root), "deploy")
    assert result.exit_code == 1
    assert "the bucket of s3://no-such-bucket-here/ does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_credentials_is_a_clear_error(newsletter, aws, monkeypatch, run_cli):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text() + '[deploy]\ntarget = "s3://some-bucket/"\n')
    newsletter.issue("x.md")
    build(newsletter.load_config(), now=NOW)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = run_cli("-C", str(newsletter.root), "deploy")
    assert result.exit_code == 1 and "no AWS credentials" in result.stderr


def test_bad_endpoint_is_a_clear_error(newsletter, aws, monkeypatch, run_cli):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + f'[deploy]\ntarget = "s3://some-bucket/"\nendpoint_url = "http://127.0.0.1:{port}"\n')
    newsletter.issue("x.md")
    build(newsletter.load_config(), now=NOW)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = run_cli("-C", str(newsletter.root), "deploy")
    assert result.exit_code == 1 and "cannot reach the S3 endpoint" in result.stderr


def test_nothing_built_is_a_clear_error(newsletter, run_cli):
    result = run_cli("-C", str(newsletter.root), "deploy")
    assert result.exit_code == 1 and "run `publisher build` first" in result.stderr


def test_folder_target(newsletter, run_cli):
    newsletter.issue("2026-11-20-a.md")
    newsletter.issue("2026-11-21-b.md", "title: B\ndate: 2026-11-21\n")
    config = newsletter.load_config()
    build(config, now=NOW)
    first = run_cli("-C", str(newsletter.root), "deploy")
    assert first.exit_code == 0 and "Deployed to" in first.stdout
    public = newsletter.root / "public"
    page = "issues/b/index.html"
    assert (public / page).read_bytes() == (config.output_dir / page).read_bytes()
    assert "0 uploaded" in run_cli("-C", str(newsletter.root), "deploy").stdout
    (newsletter.content / "2026-11-21-b.md").unlink()
    build(config, now=NOW)
    stale = run_cli("-C", str(newsletter.root), "deploy")
    assert "no longer in dist/" in stale.stdout and (public / "issues" / "b").exists()
    run_cli("-C", str(newsletter.root), "deploy", "--delete")
    assert not (public / "issues" / "b").exists()


def test_dry_run_command_lists_changes(newsletter, run_cli):
    newsletter.issue("2026-11-20-a.md")
    build(newsletter.load_config(), now=NOW)
    result = run_cli("-C", str(newsletter.root), "deploy", "--dry-run")
    assert result.exit_code == 0 and "upload rss.xml" in result.stdout and "nothing was changed" in result.stdout
    assert not (newsletter.root / "public").exists()


def test_deploy_target_validation(newsletter):
    for bad in ("s3://Bad_Bucket/", "ftp://x/", ""):
        newsletter.config(newsletter.root.joinpath("publisher.toml").read_text().split("[deploy]")[0]
                          + f'[deploy]\ntarget = "{bad}"\n')
        with pytest.raises(PublisherError) as info:
            newsletter.load_config()
        assert info.value.problems[0].field == "deploy.target"


def test_plan_is_pure():
    from pathlib import Path

    from publisher.deploy import LocalFile

    files = {k: LocalFile(k, Path(k), 1, "h-" + k) for k in ("rss.xml", "index.html", "issues/x/index.html", "a.png")}
    remote = {"a.png": "h-a.png", "old.html": "x"}
    before = (dict(files), dict(remote))
    plan = make_plan(files, remote)
    assert [f.key for f in plan.uploads] == ["issues/x/index.html", "index.html", "rss.xml"]
    assert plan.unchanged == 1 and plan.stale == ["old.html"]
    assert (files, remote) == before  # the inputs are not touched
    again = make_plan(dict(reversed(files.items())), dict(reversed(remote.items())))
    assert again == plan  # nothing but the inputs decides the plan, not even their order
