"""An affiliate's earnings totals: pending, available and paid."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, func, select

from app.extensions import db
from app.models import Commission, Payout

ZERO = Decimal("0")


@dataclass(frozen=True)
class Earnings:
    pending: Decimal = ZERO
    available: Decimal = ZERO
    paid: Decimal = ZERO


def earnings_summary(user_id: str) -> Earnings:
    """Pending: accrued, not yet paid out; paid: sent in completed payouts; available:
    pending minus what is already committed to payouts in flight.

    One query per table, both on indexed ``user_id``.
    """
    pending = db.session.scalar(
        select(func.coalesce(func.sum(Commission.amount), 0)).where(
            Commission.user_id == user_id, Commission.status == "pending"
        )
    )
    in_flight, paid = db.session.execute(
        select(
            func.coalesce(
                func.sum(case((Payout.status.in_(("pending", "processing")), Payout.amount))), 0
            ),
            func.coalesce(func.sum(case((Payout.status == "completed", Payout.amount))), 0),
        ).where(Payout.user_id == user_id)
    ).one()
    return Earnings(pending=pending, available=max(pending - in_flight, ZERO), paid=paid)
