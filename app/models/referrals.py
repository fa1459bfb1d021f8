"""Referral rows: one per (referred user, upline tier), written once at registration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import ID_LENGTH, Base, IdMixin, TimestampMixin
from app.models.transitions import HasStatus, Transitions, sql_in

if TYPE_CHECKING:
    from app.models.commissions import Commission
    from app.models.users import User

REFERRAL_TRANSITIONS = Transitions(
    "referral",
    {
        "pending": frozenset({"completed", "cancelled"}),
        # A completed referral can still be cancelled (fraud found after the first sale).
        "completed": frozenset({"cancelled"}),
        "cancelled": frozenset(),
    },
)


class Referral(HasStatus, IdMixin, TimestampMixin, Base):
    TRANSITIONS = REFERRAL_TRANSITIONS
    __tablename__ = "referrals"

    referrer_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="RESTRICT")
    )
    referred_user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="RESTRICT")
    )
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    tier: Mapped[int] = mapped_column(default=1, server_default="1")

    referrer: Mapped[User] = relationship(
        foreign_keys=[referrer_id], back_populates="referrals_given"
    )
    referred_user: Mapped[User] = relationship(
        foreign_keys=[referred_user_id], back_populates="referrals_received"
    )
    commissions: Mapped[list[Commission]] = relationship(back_populates="referral")

    __table_args__ = (
        CheckConstraint("referrer_id <> referred_user_id", name="not_self_referral"),
        CheckConstraint(f"status IN ({sql_in(REFERRAL_TRANSITIONS.statuses)})", name="status"),
        CheckConstraint("tier >= 1", name="tier_positive"),
        # One referrer per user per tier; its leading column also serves lookups by user.
        UniqueConstraint("referred_user_id", "tier", name="uq_referrals_referred_user_id_tier"),
        # A referrer's network, newest first (dashboard) or since a date (link stats).
        Index("ix_referrals_referrer_id_created_at", referrer_id, "created_at"),
        Index("ix_referrals_status", status),
    )
