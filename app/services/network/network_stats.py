"""Numbers about an affiliate's link and network, for the dashboard and the link page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.extensions import db
from app.models import DownlineCount, Referral, ReferralClick, User
from app.services.program.program import get_settings

STAT_PERIODS = (7, 30, 90)


@dataclass(frozen=True)
class LinkStats:
    days: int
    clicks: int
    signups: int
    paying: int

    @property
    def signup_rate(self) -> float | None:
        return self.signups / self.clicks if self.clicks else None

    @property
    def paying_rate(self) -> float | None:
        return self.paying / self.signups if self.signups else None


def link_stats(user_id: str, days: int) -> LinkStats:
    """Unique daily visitors, sign-ups and paying sign-ups through the link in the last ``days``."""
    since = datetime.now(UTC) - timedelta(days=days)
    clicks = db.session.scalar(
        select(func.count()).where(
            ReferralClick.referrer_id == user_id,
            ReferralClick.clicked_on > since.date(),
        )
    )
    signups, paying = db.session.execute(
        select(
            func.count(),
            func.count().filter(Referral.status == "completed"),
        ).where(Referral.referrer_id == user_id, Referral.tier == 1, Referral.created_at >= since)
    ).one()
    return LinkStats(days=days, clicks=clicks, signups=signups, paying=paying)


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
