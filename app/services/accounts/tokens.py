"""Signed links for one account: expiring (password reset, email change) or not (unsubscribe).

A token is the user's id plus what must still hold when it is used (a fingerprint of the
password hash, the address it was issued for), signed with ``SECRET_KEY`` for one purpose
(itsdangerous, with a salt per purpose) and stamped with its time. Nothing is stored: a
token stops working when what it was bound to changes, so each is good once.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

EXPIRED = "This link has expired. Ask for a new one."
FORGED = "This link is not valid. Check that you copied all of it, or ask for a new one."
USED = "This link was already used or is out of date. Ask for a new one."
OTHER_ACCOUNT = "This link is for another account. Log out first, then open it again."


class TokenRefused(Exception):
    """The token cannot be used; ``message`` says why, in words for the person holding it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"account-{purpose}")


def make_token(purpose: str, payload: dict[str, Any]) -> str:
    return _serializer(purpose).dumps(payload)


def read_token(purpose: str, token: str, max_age: int | None) -> dict[str, Any]:
    """The payload of a token made for ``purpose`` at most ``max_age`` seconds ago (``None``:
    any age); raises ``TokenRefused`` (expired or forged) otherwise."""
    try:
        payload = _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise TokenRefused(EXPIRED) from None
    except BadSignature:
        raise TokenRefused(FORGED) from None
    if not isinstance(payload, dict):
        raise TokenRefused(FORGED)
    return payload


def fingerprint(value: str) -> str:
    """A short digest of ``value`` (e.g. the password hash) for a token to be bound to."""
    return hashlib.sha256(value.encode()).hexdigest()[:20]
