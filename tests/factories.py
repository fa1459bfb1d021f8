"""Small builders for test data (committed, so web requests and workers see it)."""

from __future__ import annotations

import functools
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

from sqlalchemy import select, update

from app.extensions import db
from app.models import Payout, PayoutAccount, ReferralProgramSettings, User
from app.services.accounts.accounts import create_user
from app.services.accounts.passwords import hash_password
from app.services.money.commissions import settle_sales
from app.services.money.sales import SaleReport, record_sale
from app.services.payouts.payout_accounts import save_payee_details
from app.services.payouts.payouts import complete_payout, request_payout, start_processing

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
    with mock.patch("app.services.accounts.accounts.hash_password", cached_hash):
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


def make_payout_account(user: User, method: str = "stripe", *, ready: bool = True) -> None:
    """A payout account of ``user`` for ``method``: a Stripe account that Stripe says can (or
    cannot) be paid, or Lemon Squeezy payee details (``ready`` only)."""
    if method == "stripe":
        db.session.add(
            PayoutAccount(
                user_id=user.id,
                provider="stripe",
                stripe_account_id=f"acct_{user.id}",
                country="US",
                payouts_enabled=ready,
                transfers_active=ready,
            )
        )
    else:
        save_payee_details(
            user.id,
            {
                "name": "Jane Doe",
                "email": "jane@example.com",
                "iban": "",
                "paypal_email": "jane@paypal.example",
            },
        )
    db.session.commit()


def make_payout(
    user: User,
    amount: str | None = None,
    method: str = "stripe",
    *,
    complete: bool = False,
    now: datetime | None = None,
) -> Payout:
    """A payout requested by ``user`` (an account for ``method`` is made when missing),
    completed by the provider when asked."""
    has_account = select(PayoutAccount.id).where(
        PayoutAccount.user_id == user.id, PayoutAccount.provider == method
    )
    if db.session.scalar(has_account) is None:
        make_payout_account(user, method)
    payout = request_payout(user, Decimal(amount) if amount else None, method, now=now)
    if complete:
        start_processing(payout)
        complete_payout(payout, f"tr_{payout.id}", now=now)
    db.session.commit()
    return payout


def set_program(**values: object) -> None:
    """Change program settings (the one settings row), committed."""
    db.session.execute(update(ReferralProgramSettings).values(**values))
    db.session.commit()
