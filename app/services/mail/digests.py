"""The daily digests: "new referrals" (tier 1 only) and "commissions earned".

Triggers write a notice (``mail_notices``) in the transaction of each event: a user who
joined with someone's link goes to their direct referrer (``users.referred_by``, so never a
deeper upline), a commission to its earner. The daily job turns each user's waiting notices
of a kind into one mail and deletes them.

At most one digest per user, kind and UTC day: the job claims the day by inserting
``mail_digests (user_id, kind, day)`` (``ON CONFLICT DO NOTHING``, so a second run or a
second worker finds it taken) before it takes the notices (``DELETE … RETURNING``: each is
told once). Notices that arrive after a user's digest of the day wait for the next day's.
A user who turned the category off gets no mail; their notices are dropped, so turning it
back on does not bring an old backlog.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import delete, exists, literal, select, update
from sqlalchemy.dialects.postgresql import insert

from app.extensions import db
from app.models import DIGEST_CATEGORIES, Commission, MailDigest, MailNotice, MailOptOut, Sale, User
from app.services.mail.outbox import queue_mail
from app.services.program.program import get_settings

BATCH = 500  # users per transaction


def today() -> date:
    return datetime.now(UTC).date()


def drop_unwanted(kind: str) -> int:
    """Delete the waiting notices of ``kind`` whose user turned its category off; how many.
    Flushes only."""
    opted_out = exists().where(
        MailOptOut.user_id == MailNotice.user_id,
        MailOptOut.category == DIGEST_CATEGORIES[kind],
    )
    return db.session.execute(delete(MailNotice).where(MailNotice.kind == kind, opted_out)).rowcount


def send_digest_batch(kind: str, day: date, limit: int = BATCH) -> int:
    """Queue the ``kind`` digest of ``day`` for up to ``limit`` users who have notices waiting
    and no such digest that day yet; returns for how many users it claimed the day (0: done).
    Users who turned the category off are skipped (``drop_unwanted`` clears their notices).
    Safe to run twice or concurrently: the day's row is the claim. Flushes only; the caller
    commits each batch."""
    category = DIGEST_CATEGORIES[kind]
    sent_today = exists().where(
        MailDigest.user_id == MailNotice.user_id, MailDigest.kind == kind, MailDigest.day == day
    )
    opted_out = exists().where(
        MailOptOut.user_id == MailNotice.user_id, MailOptOut.category == category
    )
    waiting = (
        select(MailNotice.user_id, MailNotice.kind, literal(day))
        .where(MailNotice.kind == kind, ~sent_today, ~opted_out)
        .group_by(MailNotice.user_id, MailNotice.kind)
        .order_by(MailNotice.user_id)
        .limit(limit)
    )
    claimed = list(
        db.session.scalars(
            insert(MailDigest)
            .from_select(["user_id", "kind", "day"], waiting)
            .on_conflict_do_nothing()
            .returning(MailDigest.user_id)
        )
    )
    if not claimed:
        return 0
    taken = db.session.execute(
        delete(MailNotice)
        .where(MailNotice.kind == kind, MailNotice.user_id.in_(claimed))
        .returning(MailNotice.user_id, MailNotice.referred_user_id, MailNotice.commission_id)
    ).all()
    subjects: dict[str, list[str]] = defaultdict(list)
    for user_id, referred_user_id, commission_id in taken:
        subjects[user_id].append(referred_user_id or commission_id)
    items = _referrals if kind == "referral_joined" else _commissions
    currency = get_settings().currency
    for user in db.session.scalars(select(User).where(User.id.in_(claimed)).order_by(User.id)):
        rows = items(user.id, subjects[user.id])
        if not rows:  # what the notices named is gone: nothing to tell
            continue
        context = {"rows": rows, "currency": currency, "now": datetime.now(UTC)}
        if kind == "commission_earned":
            context["total"] = sum((row.Commission.amount for row in rows), Decimal(0))
        mail = queue_mail(user, kind, context=context, category=category)
        db.session.execute(
            update(MailDigest)
            .where(MailDigest.user_id == user.id, MailDigest.kind == kind, MailDigest.day == day)
            .values(mail_id=mail.id)
        )
    db.session.flush()
    return len(claimed)


def _referrals(user_id: str, ids: list[str]) -> list:
    """The users who joined with ``user_id``'s link among ``ids``, in joining order."""
    return list(
        db.session.execute(
            select(User.username, User.created_at)
            .where(User.id.in_(ids), User.referred_by == user_id)
            .order_by(User.created_at, User.id)
        )
    )


def _commissions(user_id: str, ids: list[str]) -> list:
    """``user_id``'s commissions among ``ids`` with their sale's date, oldest sale first."""
    return list(
        db.session.execute(
            select(Commission, Sale.occurred_at)
            .join(Sale, Sale.id == Commission.sale_id)
            .where(Commission.id.in_(ids), Commission.user_id == user_id)
            .order_by(Sale.occurred_at, Commission.tier, Commission.id)
        )
    )
