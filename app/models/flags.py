"""Fraud signals on a referral, for admins to review. They hold commissions, not sign-ups."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID_LENGTH, Base, IdMixin, TimestampMixin
from app.models.transitions import HasStatus, Transitions, sql_in

# self_purchase: a payment by an upline earner's own address or customer (one flag per sale);
# the others are signals at registration (one per buyer and reason).
FLAG_REASONS = frozenset({"email_alias", "same_ip", "self_purchase"})
FLAG_TRANSITIONS = Transitions(
    "referral flag",
    {
        "open": frozenset({"cleared", "confirmed"}),
        "cleared": frozenset(),
        "confirmed": frozenset(),
    },
)


class ReferralFlag(HasStatus, IdMixin, TimestampMixin, Base):
    TRANSITIONS = FLAG_TRANSITIONS
    __tablename__ = "referral_flags"

    referred_user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE")
    )
    referrer_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE")
    )
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    resolved_by: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="SET NULL")
    )
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sale_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("sales.id", ondelete="CASCADE")
    )

    __table_args__ = (
        CheckConstraint(f"reason IN ({sql_in(FLAG_REASONS)})", name="reason"),
        CheckConstraint(f"status IN ({sql_in(FLAG_TRANSITIONS.statuses)})", name="status"),
        Index(
            "uq_referral_flags_user_reason",
            "referred_user_id",
            "reason",
            unique=True,
            postgresql_where=text("sale_id IS NULL"),
        ),
        Index(
            "uq_referral_flags_sale_reason",
            "sale_id",
            "reason",
            unique=True,
            postgresql_where=text("sale_id IS NOT NULL"),
        ),
        CheckConstraint(
            "(reason = 'self_purchase') = (sale_id IS NOT NULL)", name="sale_for_self_purchase"
        ),
        Index("ix_referral_flags_open", "status", postgresql_where="status = 'open'"),
    )
