"""Numbers about an affiliate's link and network, for the dashboard and the link page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, text

from app.extensions import db
from app.models import DownlineCount, Referral, User
from app.money import ratio
from app.services.program.program import get_settings

STAT_PERIODS = (7, 30, 90)


@dataclass(frozen=True)
class LinkStats:
    days: int
    visitors: int  # unique visitors through the link in the period
    signups: int  # tier-1 sign-ups in the period, through a visit or a typed code
    paying: int  # of those sign-ups, the ones who bought
    signed_up_visitors: int  # of the visitors, the ones who signed up in the period

    @property
    def signup_rate(self) -> Decimal | None:
        """Visitors who signed up ÷ visitors: one population, so never above 1."""
        return ratio(self.signed_up_visitors, self.visitors)

    @property
    def paying_rate(self) -> Decimal | None:
        return ratio(self.paying, self.signups)


# A visitor is the keyed hash of their IP (``referral_clicks.visitor_hash``); a sign-up keeps
# the same hash (``users.signup_ip_hash``). Both sides are the period's rows only, read
# through the (referrer_id, clicked_on, visitor_hash) and (referrer_id, created_at) indexes:
# the cost follows the period's traffic, never the affiliate's history.
_LINK_STATS = text(
    """
    WITH visitors AS (
        SELECT DISTINCT visitor_hash FROM referral_clicks
        WHERE referrer_id = :user_id AND clicked_on > :since_day
    ), signups AS (
        SELECT u.signup_ip_hash, r.status FROM referrals r JOIN users u ON u.id = r.referred_user_id
        WHERE r.referrer_id = :user_id AND r.tier = 1 AND r.created_at >= :since
    )
    SELECT (SELECT count(*) FROM visitors),
           (SELECT count(*) FROM signups),
           (SELECT count(*) FROM signups WHERE status = 'completed'),
           (SELECT count(*) FROM visitors v
            WHERE EXISTS (SELECT 1 FROM signups s WHERE s.signup_ip_hash = v.visitor_hash))
    """
)


def link_stats(user_id: str, days: int) -> LinkStats:
    """Unique visitors, sign-ups and paying sign-ups through the link in the last ``days``,
    and how many of those visitors signed up (one visitor signing up twice counts once)."""
    since = datetime.now(UTC) - timedelta(days=days)
    visitors, signups, paying, signed_up = db.session.execute(
        _LINK_STATS, {"user_id": user_id, "since_day": since.date(), "since": since}
    ).one()
    return LinkStats(days, visitors, signups, paying, signed_up)


@dataclass(frozen=True)
class NetworkSummary:
    direct: int
    network: int
    max_tier: int
    recent: list[tuple[User, int]]


def network_summary(user_id: str, recent_limit: int = 10) -> NetworkSummary:
    """Direct referrals, network size within the max tier (precomputed counts), and the
    latest sign-ups in it."""
    max_tier = get_settings().max_tier_level
    direct, network = db.session.execute(
        select(
            func.coalesce(func.sum(DownlineCount.members).filter(DownlineCount.depth == 1), 0),
            func.coalesce(func.sum(DownlineCount.members), 0),
        ).where(DownlineCount.user_id == user_id, DownlineCount.depth <= max_tier)
    ).one()
    recent = db.session.execute(
        select(User, Referral.tier)
        .join(Referral, Referral.referred_user_id == User.id)
        .where(Referral.referrer_id == user_id, Referral.tier <= max_tier)
        .order_by(Referral.created_at.desc())
        .limit(recent_limit)
    ).all()
    return NetworkSummary(
        direct=direct, network=network, max_tier=max_tier, recent=[tuple(r) for r in recent]
    )
