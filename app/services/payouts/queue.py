"""What the admin payout queue and a payout's page show: payouts by filter, with their
approvals; one payout's account (masked), approvals and history (from the audit log)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import AuditEntry, Payout, PayoutAccount, PayoutApproval, User
from app.services.payouts.payee_details import MaskedPayee
from app.services.payouts.payout_accounts import payee_status

LISTED = 100


@dataclass(frozen=True)
class QueueFilter:
    """Every field optional: ``user`` is a username prefix or an exact email (any case);
    the dates are inclusive days (UTC) of the request."""

    status: str | None = None
    method: str | None = None
    user: str | None = None
    created_from: date | None = None
    created_to: date | None = None


@dataclass
class QueueRow:
    payout: Payout
    username: str
    approvers: list[str] = field(default_factory=list)  # admin ids, oldest first


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def find_payouts(wanted: QueueFilter, limit: int = LISTED) -> list[QueueRow]:
    """Matching payouts, newest first, at most ``limit``, each with the ids of the admins who
    approved it (one query for all of them)."""
    query = select(Payout, User.username).join(User, User.id == Payout.user_id)
    if wanted.status:
        query = query.where(Payout.status == wanted.status)
    if wanted.method:
        query = query.where(Payout.payment_method == wanted.method)
    if wanted.user and (needle := wanted.user.strip().lower()):
        query = query.where(
            or_(
                func.lower(User.username).startswith(needle, autoescape=True),
                func.lower(User.email) == needle,
            )
        )
    if wanted.created_from:
        query = query.where(Payout.created_at >= _day_start(wanted.created_from))
    # The last representable day has no next day: it bounds nothing.
    if wanted.created_to and wanted.created_to < date.max:
        query = query.where(Payout.created_at < _day_start(wanted.created_to + timedelta(days=1)))
    rows = [
        QueueRow(payout, username)
        for payout, username in db.session.execute(
            query.order_by(Payout.created_at.desc(), Payout.id.desc()).limit(limit)
        ).all()
    ]
    by_id = {row.payout.id: row for row in rows}
    if by_id:
        approvals = db.session.execute(
            select(PayoutApproval.payout_id, PayoutApproval.admin_id)
            .where(PayoutApproval.payout_id.in_(by_id))
            .order_by(PayoutApproval.created_at, PayoutApproval.id)
        )
        for payout_id, admin_id in approvals:
            by_id[payout_id].approvers.append(admin_id)
    return rows


def queue_row(payout_id: str) -> QueueRow | None:
    """One payout as the queue shows it (a row swapped after an action)."""
    payout = db.session.get(Payout, payout_id, populate_existing=True)
    if payout is None:
        return None
    approvers = db.session.scalars(
        select(PayoutApproval.admin_id)
        .where(PayoutApproval.payout_id == payout_id)
        .order_by(PayoutApproval.created_at, PayoutApproval.id)
    )
    return QueueRow(payout, payout.user.username, list(approvers))


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    action: str
    actor: str | None
    details: dict


@dataclass(frozen=True)
class PayoutDetail:
    payout: Payout
    user: User
    requested_by: str | None
    account: str  # masked
    approvals: list[tuple[str, datetime]]  # (admin username, when)
    history: list[HistoryLine]


def _masked_account(payout: Payout) -> str:
    account = (
        db.session.get(PayoutAccount, payout.payout_account_id)
        if payout.payout_account_id
        else None
    )
    if account is None:
        return "none recorded"
    if account.provider == "stripe":
        return f"Stripe account …{account.stripe_account_id[-4:]}"
    status = payee_status(payout.user_id)
    if status.masked is None:
        return "payee details unreadable (a key is missing)" if status.unreadable else "none"
    masked: MaskedPayee = status.masked
    where = masked.iban or masked.paypal_email
    return f"{masked.name}, {masked.email}, {where}"


def payout_detail(payout_id: str) -> PayoutDetail | None:
    """A payout with its account masked, its approvals and its audit history, oldest first."""
    payout = db.session.get(Payout, payout_id)
    if payout is None:
        return None
    admin = aliased(User)
    approvals = db.session.execute(
        select(admin.username, PayoutApproval.created_at)
        .join(admin, admin.id == PayoutApproval.admin_id)
        .where(PayoutApproval.payout_id == payout_id)
        .order_by(PayoutApproval.created_at, PayoutApproval.id)
    ).all()
    actor = aliased(User)
    entries = db.session.execute(
        select(AuditEntry, actor.username)
        .outerjoin(actor, actor.id == AuditEntry.actor_id)
        .where(AuditEntry.subject_type == "payout", AuditEntry.subject_id == payout_id)
        .order_by(AuditEntry.created_at, AuditEntry.id)
    ).all()
    requester = db.session.get(User, payout.requested_by) if payout.requested_by else None
    return PayoutDetail(
        payout=payout,
        user=payout.user,
        requested_by=requester.username if requester else None,
        account=_masked_account(payout),
        approvals=list(approvals),
        history=[HistoryLine(e.created_at, e.action, name, e.details) for e, name in entries],
    )
