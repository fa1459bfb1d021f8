"""Payouts: a request reserves money in the ledger; completion marks the commissions it
covers paid; a failure gives the money back.

Every status change goes through ``Payout.transition_to`` (the one transition table). Money
moves only under the user's ledger lock (``lock_user_ledger``), so concurrent requests,
completions and failures of one user see each other's entries. The provider side (Stripe
transfers, Lemon Squeezy settlement) and admin approval call these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    Commission,
    CommissionRollupMonth,
    Payout,
    PayoutAccount,
    ReferralProgramSettings,
    Sale,
    User,
)
from app.models.payouts import OPEN_STATUSES, PAYMENT_METHODS
from app.money import format_money, minor_units, quantize
from app.services.mail.notifications import mail_payout_outcome
from app.services.money import ledger
from app.services.ops import audit
from app.services.program.program import get_settings

METHOD_NAMES = {"stripe": "Stripe", "lemon_squeezy": "Lemon Squeezy"}
# The column holds NUMERIC(19,4): no amount reaches 10^15.
_HUGE = 15


@dataclass
class PayoutRefused(ValueError):
    """A request refused, with a message for the user; nothing was changed. ``field`` names
    the form field the message belongs to (``None``: the whole request)."""

    message: str
    field: str | None = None

    def __str__(self) -> str:
        return self.message


class DuplicateReference(ValueError):
    """Another payout already has this transaction reference."""


def lock_user_ledger(user_id: str) -> None:
    """Serialize money movements of one user (payouts against each other)."""
    db.session.execute(select(db.func.pg_advisory_xact_lock(db.func.hashtext("payout:" + user_id))))


def _open_dispute():
    """A sale under an open dispute (what the partial index ``ix_sales_open_disputes``
    holds): its commissions' money and status are not paid out (the dispute may be won, and
    a paid commission could not take its amount back)."""
    return (Sale.disputed_amount > 0, Sale.dispute_closed_at.is_(None))


def _under_open_dispute():
    """Commissions whose sale is under an open dispute."""
    return select(Sale.id).where(Sale.id == Commission.sale_id, *_open_dispute()).exists()


def payable_amount(user_id: str, now: datetime | None = None) -> Decimal:
    """What a payout of this user may take now: the available balance (net of clawbacks
    owed) less the payable commissions of sales under an open dispute; never below zero."""
    now = now or datetime.now(UTC)
    # From the sales under an open dispute (a partial index), whatever the user's history.
    disputed = db.session.scalar(
        select(func.coalesce(func.sum(Commission.amount), 0))
        .select_from(Sale)
        .join(Commission, Commission.sale_id == Sale.id)
        .where(
            *_open_dispute(),
            Commission.user_id == user_id,
            Commission.status == "pending",
            Commission.payable_at <= now,
        )
    )
    return max(ledger.balances(user_id, now).available - disputed, Decimal(0))


def ready_methods(user_id: str) -> list[str]:
    """The payment methods whose account of this user can be paid now, in a stable order."""
    accounts = db.session.scalars(select(PayoutAccount).where(PayoutAccount.user_id == user_id))
    return sorted(a.provider for a in accounts if a.is_ready)


def history(user_id: str, limit: int = 50) -> list[Payout]:
    """The user's newest payouts first."""
    return list(
        db.session.scalars(
            select(Payout)
            .where(Payout.user_id == user_id)
            .order_by(Payout.created_at.desc(), Payout.id.desc())
            .limit(limit)
        )
    )


def approvals_required(amount: Decimal, settings: ReferralProgramSettings) -> int:
    """How many admins must approve a new payout of ``amount``: none with approval off, two
    (maker-checker) above ``dual_approval_above`` when that is set, else one."""
    if not settings.payouts_need_approval:
        return 0
    threshold = settings.dual_approval_above
    return 2 if threshold is not None and amount > threshold else 1


def _checked_amount(amount: Decimal, currency: str) -> None:
    if not amount.is_finite():
        raise PayoutRefused("Enter an amount, like 50.00.", "amount")
    if amount <= 0:
        raise PayoutRefused("Enter an amount above zero.", "amount")
    # Past the column's range quantize would overflow; such an amount is refused below as
    # above the balance.
    if amount.adjusted() < _HUGE and quantize(amount, currency) != amount:
        places = minor_units(currency)
        raise PayoutRefused(
            f"Use at most {places} decimal{'s' if places != 1 else ''} for {currency}.", "amount"
        )


