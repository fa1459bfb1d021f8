"""Small builders for test data (committed, so web requests and workers see it)."""

from __future__ import annotations

import functools
import itertools
from unittest import mock

from app.extensions import db
from app.models import User
from app.services.accounts import create_user
from app.services.passwords import hash_password

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery"


@functools.cache
def cached_hash(password: str) -> str:
    """argon2id takes ~90 ms by design; builders hash each distinct password once."""
    return hash_password(password)


def make_user(referrer: User | None = None, **overrides: object) -> User:
    n = next(_seq)
    fields = {"username": f"user{n}", "email": f"user{n}@example.com", "password": PASSWORD}
    fields.update(overrides)
    with mock.patch("app.services.accounts.hash_password", cached_hash):
        user = create_user(referrer=referrer, **fields)
    db.session.commit()
    return user


def make_chain(depth: int) -> list[User]:
    """``depth`` users, each referred by the one before; the root first."""
    users = [make_user()]
    for _ in range(depth - 1):
        users.append(make_user(referrer=users[-1]))
    return users
