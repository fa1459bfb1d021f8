"""The treasury panel: what the program owes its affiliates beside what the platform's
Stripe balance holds, the payouts waiting for funds and the accounts that cannot be paid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import stripe
from sqlalchemy import and_, func, or_, select, text

from app.extensions import db
from app.models import Payout, PayoutAccount, User
from app.models.payouts import OPEN_STATUSES
from app.providers.stripe import minor_exponent
from app.providers.stripe_api import StripeNotConfigured, stripe_client
from app.services.money.ledger import HELD_UNTIL

LISTED = 20
STRIPE_DOWN = "Stripe could not be asked for the platform balance ({problem}): try again later."
STRIPE_OFF = "Stripe is not configured (no STRIPE_SECRET_KEY): no platform balance to show."


@dataclass(frozen=True)
class Owed:
    """Affiliates' balances not yet requested (available now, pending: in the hold period)
    and the open payouts, reserved but not sent, by method."""

    available: Decimal
    pending: Decimal
    open_by_method: dict[str, Decimal]

    @property
    def total(self) -> Decimal:
        return self.available + self.pending + sum(self.open_by_method.values(), Decimal(0))


@dataclass(frozen=True)
class StripeBalance:
    """The platform's Stripe balance in the program's currency, or why it is not known."""

    available: Decimal | None = None
    pending: Decimal | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Treasury:
    owed: Owed
    stripe: StripeBalance
    waiting_for_funds: list[tuple[Payout, str]]
    accounts_not_ready: list[tuple[PayoutAccount, str]]
    accounts_not_ready_count: int


# From the running totals: a user's available balance (total less what becomes available
# later) counts when positive (money owed back by a user does not lower what the others are
# owed). What becomes available later: the buckets after the current hour, and of the
# current hour's buckets the entries after now — never the ledger's history.
_OWED = text(
    """
    WITH later AS (
        SELECT user_id, available_hour AS at, amount FROM ledger_buckets
        WHERE available_hour > date_trunc('hour', CAST(:now AS timestamptz), 'UTC')
        UNION ALL
        SELECT b.user_id, b.available_hour, e.amount
        FROM ledger_buckets b
        CROSS JOIN LATERAL (
            SELECT sum(amount) AS amount FROM ledger_entries e
            WHERE e.user_id = b.user_id AND e.available_at > :now
              AND e.available_at < b.available_hour + interval '1 hour'
        ) e
        WHERE b.available_hour = date_trunc('hour', CAST(:now AS timestamptz), 'UTC')
          AND e.amount IS NOT NULL
    ),
    per_user AS (
        SELECT user_id, sum(amount) AS later,
               coalesce(sum(amount) FILTER (WHERE at < :held), 0) AS pending
        FROM later GROUP BY user_id
    )
    SELECT coalesce(sum(greatest(t.total - coalesce(p.later, 0), 0)), 0),
           coalesce(sum(p.pending), 0)
    FROM ledger_totals t LEFT JOIN per_user p USING (user_id)
    """
)


def owed(now: datetime | None = None) -> Owed:
    available, pending = db.session.execute(
        _OWED, {"now": now or datetime.now(UTC), "held": HELD_UNTIL}
    ).one()
    open_by_method = dict(
        db.session.execute(
            select(Payout.payment_method, func.sum(Payout.amount))
            .where(Payout.status.in_(OPEN_STATUSES))
            .group_by(Payout.payment_method)
            .order_by(Payout.payment_method)
        ).all()
    )
    return Owed(available, pending, open_by_method)


def stripe_balance(currency: str) -> StripeBalance:
    """The Balance API's available and pending amounts in ``currency``; never raises: a
    missing key or an unreachable Stripe is a note for the page."""
    try:
        balance = stripe_client().v1.balance.retrieve().to_dict()
    except StripeNotConfigured:
        return StripeBalance(problem=STRIPE_OFF)
    except stripe.StripeError as error:
        return StripeBalance(problem=STRIPE_DOWN.format(problem=type(error).__name__))
    exponent = minor_exponent(currency)

    def total(part: str) -> Decimal:
        minor = sum(
            item["amount"]
            for item in balance.get(part) or []
            if str(item.get("currency", "")).upper() == currency
        )
        return Decimal(minor).scaleb(-exponent)

    return StripeBalance(available=total("available"), pending=total("pending"))


def _not_ready():
    return or_(
        and_(
            PayoutAccount.provider == "stripe",
            or_(
                ~PayoutAccount.payouts_enabled,
                ~PayoutAccount.transfers_active,
                PayoutAccount.restriction.is_not(None),
            ),
        ),
        and_(PayoutAccount.provider == "lemon_squeezy", PayoutAccount.payee_details.is_(None)),
    )


def treasury(currency: str) -> Treasury:
    """Everything the panel shows; the lists at most ``LISTED`` long, oldest first."""
    waiting = db.session.execute(
        select(Payout, User.username)
        .join(User, User.id == Payout.user_id)
        .where(Payout.status.in_(("pending", "processing")), Payout.waiting_reason.is_not(None))
        .order_by(Payout.created_at, Payout.id)
        .limit(LISTED)
    ).all()
    accounts = db.session.execute(
        select(PayoutAccount, User.username)
        .join(User, User.id == PayoutAccount.user_id)
        .where(_not_ready())
        .order_by(PayoutAccount.updated_at, PayoutAccount.id)
        .limit(LISTED)
    ).all()
    count = db.session.scalar(select(func.count()).select_from(PayoutAccount).where(_not_ready()))
    return Treasury(
        owed=owed(),
        stripe=stripe_balance(currency),
        waiting_for_funds=list(waiting),
        accounts_not_ready=list(accounts),
        accounts_not_ready_count=count,
    )
