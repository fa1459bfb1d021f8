"""Small builders for test data (committed, so web requests and workers see it)."""

from __future__ import annotations

import functools
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

from app.extensions import db
from app.models import User
from app.services.accounts import create_user
from app.services.commissions import settle_sales
from app.services.passwords import hash_password
from app.services.sales import SaleReport, record_sale

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


_sales = itertools.count(1)


def make_sale(
    buyer: User | None,
    amount: str = "100.00",
    *,
    days_ago: int = 0,
    currency: str = "USD",
    provider: str = "manual",
    external_id: str | None = None,
    subscription_id: str | None = None,
    accrue: bool = True,
) -> str:
    """A sale by ``buyer`` (``days_ago`` in the past), accrued unless asked not to."""
    sale_id = record_sale(
        SaleReport(
            provider=provider,
            external_id=external_id or f"sale-{next(_sales)}",
            amount=Decimal(amount),
            currency=currency,
            occurred_at=datetime.now(UTC) - timedelta(days=days_ago),
            buyer_id=buyer.id if buyer else None,
            subscription_id=subscription_id,
        )
    )
    if accrue:
        settle_sales([sale_id])
    db.session.commit()
    return sale_id
