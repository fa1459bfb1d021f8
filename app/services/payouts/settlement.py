"""Lemon Squeezy payouts are paid by an admin outside the app: the CSV of those waiting (with
the payee details, decrypted only into that download) and marking one completed with the
transfer's reference. (Marking one failed is ``approvals.reject``.)"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.csv_stream import stream_csv
from app.extensions import db
from app.models import Payout, User
from app.money import quantize
from app.services.ops import audit
from app.services.payouts.approvals import ActionRefused, lock_payout, refuse_own
from app.services.payouts.payout_accounts import LEMON_SQUEEZY, payee_details
from app.services.payouts.payouts import (
    DuplicateReference,
    complete_payout,
    lock_user_ledger,
    start_processing,
)

MAX_REFERENCE_LENGTH = 255
CSV_COLUMNS = (
    "payout_id",
    "requested_at",
    "username",
    "amount",
    "currency",
    "payee_name",
    "payee_email",
    "iban",
    "paypal_email",
)
UNREADABLE = "(unreadable: the key for these details is missing)"


def mark_completed(
    payout: Payout, reference: str, admin: User, *, now: datetime | None = None
) -> list[str]:
    """An admin paid this Lemon Squeezy payout: ``pending`` → ``processing`` → ``completed``
    with the transfer's ``reference`` (unique across payouts), in this transaction, through
    ``start_processing`` and ``complete_payout`` (which marks the commissions paid and
    audits). Raises ``ActionRefused`` unless it is a pending Lemon Squeezy payout, or
    ``DuplicateReference``. Flushes."""
    reference = (reference or "").strip()
    if not reference:
        raise ActionRefused("Enter the transaction reference of the transfer you made.")
    if len(reference) > MAX_REFERENCE_LENGTH:
        raise ActionRefused(f"A reference has at most {MAX_REFERENCE_LENGTH} characters.")
    lock_user_ledger(payout.user_id)
    payout = lock_payout(payout)
    refuse_own(payout, admin)
    if payout.payment_method != LEMON_SQUEEZY:
        raise ActionRefused("Only Lemon Squeezy payouts are settled by hand.")
    if payout.status != "pending":
        status = payout.status.replace("_", " ")
        raise ActionRefused(f"This payout is {status}, not waiting to be paid.")
    try:
        # Another user's payout may take the same reference at the same moment: the unique
        # index decides, and the savepoint keeps the request usable for the message.
        with db.session.begin_nested():
            start_processing(payout)
            return complete_payout(
                payout, reference, now=now or datetime.now(UTC), actor_id=admin.id
            )
    except IntegrityError as exc:
        raise DuplicateReference(
            f"Another payout already has the reference {reference!r}."
        ) from exc


def waiting_lemon_squeezy() -> list[tuple[Payout, str]]:
    """Lemon Squeezy payouts waiting for an admin to pay them, oldest first, with usernames."""
    return list(
        db.session.execute(
            select(Payout, User.username)
            .join(User, User.id == Payout.user_id)
            .where(Payout.payment_method == LEMON_SQUEEZY, Payout.status == "pending")
            .order_by(Payout.created_at, Payout.id)
        ).all()
    )


def settlement_csv(admin: User, currency: str, *, ip_hash: str | None = None) -> str:
    """The CSV of waiting Lemon Squeezy payouts with their payee details in clear (the only
    place they are decrypted for an admin), every cell formula-safe. Audited
    (``payout.settlement_exported``: who, and which payouts; never the details)."""
    rows = waiting_lemon_squeezy()
    lines: list[list[object]] = [list(CSV_COLUMNS)]
    for payout, username in rows:
        details = payee_details(payout.user_id)
        payee = (
            [details.name, details.email, details.iban or "", details.paypal_email or ""]
            if details
            else [UNREADABLE, "", "", ""]
        )
        amount = quantize(payout.amount, currency)
        lines.append([payout.id, payout.created_at.isoformat(), username, amount, currency, *payee])
    audit.record(
        "payout.settlement_exported",
        actor_id=admin.id,
        subject_type="payout_export",
        ip_hash=ip_hash,
        payouts=[payout.id for payout, _ in rows],
    )
    db.session.flush()
    return "".join(stream_csv(lines))
