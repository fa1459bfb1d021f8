"""Suspending and reactivating an affiliate: a suspended affiliate earns nothing on new sales
(accrual skips them as an earner) and cannot request payouts (``request_payout``); a payout
requested before is held when it would be sent (``transfers``). What was earned before stays."""

from __future__ import annotations

from app.extensions import db
from app.models import User
from app.services.money.commissions import stop_accruals
from app.services.ops import audit
from app.services.payouts.payouts import lock_user_ledger

MAX_REASON_LENGTH = 500


class SuspensionRefused(ValueError):
    pass


def set_suspended(user: User, suspended: bool, admin: User, reason: str) -> None:
    """Suspend (``suspended``) or reactivate the user, with the admin's reason, audited
    (``user.suspended`` / ``user.reactivated``). Raises ``SuspensionRefused`` (nothing
    changed) without a reason, for an admin's own account, or when the user is in that state
    already (a double submit, or another admin first: no second audit entry).

    Waits for any accrual in progress (``stop_accruals``) and payout request
    (``lock_user_ledger``), so every sale accrued and every payout requested after this
    commits sees the suspension; locks the user row. Flushes only."""
    reason = (reason or "").strip()
    if not reason:
        raise SuspensionRefused("Give a reason: it is kept in the audit log.")
    if len(reason) > MAX_REASON_LENGTH:
        raise SuspensionRefused(f"Keep the reason under {MAX_REASON_LENGTH} characters.")
    if user.id == admin.id:
        raise SuspensionRefused("You cannot suspend or reactivate your own account.")
    stop_accruals()
    lock_user_ledger(user.id)
    db.session.refresh(user, with_for_update=True)
    if user.is_suspended == suspended:
        state = "suspended" if suspended else "active"
        raise SuspensionRefused(f"{user.username} is {state} already.")
    user.is_suspended = suspended
    audit.record(
        "user.suspended" if suspended else "user.reactivated",
        actor_id=admin.id,
        subject_type="user",
        subject_id=user.id,
        reason=reason,
    )
    db.session.flush()
