"""Signed tokens for unsubscribe, preferences, confirm and change-address links: who, which list, what for, until when.

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
import math
import os
from collections import Counter
from dataclasses import dataclass

from . import clock
from .errors import PublisherError

SECRET_ENV = "PUBLISHER_SECRET"
MIN_SECRET_BYTES = 16
MIN_SECRET_BITS = 64  # estimated from the characters' frequencies: a typed phrase passes, "aaaa..." does not
MIN_SECRET_DISTINCT = 6  # "abab...": long, but two characters
MAX_TOKEN_CHARS = 2048  # far more than any address and list id need; a longer one is not ours
MAKE_ONE = "python3 -c \"import secrets; print(secrets.token_urlsafe(32))\""


class InvalidToken(ValueError):
    """A token that is malformed, forged, altered, for another purpose or list, or expired."""


@dataclass(frozen=True)
class TokenData:
    purpose: str
    email: str
    list_id: str
    expires: int | None  # Unix time, or None for never (unsubscribe links must keep working)
    version: str | None = None  # what the subscriber's record looked like when it was issued (confirm tokens)
    new: str | None = None  # change-address tokens: the address the record moves to


def estimated_bits(value: str) -> float:
    """A rough upper bound of a secret's entropy: its length times the Shannon entropy of its characters."""
    counts = Counter(value)
    return max(0.0, -sum(n * math.log2(n / len(value)) for n in counts.values()))


def secret_from_env(environ: dict[str, str] | None = None) -> bytes:
    value = (os.environ if environ is None else environ).get(SECRET_ENV, "")
    if not value:
        problem = "is not set"
    elif len(value.encode()) < MIN_SECRET_BYTES:
        problem = f"is too short ({len(value.encode())} bytes; at least {MIN_SECRET_BYTES})"
    elif len(set(value)) < MIN_SECRET_DISTINCT or estimated_bits(value) < MIN_SECRET_BITS:
        problem = (f"is too easy to guess (about {estimated_bits(value):.0f} bits from {len(set(value))} different "
                   f"characters; at least {MIN_SECRET_BITS} bits from {MIN_SECRET_DISTINCT} characters)")
    else:
        return value.encode()
    raise PublisherError(
        f"{SECRET_ENV} {problem}",
        hint=f"make one with: {MAKE_ONE}; set it in the environment, never in the repository, and keep it "
        "forever (the links already sent are signed with it)",
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, purpose: str, payload: str) -> str:
    mac = hmac.new(secret, f"{purpose}\0{payload}".encode(), hashlib.sha256).digest()[:16]
    return _b64(mac)


def make_token(secret: bytes, purpose: str, email: str, list_id: str, expires: int | None = None,
               version: str | None = None, new: str | None = None) -> str:
    """`version` binds the token to a state of the subscriber's record: the verifier compares it with the
    record's current one, so a change (an unsubscribe, a new sign-up) voids the tokens issued before it. `new`
    is a second address (the new one of a change-address token)."""
    body: dict[str, object] = {"e": email, "l": list_id}
    if expires is not None:
        body["x"] = expires
    if version is not None:
        body["v"] = version
    if new is not None:
        body["n"] = new
    payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    return f"{payload}.{_sign(secret, purpose, payload)}"


def verify_token(secret: bytes, token: str, purpose: str, *, list_id: str | None = None,
                 now: float | None = None) -> TokenData:
    """The data of a valid token; raises `InvalidToken` for anything else."""
    token = token or ""
    if not token.isascii() or len(token) > MAX_TOKEN_CHARS:  # ours are short base64url; compare_digest needs ASCII
        raise InvalidToken("malformed token")
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature:
        raise InvalidToken("malformed token")
    if not hmac.compare_digest(_sign(secret, purpose, payload).encode("ascii"), signature.encode("ascii")):
        raise InvalidToken("bad signature")
    try:
        body = json.loads(_unb64(payload))
        version, new = body.get("v"), body.get("n")
        data = TokenData(purpose, str(body["e"]), str(body["l"]), body.get("x"),
                         None if version is None else str(version), None if new is None else str(new))
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise InvalidToken("malformed token") from None
    if list_id is not None and data.list_id != list_id:
        raise InvalidToken("token is for another list")
    if data.expires is not None and (clock.timestamp() if now is None else now) > data.expires:
        raise InvalidToken("token has expired")
    return data