def request_payout(
    user: User,
    amount: Decimal | None,
    method: str,
    *,
    now: datetime | None = None,
    ip_hash: str | None = None,
    requested_by: str | None = None,
) -> Payout:
    """A payout of ``amount`` (``None``: all that is payable) to the user's ``method``
    account, its amount reserved in the ledger (a ``payout`` entry) in this transaction.
    ``requested_by`` is who asks (default: the user; an admin retrying a failed payout).

    With the setting ``payouts_need_approval`` on, it waits for an admin
    (``awaiting_approval``, ``approvals_required`` 1, or 2 above ``dual_approval_above``;
    see ``approvals.py``); otherwise it is ``pending`` at once.

    Raises ``PayoutRefused`` (nothing changed) when the method is unknown or its account
    missing or not ready, the user is suspended or has another payout not final, or the
    amount is not positive, has more decimals than the currency's minor unit (never
    rounded), is below the program's minimum or above ``payable_amount``. Takes the user's
    ledger lock first, so concurrent requests never reserve more than the balance (the
    unique index on open payouts is the database's last line). Audited
    (``payout.requested``). A pending Stripe payout is sent by a worker after the commit
    (``app.jobs.payouts.request_send``). Flushes; the caller commits.
    """
    now = now or datetime.now(UTC)
    settings = get_settings()
    currency = settings.currency
    if method not in PAYMENT_METHODS:
        raise PayoutRefused("Choose how to be paid: Stripe or Lemon Squeezy.", "method")
    if amount is not None:
        _checked_amount(amount, currency)
    lock_user_ledger(user.id)
    # As committed now: an admin may have suspended the user since this request loaded them
    # (a suspension takes this lock too, so it is either seen here or comes after).
    db.session.refresh(user, ["is_suspended"])
    if user.is_suspended:
        raise PayoutRefused("Your account is suspended: payouts are paused. Contact the admin.")
    if db.session.scalar(
        select(Payout.id).where(Payout.user_id == user.id, Payout.status.in_(OPEN_STATUSES))
    ):
        raise PayoutRefused(
            "You already have a payout in progress. You can request another once it is done."
        )
    account = db.session.scalars(
        select(PayoutAccount).where(
            PayoutAccount.user_id == user.id, PayoutAccount.provider == method
        )
    ).one_or_none()
    if account is None or not account.is_ready:
        raise PayoutRefused(
            f"Your {METHOD_NAMES[method]} payout account is not set up yet: finish it first.",
            "method",
        )
    payable = payable_amount(user.id, now)
    if amount is None:
        amount = payable
    elif amount > payable:
        raise PayoutRefused(
            f"You can request at most {format_money(payable, currency)} now.", "amount"
        )
    if amount <= 0:
        raise PayoutRefused("Nothing is available to pay out yet.", "amount")
    minimum = settings.min_payout_amount
    if amount < minimum:
        raise PayoutRefused(
            f"The minimum payout is {format_money(minimum, currency)}; "
            f"{format_money(payable, currency)} is available now.",
            "amount",
        )
    approvals = approvals_required(amount, settings)
    payout = Payout(
        user_id=user.id,
        amount=amount,
        payment_method=method,
        payout_account_id=account.id,
        requested_by=requested_by or user.id,
        status="awaiting_approval" if approvals else "pending",
        approvals_required=approvals,
    )
    db.session.add(payout)
    db.session.flush()
    ledger.append(user.id, "payout", -amount, now, payout_id=payout.id)
    audit.record(
        "payout.requested",
        actor_id=payout.requested_by,
        subject_type="payout",
        subject_id=payout.id,
        ip_hash=ip_hash,
        amount=str(amount),
        method=method,
        status=payout.status,
    )
    db.session.flush()
    if payout.status == "pending" and method == "stripe":
        # A worker sends it once this transaction commits (Lemon Squeezy: an admin settles).
        from app.jobs.payouts import request_send  # the job imports this module

        request_send(payout.id)
    return payout


