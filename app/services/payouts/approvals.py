"""Admin decisions on a payout before it is sent: approve (maker-checker above the setting's
amount), hold, release from hold, reject.

Each takes the payout's row lock first and decides on its status as committed, so two admins
acting at once see each other: of two approvals that complete a payout, exactly one moves it
to ``pending`` and asks for one send. A refusal raises ``ActionRefused`` before anything is
written. Every decision is audited. Functions flush; the request commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import stripe
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.jobs.payouts import request_send
from app.models import Payout, PayoutApproval, User
from app.providers.stripe_api import StripeNotConfigured
from app.services.ops import audit
from app.services.payouts.payouts import fail_payout, lock_user_ledger
from app.services.payouts.stripe_accounts import stripe_account
from app.services.payouts.transfers import find_transfer, send_lock

HOLDABLE = frozenset({"awaiting_approval", "pending"})
REJECTABLE = frozenset({"awaiting_approval", "on_hold", "pending"})
MAX_REASON_LENGTH = 500


@dataclass
class ActionRefused(ValueError):
    """An admin action refused, with a message for the admin; nothing was changed."""

    message: str

    def __str__(self) -> str:
        return self.message


def lock_payout(payout: Payout) -> Payout:
    """The payout as committed now, its row locked until the transaction ends."""
    db.session.refresh(payout, with_for_update=True)
    return payout


def _status_refusal(payout: Payout, wanted: str) -> ActionRefused:
    status = payout.status.replace("_", " ")
    return ActionRefused(f"This payout is {status} now, not {wanted}: someone acted on it.")


def _checked_reason(reason: str) -> str:
    reason = " ".join((reason or "").split())
    if not reason:
        raise ActionRefused("Give a reason.")
    if len(reason) > MAX_REASON_LENGTH:
        raise ActionRefused(f"Keep the reason under {MAX_REASON_LENGTH} characters.")
    return reason


def refuse_own(payout: Payout, admin: User) -> None:
    """An admin never decides on a payout that pays them (they could release a hold on it,
    mark it paid, or fail one they were paid outside the app and be paid twice)."""
    if admin.id == payout.user_id:
        raise ActionRefused("This payout pays you: another admin decides on it.")


def approval_count(payout_id: str) -> int:
    return db.session.scalar(select(func.count()).where(PayoutApproval.payout_id == payout_id))


def _make_ready(payout: Payout) -> None:
    """``pending``: a Stripe payout is sent by a worker after the commit; a Lemon Squeezy one
    waits in the admin queue for settlement."""
    payout.transition_to("pending")
    if payout.payment_method == "stripe":
        request_send(payout.id)


def approve(payout: Payout, admin: User) -> bool:
    """Record ``admin``'s approval; the approval that reaches ``approvals_required`` moves
    the payout to ``pending`` (and asks for the Stripe send). Returns whether it did.

    Refused (maker-checker) when the payout is not ``awaiting_approval``, when ``admin``
    requested it or is its payee, or approved it already (the unique index on
    (payout, admin) is the last line); and while the affiliate is suspended. Audited
    (``payout.approved``). Flushes.
    """
    payout = lock_payout(payout)
    if payout.status != "awaiting_approval":
        raise _status_refusal(payout, "awaiting approval")
    refuse_own(payout, admin)
    if admin.id == payout.requested_by:
        raise ActionRefused("You requested this payout: another admin approves.")
    if db.session.get(User, payout.user_id).is_suspended:
        raise ActionRefused("The affiliate is suspended: hold or reject this payout.")
    already = select(PayoutApproval.id).where(
        PayoutApproval.payout_id == payout.id, PayoutApproval.admin_id == admin.id
    )
    if db.session.scalar(already):
        raise ActionRefused("You approved this payout already: a second admin must approve it.")
    try:
        with db.session.begin_nested():
            db.session.add(PayoutApproval(payout_id=payout.id, admin_id=admin.id))
    except IntegrityError as exc:
        raise ActionRefused("You approved this payout already.") from exc
    count = approval_count(payout.id)
    ready = count >= payout.approvals_required
    if ready:
        _make_ready(payout)
    audit.record(
        "payout.approved",
        actor_id=admin.id,
        subject_type="payout",
        subject_id=payout.id,
        approvals=count,
        required=payout.approvals_required,
        status=payout.status,
    )
    db.session.flush()
    return ready


def hold(payout: Payout, admin: User, reason: str) -> None:
    """Stop a payout that waits for approval or to be sent: ``on_hold``, the reason kept as
    its ``waiting_reason``. Audited (``payout.held``). Flushes."""
    reason = _checked_reason(reason)
    payout = lock_payout(payout)
    if payout.status not in HOLDABLE:
        raise _status_refusal(payout, "awaiting approval or pending")
    payout.transition_to("on_hold")
    payout.waiting_reason = f"On hold: {reason}"
    audit.record(
        "payout.held", actor_id=admin.id, subject_type="payout", subject_id=payout.id, reason=reason
    )
    db.session.flush()


def release(payout: Payout, admin: User) -> str:
    """Release a held payout: back to ``awaiting_approval`` while approvals are missing,
    else ``pending`` (and the Stripe send). Returns the new status. Audited
    (``payout.released``). Flushes."""
    payout = lock_payout(payout)
    refuse_own(payout, admin)
    if payout.status != "on_hold":
        raise _status_refusal(payout, "on hold")
    if approval_count(payout.id) < payout.approvals_required:
        payout.transition_to("awaiting_approval")
    else:
        _make_ready(payout)
    payout.waiting_reason = None
    audit.record(
        "payout.released",
        actor_id=admin.id,
        subject_type="payout",
        subject_id=payout.id,
        status=payout.status,
    )
    db.session.flush()
    return payout.status


def reject(payout: Payout, admin: User, reason: str, *, now: datetime | None = None) -> None:
    """Refuse a payout that was not sent (awaiting approval, on hold, or pending: a Lemon
    Squeezy payout the admin could not pay): ``failed`` with the reason, its reserve back in
    the balance (``fail_payout``, audited ``payout.failed`` with the admin). A payout a
    worker has taken (``processing``) is refused: its transfer may be under way. Flushes."""
    reason = _checked_reason(reason)
    with send_lock(payout.id) as mine:
        if not mine:
            raise ActionRefused("A worker is sending this payout now: it cannot be rejected.")
        # The ledger lock before the row lock, in the order fail_payout and completion take
        # them.
        lock_user_ledger(payout.user_id)
        payout = lock_payout(payout)
        refuse_own(payout, admin)
        if payout.status not in REJECTABLE:
            raise _status_refusal(payout, "waiting")
        _refuse_if_transferred(payout)
        fail_payout(payout, reason, now=now or datetime.now(UTC), actor_id=admin.id)


def _refuse_if_transferred(payout: Payout) -> None:
    """A Stripe payout tried before (a 5xx or no answer sent it back to ``pending``) may have
    its transfer made already: failing it would also return its reserve, paying twice. So
    Stripe is asked first; a transfer found, or no answer, refuses the rejection (the next
    send adopts the transfer and completes the payout)."""
    if payout.payment_method != "stripe" or payout.attempts == 0:
        return
    account = stripe_account(payout.user_id)
    try:
        found = account is not None and find_transfer(payout.id, account.stripe_account_id)
    except (stripe.StripeError, StripeNotConfigured) as error:
        raise ActionRefused(
            "Stripe could not confirm that this payout was not sent: try again later."
        ) from error
    if found:
        raise ActionRefused(
            f"Stripe made this payout's transfer ({found['id']}): it will be completed, "
            "not rejected."
        )
