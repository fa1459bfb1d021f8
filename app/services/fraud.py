"""Fraud signals at registration: recorded for admins, never a silent block."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.extensions import db
from app.models import ReferralFlag, User
from app.services import audit

SAME_IP_WINDOW = timedelta(hours=24)
_DOTLESS_DOMAINS = {"gmail.com", "googlemail.com"}


def canonical_email(email: str) -> str:
    """The mailbox an address delivers to: case folded, ``+tag`` dropped, Gmail dots removed."""
    local, _, domain = email.strip().lower().rpartition("@")
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