def start_processing(payout: Payout) -> None:
    """A worker or an admin takes the payout to send it: ``processing``, one more attempt.
    Raises ``InvalidTransition`` unless it was ``pending``. Flushes."""
    # Its status as committed now: another worker or admin may have moved it since.
    db.session.refresh(payout, with_for_update=True)
    payout.transition_to("processing")
    payout.attempts += 1
    db.session.flush()


def complete_payout(
    payout: Payout,
    reference: str,
    *,
    now: datetime | None = None,
    actor_id: str | None = None,
) -> list[str]:
    """The provider paid it: ``completed`` with its unique transaction ``reference``, and the
    commissions its money paid are marked ``paid`` and linked to it. Returns their ids.

    Commissions are taken oldest payable first, whole, while their running total fits in
    the money paid out and not yet matched to a paid commission (all completed payouts
    less what paid commissions kept after clawbacks): a partial payout, or one netted
    against money owed, is matched when later payouts cover the rest. Commissions of sales
    under an open dispute are never marked. Raises ``DuplicateReference`` (the unique index
    refuses it too) or ``InvalidTransition`` unless it was ``processing``. Under the user's
    ledger lock; audited (``payout.completed``); the user is mailed ("payout sent", unless
    they turned payout mails off). Flushes.
    """
    now = now or datetime.now(UTC)
    lock_user_ledger(payout.user_id)
    if db.session.scalar(
        select(Payout.id).where(Payout.transaction_reference == reference, Payout.id != payout.id)
    ):
        raise DuplicateReference(f"Another payout already has the reference {reference!r}.")
    # Its status as committed now: another worker or admin may have moved it since.
    db.session.refresh(payout, with_for_update=True)
    payout.transition_to("completed", now=now)
    payout.transaction_reference = reference
    db.session.flush()
    completed = db.session.scalar(
        select(func.coalesce(func.sum(Payout.amount), 0)).where(
            Payout.user_id == payout.user_id, Payout.status == "completed"
        )
    )
    # What paid commissions kept, from the month rollups (a row per month and tier, not
    # one per commission: the same sum, kept by the same statements as the commissions).
    matched = db.session.scalar(
        select(
            func.coalesce(
                func.sum(CommissionRollupMonth.amount - CommissionRollupMonth.clawed_back), 0
            )
        ).where(
            CommissionRollupMonth.user_id == payout.user_id,
            CommissionRollupMonth.status == "paid",
        )
    )
    unmatched = completed - matched
    candidates = db.session.scalars(
        select(Commission)
        .where(
            Commission.user_id == payout.user_id,
            Commission.status == "pending",
            Commission.payable_at <= now,
            ~_under_open_dispute(),
        )
        .order_by(Commission.payable_at, Commission.created_at, Commission.id)
        .with_for_update()
    )
    paid: list[str] = []
    for commission in candidates:
        if commission.amount > unmatched:
            break
        unmatched -= commission.amount
        commission.transition_to("paid")
        commission.payout_id = payout.id
        paid.append(commission.id)
    audit.record(
        "payout.completed",
        actor_id=actor_id,
        subject_type="payout",
        subject_id=payout.id,
        reference=reference,
        commissions=len(paid),
    )
    mail_payout_outcome(payout)
    db.session.flush()
    return paid


def fail_payout(
    payout: Payout, reason: str, *, now: datetime | None = None, actor_id: str | None = None
) -> None:
    """The payout will not be paid: ``failed`` with ``reason``, and its reserve returns to the
    balance (a ``payout_failure`` entry). No commission was marked paid by it (that happens
    only at completion), so none changes. Raises ``InvalidTransition`` from a final or
    completed payout. Under the user's ledger lock; audited (``payout.failed``); the user is
    mailed ("payout failed", unless they turned payout mails off). Flushes.
    """
    now = now or datetime.now(UTC)
    lock_user_ledger(payout.user_id)
    # Its status as committed now: another worker or admin may have moved it since.
    db.session.refresh(payout, with_for_update=True)
    payout.transition_to("failed", reason=reason, now=now)
    ledger.append(payout.user_id, "payout_failure", payout.amount, now, payout_id=payout.id)
    audit.record(
        "payout.failed",
        actor_id=actor_id,
        subject_type="payout",
        subject_id=payout.id,
        reason=reason,
    )
    mail_payout_outcome(payout)
    db.session.flush()
