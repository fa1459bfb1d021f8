"""The referral chain: one row per (referred user, upline tier), up to the max tier."""

from __future__ import annotations

from sqlalchemy import text

from app.extensions import db
from app.services.program.program import get_settings

_CHAIN = text(
    """
    INSERT INTO referrals (id, referrer_id, referred_user_id, tier, status)
    SELECT new_id(), CAST(:referrer_id AS varchar), CAST(:user_id AS varchar), 1, 'pending'
    UNION ALL
    SELECT new_id(), referrer_id, CAST(:user_id AS varchar), tier + 1, 'pending'
    FROM referrals
    WHERE referred_user_id = :referrer_id
      AND tier < (SELECT max_tier_level FROM referral_program_settings)
    """
)
_BACKFILL_TIER = text(
    """
    INSERT INTO referrals (id, referrer_id, referred_user_id, tier, status)
    SELECT new_id(), up.referrer_id, r.referred_user_id, r.tier + 1, 'pending'
    FROM referrals r
    JOIN referrals up ON up.referred_user_id = r.referrer_id AND up.tier = 1
    WHERE r.tier = :tier
    ON CONFLICT (referred_user_id, tier) DO NOTHING
    """
)


def write_referral_chain(user_id: str, referrer_id: str) -> None:
    """Tier 1 for the direct referrer, tier n+1 for each of the referrer's tier-n ancestors.

    One ``INSERT ... SELECT`` reading at most max-tier rows: the cost is independent of the
    network's size. Cycles cannot arise: a new user can only point at an existing user, and
    the database refuses any later change of ``referred_by``.
    """
    if user_id == referrer_id:
        raise ValueError("a user cannot refer themselves")
    db.session.connection().execute(_CHAIN, {"user_id": user_id, "referrer_id": referrer_id})


def backfill_referral_tiers() -> int:
    """Add the referral rows missing below the current max tier, set-based, tier by tier.

    Idempotent (``ON CONFLICT DO NOTHING`` on the unique (user, tier)); safe to run twice or
    concurrently. Rows of tiers above the max tier are kept: commissions stop at the max tier
    anyway, and lowering then raising the max again needs no rewrite. Returns rows added.
    """
    added = 0
    for tier in range(1, get_settings().max_tier_level):
        added += db.session.execute(_BACKFILL_TIER, {"tier": tier}).rowcount
    return added


_UPLINE = text(
    """
    WITH RECURSIVE up AS (
        SELECT u.id, u.username, u.referred_by, 1 AS tier
        FROM users u WHERE u.id = (SELECT referred_by FROM users WHERE id = :user_id)
        UNION ALL
        SELECT u.id, u.username, u.referred_by, up.tier + 1
        FROM users u JOIN up ON u.id = up.referred_by
        WHERE up.tier < :limit
    )
    SELECT id, username, tier FROM up ORDER BY tier
    """
)


def upline_path(user_id: str, limit: int = 100) -> list[tuple[str, str, int]]:
    """The user's upline by ``referred_by``, nearest first: (id, username, tier), at most
    ``limit`` levels (beyond the max tier too: the whole way to the top, as far as any
    real network goes)."""
    rows = db.session.execute(_UPLINE, {"user_id": user_id, "limit": limit})
    return [(row.id, row.username, row.tier) for row in rows]
