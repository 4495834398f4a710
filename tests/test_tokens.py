"""Signed unsubscribe tokens: they verify, and a forged, altered, misdirected or expired one does not."""

from __future__ import annotations

import pytest

from publisher.errors import PublisherError
from publisher.tokens import InvalidToken, make_token, secret_from_env, verify_token

SECRET = b"s" * 32


def test_round_trip():
    token = make_token(SECRET, "unsubscribe", "张三@example.com", "news.example.com")
    data = verify_token(SECRET, token, "unsubscribe", list_id="news.example.com")
    assert (data.email, data.list_id, data.expires) == ("张三@example.com", "news.example.com", None)
    assert token.isascii() and "=" not in token and "/" not in token and "+" not in token  # URL-safe as is


@pytest.mark.parametrize("tamper", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature altered
    lambda t: ("X" if t[0] != "X" else "Y") + t[1:],  # payload altered
    lambda t: t.split(".")[0],  # signature missing
    lambda t: make_token(b"another secret!!", "unsubscribe", "a@example.com", "l.example.com"),  # forged
    lambda t: make_token(SECRET, "confirm", "a@example.com", "l.example.com"),  # another purpose
    lambda t: make_token(SECRET, "unsubscribe", "a@example.com", "other.example.com"),  # another list
    lambda t: "",
    lambda t: "....",
])
def test_tampered_tokens_are_rejected(tamper):
    token = make_token(SECRET, "unsubscribe", "a@example.com", "l.example.com")
    with pytest.raises(InvalidToken):
        verify_token(SECRET, tamper(token), "unsubscribe", list_id="l.example.com")


def test_swapping_payloads_between_tokens_fails():
    a = make_token(SECRET, "unsubscribe", "a@example.com", "l.example.com")
    b = make_token(SECRET, "unsubscribe", "b@example.com", "l.example.com")
    with pytest.raises(InvalidToken):
        verify_token(SECRET, a.split(".")[0] + "." + b.split(".")[1], "unsubscribe")


def test_expiry():
    token = make_token(SECRET, "confirm", "a@example.com", "l.example.com", expires=1000)
    assert verify_token(SECRET, token, "confirm", now=999).expires == 1000
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(SECRET, token, "confirm", now=1001)


def test_secret_comes_from_the_environment_and_must_be_long():
    good = "Zq3vN8pX1rT7kL5mW2yH9cB4jF6dS0aE"  # what secrets.token_urlsafe makes
    assert secret_from_env({"PUBLISHER_SECRET": good}) == good.encode()
    for env in ({}, {"PUBLISHER_SECRET": "short"}, {"PUBLISHER_SECRET": "x" * 40}):  # long is not enough
        with pytest.raises(PublisherError) as info:
            secret_from_env(env)
        assert "PUBLISHER_SECRET" in str(info.value)
