"""Signed tokens for unsubscribe (and confirm) links: who, which list, what for, until when.

A token is `payload.signature`, both base64url without padding. The payload is compact JSON; the signature is
HMAC-SHA256 over the purpose and the payload, truncated to 128 bits, with the secret from `PUBLISHER_SECRET`.
Nothing is stored: whoever holds the secret can verify a token, and no one without it can forge or alter one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from dataclasses import dataclass

from . import clock
from .errors import PublisherError

SECRET_ENV = "PUBLISHER_SECRET"
MIN_SECRET_BYTES = 16


class InvalidToken(ValueError):
    """A token that is malformed, forged, altered, for another purpose or list, or expired."""


@dataclass(frozen=True)
class TokenData:
    purpose: str
    email: str
    list_id: str
    expires: int | None  # Unix time, or None for never (unsubscribe links must keep working)


def secret_from_env(environ: dict[str, str] | None = None) -> bytes:
    value = (os.environ if environ is None else environ).get(SECRET_ENV, "")
    if len(value.encode()) < MIN_SECRET_BYTES:
        raise PublisherError(
            f"{SECRET_ENV} is {'not set' if not value else 'too short'}",
            hint=f"set it to a long random value, e.g. export {SECRET_ENV}=$(python3 -c "
            "'import secrets; print(secrets.token_urlsafe(32))'); keep it out of the repository",
        )
    return value.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, purpose: str, payload: str) -> str:
    mac = hmac.new(secret, f"{purpose}\0{payload}".encode(), hashlib.sha256).digest()[:16]
    return _b64(mac)


def make_token(secret: bytes, purpose: str, email: str, list_id: str, expires: int | None = None) -> str:
    body: dict[str, object] = {"e": email, "l": list_id}
    if expires is not None:
        body["x"] = expires
    payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    return f"{payload}.{_sign(secret, purpose, payload)}"


def verify_token(secret: bytes, token: str, purpose: str, *, list_id: str | None = None,
                 now: float | None = None) -> TokenData:
    """The data of a valid token; raises `InvalidToken` for anything else."""
    payload, dot, signature = (token or "").partition(".")
    if not dot or not payload or not signature:
        raise InvalidToken("malformed token")
    if not hmac.compare_digest(_sign(secret, purpose, payload), signature):
        raise InvalidToken("bad signature")
    try:
        body = json.loads(_unb64(payload))
        data = TokenData(purpose, str(body["e"]), str(body["l"]), body.get("x"))
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidToken("malformed token") from None
    if list_id is not None and data.list_id != list_id:
        raise InvalidToken("token is for another list")
    if data.expires is not None and (clock.timestamp() if now is None else now) > data.expires:
        raise InvalidToken("token has expired")
    return data
