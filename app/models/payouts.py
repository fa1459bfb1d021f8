"""Payouts of earned commissions to an affiliate through a payment provider."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import ID_LENGTH, Base, IdMixin, Money, TimestampMixin
from app.models.transitions import HasStatus, Transitions, sql_in

if TYPE_CHECKING:
    from app.models.users import User

PAYOUT_TRANSITIONS = Transitions(
    "payout",
    {
        "pending": frozenset({"processing", "failed"}),
        "processing": frozenset({"completed", "failed"}),
        "completed": frozenset(),
        "failed": frozenset(),
    },
)
PAYMENT_METHODS = frozenset({"stripe", "lemon_squeezy"})


class Payout(HasStatus, IdMixin, TimestampMixin, Base):
    TRANSITIONS = PAYOUT_TRANSITIONS
    __tablename__ = "payouts"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="RESTRICT")
    )
    amount: Mapped[Decimal] = mapped_column(Money)
    payment_method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    transaction_reference: Mapped[str | None] = mapped_column(String(255))

    user: Mapped[User] = relationship(back_populates="payouts")

    __table_args__ = (
        # The minimum threshold is a setting that changes; the app checks it at request time.
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"payment_method IN ({sql_in(PAYMENT_METHODS)})", name="payment_method"),
        CheckConstraint(f"status IN ({sql_in(PAYOUT_TRANSITIONS.statuses)})", name="status"),
        Index("ix_payouts_user_id", user_id),
        Index("ix_payouts_status", status),
        Index(
            "uq_payouts_transaction_reference",
            "transaction_reference",
            unique=True,
            postgresql_where=text("transaction_reference IS NOT NULL"),
        ),
    )
