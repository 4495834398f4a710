"""deploy/iam-deploy-policy.json is enough for a whole deploy and no more, checked by a moto server that
enforces IAM (a separate process: moto turns enforcement on for the whole server)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import boto3
import pytest
from conftest import NOW, REPO
from waiting import wait_for

from publisher.build import build
from publisher.deploy import deploy
from publisher.errors import PublisherError

ROOT_KEYS = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "admin", "region_name": "us-east-1"}


@pytest.fixture(scope="module")
def iam_server():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The first requests (the set-up below) go through unchecked; every later one is checked against IAM.
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="9")
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
        except OSError:
            return False
        return True

    wait_for(listening, what="the IAM-enforcing moto server to listen")
    s3 = boto3.client("s3", endpoint_url=url, **ROOT_KEYS)
    iam = boto3.client("iam", endpoint_url=url, **ROOT_KEYS)
    s3.create_bucket(Bucket="news-iam")
    policy = (REPO / "deploy" / "iam-deploy-policy.json").read_text()
    policy = policy.replace("BUCKET", "news-iam").replace("PREFIX", "news/").replace("ACCOUNT_ID", "123456789012")
    policy = policy.replace("DISTRIBUTION_ID", "EXAMPLE")
    keys = {}
    for user, document in (("deployer", policy), ("reader", json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"], "Resource": "*"}]}))):
        iam.create_user(UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        arn = iam.create_policy(PolicyName=user, PolicyDocument=document)["Policy"]["Arn"]
        iam.attach_user_policy(UserName=user, PolicyArn=arn)
        keys[user] = key
    yield url, keys
    process.terminate()
    process.wait(timeout=10)


def configured(newsletter, monkeypatch, url, key, prefix="news/"):
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + f'[deploy]\ntarget = "s3://news-iam/{prefix}"\n')
    newsletter.issue("2026-11-20-a.md")
    config = newsletter.load_config()
    build(config, now=NOW)
    return config


def test_the_policy_allows_a_whole_deploy(iam_server, newsletter, monkeypatch):
    # --delete is left out here: moto 5 refuses every key of a DeleteObjects request when it enforces IAM,
    # whatever the policy grants (real S3 checks s3:DeleteObject per key, which the policy grants).
    url, keys = iam_server
    config = configured(newsletter, monkeypatch, url, keys["deployer"])
    first = deploy(config)
    assert first.uploaded > 5
    newsletter.issue("2026-11-21-b.md", "title: B\ndate: 2026-11-21\n")
    build(config, now=NOW)
    second = deploy(config)  # reads the manifest back (GetObject), HEADs nothing new, uploads the changes
    assert second.uploaded >= 2
    assert deploy(config).uploaded == 0


def test_the_policy_does_not_reach_outside_the_prefix(iam_server, newsletter, monkeypatch):
    url, keys = iam_server
    config = configured(newsletter, monkeypatch, url, keys["deployer"], prefix="elsewhere/")
    with pytest.raises(PublisherError) as info:
        deploy(config)
    assert "access denied to s3://news-iam/elsewhere/" in str(info.value)
    assert "iam-deploy-policy.json" in str(info.value)


def test_access_denied_is_a_clear_error(iam_server, newsletter, monkeypatch, run_cli):
    url, keys = iam_server
    configured(newsletter, monkeypatch, url, keys["reader"])
    result = run_cli("-C", str(newsletter.root), "deploy")
    assert result.exit_code == 1
    assert "access denied to s3://news-iam/news/" in result.stderr and "Traceback" not in result.stderr
