"""Clicks on shared referral links: no personal data in clear, one row per visitor per day."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Identity, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID_LENGTH, Base


class ReferralClick(Base):
    __tablename__ = "referral_clicks"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    referrer_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE")
    )
    # HMAC-SHA256 of the visitor's IP with a server secret: countable, not reversible.
    visitor_hash: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(512))
    clicked_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        # A repeat visitor counts once per day; stats read by (referrer, day).
        Index(
            "uq_referral_clicks_daily_visitor",
            "referrer_id",
            "clicked_on",
            "visitor_hash",
            unique=True,
        ),
    )
