"""A failed Stripe payout stays failed (a final status); an admin's retry is a new payout for
the same user, method and amount, made by the rules of any request."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, Payout, User
from app.services.ops import audit
from app.services.payouts.approvals import ActionRefused, refuse_own
from app.services.payouts.payouts import PayoutRefused, lock_user_ledger, request_payout


def retry_payout(failed: Payout, admin: User) -> Payout:
    """A new payout like the failed Stripe payout ``failed``, requested by ``admin`` on the
    user's behalf through ``request_payout`` (balance, minimum, account readiness, one open
    payout, approval: its refusal is the admin's ``ActionRefused``). Once per failed payout:
    a second retry (a double submit) is refused. Under the user's ledger lock; audited
    (``payout.retried`` on the failed payout, naming the new one). Flushes."""
    refuse_own(failed, admin)
    if failed.payment_method != "stripe" or failed.status != "failed":
        raise ActionRefused("Only a failed Stripe payout can be retried.")
    lock_user_ledger(failed.user_id)
    retried = select(AuditEntry.details["new_payout"].astext).where(
        AuditEntry.action == "payout.retried",
        AuditEntry.subject_type == "payout",
        AuditEntry.subject_id == failed.id,
    )
    if new_id := db.session.scalar(retried):
        raise ActionRefused(f"This payout was retried already: payout {new_id}.")
    user = db.session.get(User, failed.user_id)
    try:
        payout = request_payout(user, failed.amount, "stripe", requested_by=admin.id)
    except PayoutRefused as refused:
        raise ActionRefused(f"Not payable again now: {refused.message}") from refused
    audit.record(
        "payout.retried",
        actor_id=admin.id,
        subject_type="payout",
        subject_id=failed.id,
        new_payout=payout.id,
    )
    db.session.flush()
    return payout
