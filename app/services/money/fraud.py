"""Fraud signals at registration and on payments: recorded for admins, never a silent
block; and the admins' decisions on them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY, VARCHAR, insert
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import REFERRAL_TRANSITIONS, Referral, ReferralFlag, User
from app.models.base import new_id
from app.money import minor_units
from app.services.accounts.emails import normalize_email
from app.services.mail.notifications import mail_flag_decided
from app.services.money.commissions import (
    EARNING_TERMS,
    cancel_held,
    release_held,
    stop_accruals,
)
from app.services.ops import audit
from app.services.program.program import get_settings

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


# Each earning upline of each sale about to accrue, with what the payment says of its payer.
_SELF_PURCHASE_CANDIDATES = text(
    "WITH"  # noqa: S608 (constant SQL put together, no input)
    + EARNING_TERMS
    + """
    SELECT s.id AS sale_id, s.buyer_id, s.payer_email, e.referrer_id, u.email AS earner_email,
           EXISTS (SELECT 1 FROM customer_links c
                   WHERE c.provider = s.provider AND c.customer_id = s.customer_id
                     AND c.user_id = e.referrer_id) AS is_earners_customer
    FROM earning e
    JOIN sales s ON s.id = e.sale_id
    JOIN users u ON u.id = e.referrer_id
    WHERE s.payer_email IS NOT NULL OR s.customer_id IS NOT NULL
    ORDER BY s.id, e.tier
    """
).bindparams(bindparam("sale_ids", type_=ARRAY(VARCHAR)))


def flag_self_purchases(sale_ids: list[str]) -> list[ReferralFlag]:
    """Flag each sale, not accrued yet, that an upline earner of its buyer paid for: the
    payer's address is the earner's mailbox (``canonical_email``), or the provider's
    customer is linked to the earner. The buyer may be a sock puppet the earner created to
    earn on their own purchase; buyer ids in checkouts can be set by the buyer.

    One open ``self_purchase`` flag per sale (unique), so accrual holds that sale's
    commissions until an admin decides; audited. Call it before accruing (``settle_sales``
    does, under the accruals lock). Idempotent; flushes only."""
    if not sale_ids:
        return []
    params = {"sale_ids": list(sale_ids), "minor": minor_units(get_settings().currency)}
    candidates = db.session.execute(_SELF_PURCHASE_CANDIDATES, params)
    created: dict[str, ReferralFlag] = {}
    for row in candidates:
        by_email = row.payer_email is not None and canonical_email(
            row.payer_email
        ) == canonical_email(row.earner_email)
        if row.sale_id in created or not (by_email or row.is_earners_customer):
            continue
        flagged = db.session.execute(
            insert(ReferralFlag)
            .values(
                id=new_id(),
                referred_user_id=row.buyer_id,
                referrer_id=row.referrer_id,
                sale_id=row.sale_id,
                reason="self_purchase",
                detail="paid with the earner's email address"
                if by_email
                else "paid by the earner's customer account",
            )
            .on_conflict_do_nothing(
                index_elements=["sale_id", "reason"], index_where=text("sale_id IS NOT NULL")
            )
            .returning(ReferralFlag.id)
        ).scalar_one_or_none()
        if flagged:
            created[row.sale_id] = db.session.get(ReferralFlag, flagged)
            audit.record(
                "referral.flagged",
                subject_type="user",
                subject_id=row.buyer_id,
                reason="self_purchase",
                referrer_id=row.referrer_id,
                sale_id=row.sale_id,
            )
    return list(created.values())


class FlagAlreadyResolved(ValueError):
    pass


def resolve_flag(flag: ReferralFlag, decision: str, admin: User) -> None:
    """An admin's decision on an open flag, audited. ``cleared``: the buyer's held
    commissions are released. ``confirmed``: they are cancelled and the buyer's referral
    rows cancelled, so later sales earn nobody anything. The affiliates whose commissions
    changed, and the flag's referrer, are mailed the decision (``mail_flag_decided``).
    Locks the flag; flushes only."""
    stop_accruals()  # no batch is accruing held commissions for this buyer meanwhile
    db.session.refresh(flag, with_for_update=True)
    if flag.status != "open":
        raise FlagAlreadyResolved(f"This flag was already {flag.status}.")
    flag.transition_to(decision)
    flag.resolved_by = admin.id
    flag.resolved_at = datetime.now(UTC)
    if decision == "confirmed":
        changed = cancel_held(flag)
        for referral in db.session.scalars(
            select(Referral).where(
                Referral.referred_user_id == flag.referred_user_id,
                Referral.status.in_(REFERRAL_TRANSITIONS.sources_of("cancelled")),
            )
        ):
            referral.transition_to("cancelled")
    else:
        changed = release_held(flag)
    audit.record(
        f"flag.{decision}",
        actor_id=admin.id,
        subject_type="user",
        subject_id=flag.referred_user_id,
        reason=flag.reason,
        commissions=len(changed),
    )
    mail_flag_decided(flag, changed)


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


def flags_about(user_id: str, limit: int = 100) -> list[tuple[ReferralFlag, str, str]]:
    """Every flag where the user is the buyer or the referrer, open ones first, then the
    newest; with the buyer's and the referrer's usernames."""
    buyer, referrer = aliased(User), aliased(User)
    rows = db.session.execute(
        select(ReferralFlag, buyer.username, referrer.username)
        .join(buyer, buyer.id == ReferralFlag.referred_user_id)
        .join(referrer, referrer.id == ReferralFlag.referrer_id)
        .where(or_(ReferralFlag.referred_user_id == user_id, ReferralFlag.referrer_id == user_id))
        .order_by((ReferralFlag.status == "open").desc(), ReferralFlag.created_at.desc())
        .limit(limit)
    )
    return [tuple(row) for row in rows]
