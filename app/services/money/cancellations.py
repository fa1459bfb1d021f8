"""An admin cancelling a commission, exactly as a full refund would: an unpaid one is
reversed in the ledger and cancelled, a paid one clawed back in full (netted from later
payouts). Rules in the README ("Commission rules")."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select

from app.extensions import db
from app.models import Commission, User
from app.money import quantize
from app.services.money.commissions import realign
from app.services.money.sales import lock_sale
from app.services.ops import audit
from app.services.program.program import get_settings

MAX_REASON_LENGTH = 500


class CancelRefused(ValueError):
    pass


def cancel_commission(commission_id: str, admin: User, reason: str) -> Commission:
    """Cancel the commission with the admin's reason, audited (``commission.cancelled``).

    Pending or held: its amount is reversed (a ``reversal`` entry) and it is ``cancelled``.
    Paid: it stays paid and is clawed back in full (a ``clawback`` entry of what it kept,
    ``clawed_back`` = amount). Later refunds of its sale leave it alone. Raises
    ``CancelRefused`` (nothing changed) without a reason or when it is cancelled already
    (idempotent: a double submit or a second admin adds nothing). Locks its sale, then the
    commission, in the order refunds do, so the two never interleave. Flushes only."""
    reason = (reason or "").strip()
    if not reason:
        raise CancelRefused("Give a reason: it is kept with the commission and audited.")
    if len(reason) > MAX_REASON_LENGTH:
        raise CancelRefused(f"Keep the reason under {MAX_REASON_LENGTH} characters.")
    sale_id = db.session.scalar(select(Commission.sale_id).where(Commission.id == commission_id))
    lock_sale(sale_id)
    commission = db.session.scalars(
        select(Commission)
        .where(Commission.id == commission_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if commission.cancelled_at is not None or commission.status == "cancelled":
        raise CancelRefused("This commission is cancelled already.")
    was = commission.status
    kept = commission.amount - commission.clawed_back
    realign(commission, Decimal(0), is_gone=True)
    commission.cancelled_at = datetime.now(UTC)
    commission.cancel_reason = reason
    audit.record(
        "commission.cancelled",
        actor_id=admin.id,
        subject_type="commission",
        subject_id=commission.id,
        reason=reason,
        status=was,
        amount=str(quantize(kept, get_settings().currency)),
        user_id=commission.user_id,
    )
    db.session.flush()
    return commission
