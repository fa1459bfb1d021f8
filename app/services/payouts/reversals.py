"""Reversed payouts: the provider took the money of a completed payout back (Stripe's
``transfer.reversed``), so it returns to the affiliate's balance and the commissions it paid
are unpaid again."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import func, or_, select

from app.extensions import db
from app.models import Commission, Payout
from app.models.payouts import OPEN_STATUSES
from app.providers import TransferReversalReport
from app.services.money import ledger
from app.services.ops import audit
from app.services.payouts.payouts import lock_user_ledger

log = logging.getLogger(__name__)


class ReversalTooEarly(RuntimeError):
    """A reversal of a payout not final yet (its worker has not recorded the transfer):
    the event is retried later, and parked for a person if that never changes."""


def reverse_payout(
    payout: Payout,
    reference: str,
    *,
    now: datetime | None = None,
    actor_id: str | None = None,
) -> bool:
    """The completed payout's money came back: ``reversed``, a ``payout_reversal`` entry of
    +amount (available at once), and the commissions it paid back to ``pending``. Returns
    whether it changed anything: a reversed payout stays as it is (idempotent).

    Commissions matched by later payouts using this one's money are unpaid too, newest
    first, until what paid commissions kept fits in what completed payouts paid. A paid
    commission partly clawed back returns as pending with what it kept (the clawback already
    took the rest from the ledger). Raises ``InvalidTransition`` unless it was ``completed``
    or ``reversed``. Under the user's ledger lock; audited (``payout.reversed``). Flushes."""
    now = now or datetime.now(UTC)
    lock_user_ledger(payout.user_id)
    db.session.refresh(payout, with_for_update=True)
    if payout.status == "reversed":
        return False
    payout.transition_to("reversed", now=now)
    ledger.append(payout.user_id, "payout_reversal", payout.amount, now, payout_id=payout.id)
    db.session.flush()
    unpaid = [_unpay(c) for c in _paid_commissions(payout.user_id, payout.id)]
    excess = _paid_beyond_payouts(payout.user_id)
    for commission in _paid_commissions(payout.user_id) if excess > 0 else []:
        if excess <= 0:
            break
        excess -= commission.amount - commission.clawed_back
        unpaid.append(_unpay(commission))
    audit.record(
        "payout.reversed",
        actor_id=actor_id,
        subject_type="payout",
        subject_id=payout.id,
        reference=reference,
        commissions=len(unpaid),
    )
    db.session.flush()
    return True


def apply_transfer_reversal(report: TransferReversalReport) -> None:
    """Apply Stripe's ``transfer.reversed``: a full reversal reverses the payout the transfer
    paid (found by its reference, else by ``metadata.payout_id``); a partial one is logged
    and audited for an admin, and changes nothing. A transfer we do not know, or one naming a
    payout paid by another transfer, is logged and ignored. Raises ``ReversalTooEarly`` for a
    payout not final yet (on hold or awaiting approval too). Flushes."""
    conditions = [Payout.transaction_reference == report.transfer_id]
    if report.payout_id:
        conditions.append(Payout.id == report.payout_id)
    payout = db.session.scalars(
        select(Payout).where(Payout.payment_method == "stripe", or_(*conditions))
    ).first()
    if payout is None:
        log.warning("Stripe reversal of unknown transfer %s ignored", report.transfer_id)
        return
    if payout.transaction_reference not in (None, report.transfer_id):
        # Another transfer naming the payout (a duplicate, reversed to recover it): the
        # payout's own transfer stands, so its money does not come back.
        log.error(
            "Stripe reversal of %s ignored: payout %s was paid by transfer %s",
            report.transfer_id,
            payout.id,
            payout.transaction_reference,
        )
        return
    if payout.status in OPEN_STATUSES:
        # Its transfer may be adopted when it is sent (a payout held after an unclear
        # attempt, say): the reversal must then still find it.
        raise ReversalTooEarly(f"payout {payout.id} is {payout.status}; retried later")
    if not report.is_full:
        log.warning(
            "Stripe transfer %s of payout %s partly reversed (%s of %s): left for an admin",
            report.transfer_id,
            payout.id,
            report.amount_reversed,
            report.amount,
        )
        audit.record(
            "payout.partly_reversed",
            subject_type="payout",
            subject_id=payout.id,
            reference=report.transfer_id,
            amount_reversed=str(report.amount_reversed),
        )
        return
    if payout.status not in ("completed", "reversed"):
        log.warning(
            "Stripe reversal of %s: payout %s is %s", report.transfer_id, payout.id, payout.status
        )
        return
    reverse_payout(payout, report.transfer_id)


def _paid_commissions(user_id: str, payout_id: str | None = None) -> list[Commission]:
    """The user's paid commissions (of one payout), newest matched first, locked."""
    query = select(Commission).where(Commission.user_id == user_id, Commission.status == "paid")
    if payout_id is not None:
        query = query.where(Commission.payout_id == payout_id)
    order = (Commission.payable_at.desc(), Commission.created_at.desc(), Commission.id.desc())
    return list(db.session.scalars(query.order_by(*order).with_for_update()))


def _paid_beyond_payouts(user_id: str):
    """What paid commissions kept beyond what the user's completed payouts paid."""
    completed = select(func.coalesce(func.sum(Payout.amount), 0)).where(
        Payout.user_id == user_id, Payout.status == "completed"
    )
    kept = select(func.coalesce(func.sum(Commission.amount - Commission.clawed_back), 0)).where(
        Commission.user_id == user_id, Commission.status == "paid"
    )
    return db.session.scalar(select(kept.scalar_subquery() - completed.scalar_subquery()))


def _unpay(commission: Commission) -> str:
    """Paid no more: pending with what it kept, or cancelled if an admin had cancelled it
    (clawed back in full: nothing kept, nothing to pay again)."""
    commission.amount -= commission.clawed_back
    commission.clawed_back = 0
    commission.transition_to("pending")
    commission.payout_id = None
    if commission.cancelled_at is not None:
        commission.transition_to("cancelled")
    return commission.id
