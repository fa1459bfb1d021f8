"""Mail preferences: the categories a user turned off (``mail_opt_outs``). Account mails are
always sent; every other category is sent unless its row is there."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from app.extensions import db
from app.models import OPTIONAL_CATEGORIES, MailOptOut, User
from app.models.outbox import ACCOUNT_CATEGORY
from app.services.ops import audit

# What each category holds, in the words of the account page and the unsubscribe page.
CATEGORY_NAMES = {
    "network": "New referrals",
    "earnings": "Commissions earned",
    "payouts": "Payouts sent or failed",
    "flags": "Review decisions",
}
CATEGORY_HINTS = {
    "network": "At most one mail a day listing who joined with your link.",
    "earnings": "A daily summary of new commissions; none on days without any.",
    "payouts": "When a payout reaches you, or fails and its money returns to your balance.",
    "flags": "When an admin decides on a flagged sale or sign-up that holds your commissions.",
}


def opted_out(user_id: str) -> set[str]:
    """The categories ``user_id`` turned off. Read-only."""
    return set(db.session.scalars(select(MailOptOut.category).where(MailOptOut.user_id == user_id)))


def wants_mail(user_id: str, category: str) -> bool:
    """Whether mails of ``category`` may be queued for ``user_id`` (account mails: always)."""
    if category == ACCOUNT_CATEGORY:
        return True
    return category not in opted_out(user_id)


def set_preferences(user: User, wanted: Iterable[str], ip_hash: str | None) -> bool:
    """Turn on exactly the optional categories in ``wanted`` (unknown names are ignored) and
    off the others. Audited when something changed; returns whether it did. Flushes only."""
    wanted = set(wanted) & OPTIONAL_CATEGORIES
    before = opted_out(user.id)
    after = OPTIONAL_CATEGORIES - wanted
    if before == after:
        return False
    db.session.execute(
        delete(MailOptOut).where(
            MailOptOut.user_id == user.id, MailOptOut.category.in_(before - after)
        )
    )
    for category in sorted(after - before):
        _insert_opt_out(user.id, category)
    audit.record_own(
        "user.mail_preferences_changed",
        user.id,
        ip_hash,
        turned_off=sorted(after - before),
        turned_on=sorted(before - after),
    )
    db.session.flush()
    return True


def opt_out(user: User, category: str, ip_hash: str | None, *, via: str) -> bool:
    """Turn ``category`` off for ``user`` (an unsubscribe link: ``via`` says which way it was
    used). Idempotent: False when it was off already. Audited when it changed. Flushes only."""
    if category not in OPTIONAL_CATEGORIES:
        raise ValueError(f"{category!r} cannot be turned off")
    changed = _insert_opt_out(user.id, category)
    if changed:
        audit.record_own("user.mail_unsubscribed", user.id, ip_hash, category=category, via=via)
    db.session.flush()
    return changed


def _insert_opt_out(user_id: str, category: str) -> bool:
    inserted = db.session.execute(
        insert(MailOptOut)
        .values(user_id=user_id, category=category)
        .on_conflict_do_nothing()
        .returning(MailOptOut.category)
    ).scalar_one_or_none()
    return inserted is not None
