"""The Lambda subscribe endpoint (deploy/lambda/handler.py) on the DynamoDB store: the real handler module and
Mangum adapter, Lambda function URL events, a real moto server for DynamoDB and SES. Sign-up, confirmation page,
confirmation (a POST: a GET or HEAD never changes anything), and exactly one welcome email, kept in the ledger."""

from __future__ import annotations

import base64
import email
import importlib.util
import re
import uuid
from email import policy
from pathlib import Path
from urllib.parse import urlencode

import boto3
import pytest
from conftest import NOW, REPO

from publisher.errors import PublisherError
from publisher.stores.dynamodb import create_table, subscriber_key
from publisher.stores.dynamodb_ledger import row_key

DOMAIN = "lambda-ddb.example.com"
SENDER = f"news@{DOMAIN}"
WELCOME = "---\ntitle: 欢迎订阅 AI 日报\n---\n\n你好！每天早上，我们把最重要的 AI 新闻发给你。\n"


class Context:
    function_name, aws_request_id = "publisher-serve", "r1"


def load_handler(monkeypatch, root: Path, name: str):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PUBLISHER_ROOT", str(root))
    monkeypatch.setenv("PUBLISHER_FUNCTION", "serve")
    monkeypatch.setenv("PUBLISHER_SECRET", "lambda-test-secret-value")
    spec = importlib.util.spec_from_file_location(name, REPO / "deploy" / "lambda" / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def event(method: str, path: str, query: str = "", body: str = "") -> dict:
    """A Lambda function URL event (payload format 2.0), as AWS sends it."""
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
        "headers": {"content-type": "application/x-www-form-urlencoded", "host": "abc.lambda-url.us-east-1.on.aws",
                    "x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"},
        "requestContext": {"http": {"method": method, "path": path, "sourceIp": "203.0.113.7",
                                    "protocol": "HTTP/1.1", "userAgent": "test"},
                           "domainName": "abc.lambda-url.us-east-1.on.aws", "stage": "$default", "requestId": "r1",
                           "accountId": "123456789012", "apiId": "abc", "routeKey": "$default",
                           "time": "26/Nov/2026:12:00:00 +0000", "timeEpoch": 0},
        "body": base64.b64encode(body.encode()).decode(), "isBase64Encoded": True,
    }


def text_of(response: dict) -> str:
    body = response.get("body") or ""
    return base64.b64decode(body).decode() if response.get("isBase64Encoded") else body


@pytest.fixture
def lambda_newsletter(newsletter, aws, monkeypatch):  # type: ignore[no-untyped-def]
    """A newsletter folder as the Lambda package holds it: publisher.toml on DynamoDB and SES, the welcome."""
    monkeypatch.setenv("PUBLISHER_NOW", NOW.isoformat())  # tokens' expiry and the messages' dates: not today's
    table = f"news-{uuid.uuid4().hex[:12]}"
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + f'[email]\nfrom_address = "{SENDER}"\ntransport = "ses"\n'
                      + f'[subscribers]\ndynamodb_table = "{table}"\n')
    (newsletter.content / "_welcome.md").write_text(WELCOME, encoding="utf-8")
    assert create_table(boto3.client("dynamodb"), table) is True
    boto3.client("sesv2").create_email_identity(EmailIdentity=SENDER)  # else SES rejects the sends (sandbox)
    return newsletter, table


def sent_to(moto_ses_sent, address: str) -> list:
    """The messages moto's SES sent to `address`, parsed."""
    return [email.message_from_bytes(item["raw_data"].encode(), policy=policy.default)
            for item in moto_ses_sent(address.rpartition("@")[2]) if address in item["destinations"]]


def item(table: str, key: dict) -> dict | None:
    return boto3.client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")


def test_subscribe_confirm_and_one_welcome_through_the_lambda_handler(lambda_newsletter, monkeypatch,
                                                                      moto_ses_sent):
    newsletter, table = lambda_newsletter
    module = load_handler(monkeypatch, newsletter.root, "lambda_handler_serve_dynamodb")
    address = f"reader-{uuid.uuid4().hex[:8]}@readers.example.com"  # the moto server is shared: ours alone

    answer = module.handler(event("POST", "/subscribe", body=urlencode({"email": address, "name": "读者"})), Context())
    assert answer["statusCode"] == 200 and "请查收确认邮件" in text_of(answer)
    # The handler returned only once the worker's queue was empty: the confirmation went out already.
    (confirmation,) = sent_to(moto_ses_sent, address)
    link = re.search(r"/confirm\?token=(\S+)", confirmation.get_body(("plain",)).get_content())
    assert link, "no confirm link in the confirmation email"
    query = "token=" + link.group(1)
    stored = item(table, subscriber_key(address))
    assert stored["status"]["S"] == "unconfirmed" and stored["name"]["S"] == "读者"

    # Mail scanners open links: the page (GET, HEAD) asks for a click and changes nothing.
    for method in ("GET", "HEAD"):
        page = module.handler(event(method, "/confirm", query), Context())
        assert page["statusCode"] == 200
        assert item(table, subscriber_key(address))["status"]["S"] == "unconfirmed"
    assert '<form method="post"' in text_of(module.handler(event("GET", "/confirm", query), Context()))
    assert item(table, row_key("_welcome", address)) is None and len(sent_to(moto_ses_sent, address)) == 1

    confirmed = module.handler(event("POST", "/confirm", query, "confirm=1"), Context())
    assert confirmed["statusCode"] == 200
    assert item(table, subscriber_key(address))["status"]["S"] == "active"
    messages = sent_to(moto_ses_sent, address)
    welcomes = [m for m in messages if m["Subject"] == "欢迎订阅 AI 日报"]
    assert len(messages) == 2 and len(welcomes) == 1  # sent before the handler returned (Lambda freezes after)
    assert "你好，读者" in welcomes[0].get_body(("plain",)).get_content()
    row = item(table, row_key("_welcome", address))
    assert row["state"]["S"] == "sent"
    assert row["message_id"]["S"].strip("<>") == welcomes[0]["Message-ID"].strip("<>")

    # A second click, a retried request, another instance (a new cold start): no second welcome.
    again = module.handler(event("POST", "/confirm", query, "confirm=1"), Context())
    other = load_handler(monkeypatch, newsletter.root, "lambda_handler_serve_dynamodb_2")
    other_again = other.handler(event("POST", "/confirm", query, "confirm=1"), Context())
    assert again["statusCode"] == other_again["statusCode"] == 200
    assert len(sent_to(moto_ses_sent, address)) == 2
    assert item(table, row_key("_welcome", address))["state"]["S"] == "sent"


def test_the_handler_takes_either_store_and_names_both_when_neither_is_set(newsletter, aws, monkeypatch):
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + f'[email]\nfrom_address = "{SENDER}"\ntransport = "ses"\n')
    with pytest.raises(PublisherError) as refused:
        load_handler(monkeypatch, newsletter.root, "lambda_handler_sqlite_refused")
    said = str(refused.value)
    assert "publisher.toml" in said and "dynamodb_table" in said and "ses_contact_list" in said
    newsletter.config(newsletter.root.joinpath("publisher.toml").read_text()
                      + '[subscribers]\ndynamodb_table = "any-table"\n')
    assert load_handler(monkeypatch, newsletter.root, "lambda_handler_ddb_accepted").app is not None
