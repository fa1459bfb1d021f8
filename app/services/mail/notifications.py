"""Mails about one event, queued in the event's transaction: a payout completed or failed,
a fraud flag decided. Each is queued only if its user wants the category
(``preferences.wants_mail``); the daily digests are in ``digests.py``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.models import Commission, OutboxMail, Payout, ReferralFlag, User
from app.services.mail.outbox import queue_mail
from app.services.mail.preferences import wants_mail
from app.services.program.program import get_settings


def queue_if_wanted(
    user: User, kind: str, context: Mapping[str, Any], category: str
) -> OutboxMail | None:
    """``queue_mail`` to ``user`` unless they turned ``category`` off (then ``None``)."""
    if not wants_mail(user.id, category):
        return None
    return queue_mail(user, kind, context=context, category=category)


def mail_payout_outcome(payout: Payout) -> OutboxMail | None:
    """ "Payout sent" for a completed payout, "payout failed" for a failed one. Called by
    ``complete_payout`` and ``fail_payout`` in the transaction of the transition, which
    happens once per payout (the status table has no way back), so each payout gets at most
    one mail per outcome, whatever retries led there. Flushes only."""
    # Imported here: the payouts module calls this one.
    from app.services.payouts.payouts import METHOD_NAMES

    kind = {"completed": "payout_sent", "failed": "payout_failed"}[payout.status]
    context = {
        "payout": payout,
        "currency": get_settings().currency,
        "method": METHOD_NAMES[payout.payment_method],
    }
    return queue_if_wanted(db.session.get(User, payout.user_id), kind, context, "payouts")


def mail_flag_decided(flag: ReferralFlag, changed: Iterable[Commission]) -> list[OutboxMail]:
    """Tell each affiliate whose held commissions the decision released or cancelled (their
    own commissions and total), and the flag's referrer in any case, what an admin decided
    on ``flag`` and what it means for the money. Called by ``resolve_flag`` in its
    transaction; a flag is decided once, so each gets one mail. Flushes only."""
    by_user: dict[str, list[Commission]] = {flag.referrer_id: []}
    for commission in changed:
        by_user.setdefault(commission.user_id, []).append(commission)
    users = db.session.scalars(select(User).where(User.id.in_(list(by_user))).order_by(User.id))
    buyer = db.session.get(User, flag.referred_user_id)
    mails = []
    for user in users:
        commissions = by_user[user.id]
        context = {
            "flag": flag,
            "buyer": buyer,
            "commissions": commissions,
            "total": sum((c.amount for c in commissions), Decimal(0)),
            "currency": get_settings().currency,
        }
        mail = queue_if_wanted(user, "flag_decided", context, "flags")
        if mail is not None:
            mails.append(mail)
    return mails
