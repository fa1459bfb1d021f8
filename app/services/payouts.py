"""Paying out an affiliate's available balance, and taking back a payout that failed.

The provider side (Stripe Connect transfers, Lemon Squeezy settlement) is a later step; this
holds the money rules the ledger needs: a payout covers the balance available now, net of
anything clawed back, and marks the payable commissions it settles as paid.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select, update

from app.extensions import db
from app.models import Commission, Payout, Sale
from app.services import ledger
from app.services.commissions import adjust_for_refunds
from app.services.program import get_settings


class PayoutRefused(ValueError):
    pass


def lock_user_ledger(user_id: str) -> None:
    """Serialize money movements of one user (payouts against each other)."""
    db.session.execute(select(db.func.pg_advisory_xact_lock(db.func.hashtext("payout:" + user_id))))


def create_payout(user_id: str, method: str, now: datetime | None = None) -> Payout:
    """A payout of everything available now. Refused below the program's minimum.

    Locks the user's ledger for the transaction, so two requests cannot pay the same money.
    """
    now = now or datetime.now(UTC)
    lock_user_ledger(user_id)
    # Commissions of sales under an open dispute stay unpaid, and so does their money: the
    # dispute may be won (their amount comes back up, which a paid commission could not take).
    under_dispute = (
        Commission.user_id == user_id,
        Commission.status == "pending",
        Commission.payable_at <= now,
        select(Sale.id)
        .where(Sale.id == Commission.sale_id, Sale.disputed_amount > 0)
        .where(Sale.dispute_closed_at.is_(None))
        .exists(),
    )
    disputed = db.session.scalar(
        select(func.coalesce(func.sum(Commission.amount), 0)).where(*under_dispute)
    )
    amount = ledger.balances(user_id, now).available - disputed
    minimum = get_settings().min_payout_amount
    if amount <= 0 or amount < minimum:
        raise PayoutRefused(f"Available {amount} is below the minimum payout of {minimum}.")
    payout = Payout(user_id=user_id, amount=amount, payment_method=method)
    db.session.add(payout)
    db.session.flush()
    ledger.append(user_id, "payout", -amount, now, payout_id=payout.id)
    db.session.execute(
        update(Commission)
        .where(
            Commission.user_id == user_id,
            Commission.status == "pending",
            Commission.payable_at <= now,
            ~under_dispute[-1],
        )
        .values(status="paid", payout_id=payout.id)
    )
    return payout


def fail_payout(payout: Payout, now: datetime | None = None) -> None:
    """The money comes back to the balance; its commissions are unpaid again (what was
    clawed back from them meanwhile stays taken: their amount drops by it), then realigned
    with their sales' refunds (a sale refunded in full meanwhile cancels them)."""
    lock_user_ledger(payout.user_id)
    sale_ids = sorted(
        set(db.session.scalars(select(Commission.sale_id).where(Commission.payout_id == payout.id)))
    )
    payout.transition_to("failed")
    ledger.append(
        payout.user_id,
        "payout_failure",
        payout.amount,
        now or datetime.now(UTC),
        payout_id=payout.id,
    )
    db.session.execute(
        update(Commission)
        .where(Commission.payout_id == payout.id)
        .values(
            status="pending",
            payout_id=None,
            amount=Commission.amount - Commission.clawed_back,
            clawed_back=Decimal(0),
        )
    )
    for sale_id in sale_ids:
        adjust_for_refunds(sale_id)
