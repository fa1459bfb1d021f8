"""Commissions earned by an upline user from a referral, one per tier."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import ID_LENGTH, Base, IdMixin, Money, TimestampMixin
from app.models.transitions import HasStatus, Transitions, sql_in

if TYPE_CHECKING:
    from app.models.referrals import Referral
    from app.models.users import User

COMMISSION_TRANSITIONS = Transitions(
    "commission",
    {
        "pending": frozenset({"paid", "cancelled"}),
        # Money already paid out is clawed back through the ledger, not by un-paying.
        "paid": frozenset(),
        "cancelled": frozenset(),
    },
)


class Commission(HasStatus, IdMixin, TimestampMixin, Base):
    TRANSITIONS = COMMISSION_TRANSITIONS
    __tablename__ = "commissions"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="RESTRICT")
    )
    referral_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("referrals.id", ondelete="RESTRICT")
    )
    amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    tier: Mapped[int] = mapped_column(default=1, server_default="1")

    user: Mapped[User] = relationship(back_populates="commissions")
    referral: Mapped[Referral] = relationship(back_populates="commissions")

    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        CheckConstraint(f"status IN ({sql_in(COMMISSION_TRANSITIONS.statuses)})", name="status"),
        CheckConstraint("tier >= 1", name="tier_positive"),
        Index("ix_commissions_user_id", user_id),
        Index("ix_commissions_status", status),
    )
