"""Small builders for test data (committed, so web requests and workers see it)."""

from __future__ import annotations

import itertools

from app.extensions import db
from app.models import User
from app.services.accounts import create_user

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery"


def make_user(referrer: User | None = None, **overrides: object) -> User:
    n = next(_seq)
    fields = {"username": f"user{n}", "email": f"user{n}@example.com", "password": PASSWORD}
    fields.update(overrides)
    user = create_user(referrer=referrer, **fields)
    db.session.commit()
    return user


def make_chain(depth: int) -> list[User]:
    """``depth`` users, each referred by the one before; the root first."""
    users = [make_user()]
    for _ in range(depth - 1):
        users.append(make_user(referrer=users[-1]))
    return users
