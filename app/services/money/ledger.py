"""Balances from the append-only ledger; entries are written beside each change of money.

The invariant, for every user at every moment (checked by the tests after any sequence of
sales, refunds and payouts):

    sum(ledger) = sum(amount of non-cancelled commissions) - sum(clawed back)
                  - sum(payouts neither failed nor reversed)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import text

from app.extensions import db
from app.models import LedgerEntry

ZERO = Decimal("0")
# Held commissions' money is in the ledger but available only when an admin releases it
# (a new pair of entries); until then it is dated here.
HELD_UNTIL = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True)
class Balances:
    pending: Decimal = ZERO  # earned, waiting for the hold period
    held: Decimal = ZERO  # earned on a flagged referral, waiting for an admin
    available: Decimal = ZERO  # can be paid out now
    paid: Decimal = ZERO  # sent in payouts (net of failed and reversed ones)
    owed: Decimal = ZERO  # clawed back beyond the balance: netted from later payouts


_BALANCES = text(
    """
    SELECT coalesce(sum(amount) FILTER (WHERE available_at > :now AND available_at < :held), 0),
           coalesce(sum(amount) FILTER (WHERE available_at >= :held), 0),
           coalesce(sum(amount) FILTER (WHERE available_at <= :now), 0),
           coalesce(-sum(amount) FILTER (
               WHERE kind IN ('payout', 'payout_failure', 'payout_reversal')), 0)
    FROM ledger_entries WHERE user_id = :user_id
    """
)


def balances(user_id: str, now: datetime | None = None) -> Balances:
    """One indexed pass over the user's entries."""
    pending, held, settled, paid = db.session.execute(
        _BALANCES, {"user_id": user_id, "now": now or datetime.now(UTC), "held": HELD_UNTIL}
    ).one()
    return Balances(
        pending=pending,
        held=held,
        available=max(settled, ZERO),
        paid=paid,
        owed=max(-settled, ZERO),
    )


def append(
    user_id: str,
    kind: str,
    amount: Decimal,
    available_at: datetime,
    *,
    commission_id: str | None = None,
    payout_id: str | None = None,
) -> None:
    """Add one entry (nothing for a zero amount). Flushes with the session."""
    if amount:
        db.session.add(
            LedgerEntry(
                user_id=user_id,
                kind=kind,
                amount=amount,
                available_at=available_at,
                commission_id=commission_id,
                payout_id=payout_id,
            )
        )
