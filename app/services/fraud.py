"""Fraud signals at registration: recorded for admins, never a silent block; and the
admins' decisions on them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import REFERRAL_TRANSITIONS, Referral, ReferralFlag, User
from app.services import audit
from app.services.commissions import cancel_held, release_held, serialize_accruals
from app.services.emails import normalize_email

SAME_IP_WINDOW = timedelta(hours=24)
_DOTLESS_DOMAINS = {"gmail.com", "googlemail.com"}


def canonical_email(email: str) -> str:
    """The mailbox an address delivers to: normalized (``normalize_email``: an IDN domain and
    its punycode are one), case folded, ``+tag`` dropped, Gmail dots removed."""
    local, _, domain = (normalize_email(email) or email.strip()).lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in _DOTLESS_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def flag_suspicious_referral(user: User, referrer: User, ip_hash: str) -> list[ReferralFlag]:
    """Flag the new referral when it looks like the referrer signing themselves up.

    Signals: the same mailbox as the referrer under an alias, or the IP that created the
    referrer's account less than 24 hours ago. Each flag is audited. Flushes only.
    """
    flags = []
    if canonical_email(user.email) == canonical_email(referrer.email):
        flags.append(("email_alias", f"{user.email} is an alias of the referrer's address"))
    referrer_age = datetime.now(UTC) - referrer.created_at
    if referrer.signup_ip_hash == ip_hash and referrer_age < SAME_IP_WINDOW:
        flags.append(("same_ip", "signed up from the IP that created the referrer's account"))
    created = []
    for reason, detail in flags:
        flag = ReferralFlag(
            referred_user_id=user.id, referrer_id=referrer.id, reason=reason, detail=detail
        )
        db.session.add(flag)
        created.append(flag)
        audit.record(
            "referral.flagged",
            subject_type="user",
            subject_id=user.id,
            ip_hash=ip_hash,
            reason=reason,
            referrer_id=referrer.id,
        )
    db.session.flush()
    return created


class FlagAlreadyResolved(ValueError):
    pass


def resolve_flag(flag: ReferralFlag, decision: str, admin: User) -> None:
    """An admin's decision on an open flag, audited. ``cleared``: the buyer's held
    commissions are released. ``confirmed``: they are cancelled and the buyer's referral
    rows cancelled, so later sales earn nobody anything. Locks the flag; flushes only."""
    serialize_accruals()  # no batch is accruing held commissions for this buyer meanwhile
    db.session.refresh(flag, with_for_update=True)
    if flag.status != "open":
        raise FlagAlreadyResolved(f"This flag was already {flag.status}.")
    flag.transition_to(decision)
    flag.resolved_by = admin.id
    flag.resolved_at = datetime.now(UTC)
    still_flagged = db.session.scalar(
        select(func.count()).where(
            ReferralFlag.referred_user_id == flag.referred_user_id,
            ReferralFlag.status == "open",
            ReferralFlag.id != flag.id,
        )
    )
    if decision == "confirmed":
        changed = cancel_held(flag.referred_user_id)
        for referral in db.session.scalars(
            select(Referral).where(
                Referral.referred_user_id == flag.referred_user_id,
                Referral.status.in_(REFERRAL_TRANSITIONS.sources_of("cancelled")),
            )
        ):
            referral.transition_to("cancelled")
    else:
        changed = 0 if still_flagged else release_held(flag.referred_user_id)
    audit.record(
        f"flag.{decision}",
        actor_id=admin.id,
        subject_type="user",
        subject_id=flag.referred_user_id,
        reason=flag.reason,
        commissions=changed,
    )


def open_flags(limit: int = 100) -> list[tuple[ReferralFlag, str, str]]:
    """Open flags, oldest first, with the buyer's and the referrer's usernames."""
    buyer, referrer = aliased(User), aliased(User)
    rows = db.session.execute(
        select(ReferralFlag, buyer.username, referrer.username)
        .join(buyer, buyer.id == ReferralFlag.referred_user_id)
        .join(referrer, referrer.id == ReferralFlag.referrer_id)
        .where(ReferralFlag.status == "open")
        .order_by(ReferralFlag.created_at)
        .limit(limit)
    )
    return [tuple(row) for row in rows]
