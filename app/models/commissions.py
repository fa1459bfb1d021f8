"""Commissions: what one upline earns from one sale at one tier, with the terms it used."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import ID_LENGTH, Base, IdMixin, Money, Rate, TimestampMixin
from app.models.transitions import HasStatus, Transitions, sql_in

if TYPE_CHECKING:
    from app.models.referrals import Referral
    from app.models.users import User

COMMISSION_TRANSITIONS = Transitions(
    "commission",
    {
        "pending": frozenset({"paid", "cancelled"}),
        # A flagged referral's commissions wait for an admin: cleared, or cancelled as fraud.
        "held": frozenset({"pending", "cancelled"}),
        # A payout that fails gives its commissions back. Money already paid out is clawed
        # back through the ledger, never by un-paying.
        "paid": frozenset({"pending"}),
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
    sale_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("sales.id", ondelete="RESTRICT")
    )
    # Current amount: rate * (sale amount - refunds), rounded; at most gross_amount. Once
    # paid it stays what was paid, and later refunds are taken back as clawed_back.
    amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    tier: Mapped[int] = mapped_column(default=1, server_default="1")
    # The terms when it accrued, never changed by later rate changes.
    rate: Mapped[Decimal] = mapped_column(Rate)
    base_amount: Mapped[Decimal] = mapped_column(Money)
    # Whether base_amount includes the sale's tax (the program's commission base then;
    # commissions from before the setting existed were all on the total).
    base_includes_tax: Mapped[bool] = mapped_column(Boolean, server_default=true())
    gross_amount: Mapped[Decimal] = mapped_column(Money)
    payable_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Taken back through the ledger after the commission was paid out.
    clawed_back: Mapped[Decimal] = mapped_column(Money, default=0, server_default="0")
    payout_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("payouts.id", ondelete="RESTRICT")
    )
    # Cancelled by an admin (who: the audit log): gone if it was unpaid, clawed back in full
    # if paid; later refunds leave it alone.
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(Text)

    user: Mapped[User] = relationship(back_populates="commissions")
    referral: Mapped[Referral] = relationship(back_populates="commissions")

    __table_args__ = (
        UniqueConstraint("sale_id", "tier", name="uq_commissions_sale_id_tier"),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        CheckConstraint("amount <= gross_amount", name="amount_within_gross"),
        CheckConstraint("clawed_back >= 0 AND clawed_back <= amount", name="clawback_range"),
        CheckConstraint("rate >= 0 AND rate <= 1", name="rate_fraction"),
        CheckConstraint(f"status IN ({sql_in(COMMISSION_TRANSITIONS.statuses)})", name="status"),
        CheckConstraint("tier >= 1", name="tier_positive"),
        # Sale dates end before 2100 and holds are at most a year: a date past this is a bug
        # (and psycopg cannot read years past 9999).
        CheckConstraint("payable_at < '2200-01-01 00:00+00'", name="payable_at_range"),
        CheckConstraint("(status = 'paid') = (payout_id IS NOT NULL)", name="paid_by_payout"),
        # "My commissions": an affiliate's rows newest first, keyset on (created_at, id).
        Index("ix_commissions_user_id_created_at", user_id, "created_at", "id"),
        Index("ix_commissions_status", status),
        Index("ix_commissions_payout_id", payout_id),
        # The what-if simulator's window: commissions payable since its start.
        Index("ix_commissions_payable_at", "payable_at"),
        CheckConstraint(
            "(cancelled_at IS NULL) = (cancel_reason IS NULL)", name="cancel_reason_with_time"
        ),
        CheckConstraint(
            "cancelled_at IS NULL OR status = 'cancelled' OR clawed_back = amount",
            name="cancelled_is_gone",
        ),
        # The admins' list of all commissions, newest first: keyset on (created_at, id).
        Index("ix_commissions_created_at", "created_at", "id"),
    )
