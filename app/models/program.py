"""Program configuration: the MLM tier table and the single settings row."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, String, Text, false, true
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, IdMixin, Money, Rate, TimestampMixin
from app.models.transitions import sql_in

PAYOUT_FREQUENCIES = frozenset({"daily", "weekly", "monthly"})
# What a commission's rate applies to: the sale net of tax, or the total the buyer paid.
COMMISSION_BASES = frozenset({"excluding_tax", "including_tax"})


class MLMTier(IdMixin, TimestampMixin, Base):
    __tablename__ = "mlm_tiers"

    level: Mapped[int] = mapped_column(unique=True)
    commission_rate: Mapped[Decimal] = mapped_column(Rate)
    description: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    __table_args__ = (
        CheckConstraint("level >= 1", name="level_positive"),
        CheckConstraint("commission_rate >= 0 AND commission_rate <= 1", name="rate_fraction"),
    )


class ReferralProgramSettings(IdMixin, TimestampMixin, Base):
    """Exactly one row: ``singleton`` is unique and always true, and a trigger refuses DELETE."""

    __tablename__ = "referral_program_settings"

    singleton: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=true(), unique=True
    )
    max_tier_level: Mapped[int] = mapped_column(default=3, server_default="3")
    min_payout_amount: Mapped[Decimal] = mapped_column(Money)
    payout_frequency: Mapped[str] = mapped_column(String(16))
    is_mlm_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    default_commission_rate: Mapped[Decimal] = mapped_column(Rate)
    attribution_window_days: Mapped[int] = mapped_column(default=30, server_default="30")
    allow_direct_signups: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Commissions are in this currency; sales in another are stored and flagged, not converted.
    currency: Mapped[str] = mapped_column(String(3), default="USD", server_default="USD")
    # Days a buyer may ask for a refund, and days a commission waits before it can be paid
    # out (never shorter than the refund window, so refunds land before payouts).
    refund_window_days: Mapped[int] = mapped_column(default=30, server_default="30")
    hold_days: Mapped[int] = mapped_column(default=30, server_default="30")
    # How many payments of one subscription earn commissions; None: all of them.
    max_recurring_payments: Mapped[int | None] = mapped_column()
    commission_base: Mapped[str] = mapped_column(
        String(16), default="excluding_tax", server_default="excluding_tax"
    )
    # New payouts wait for an admin's approval; above ``dual_approval_above`` (when set) for
    # two different admins' (maker-checker).
    payouts_need_approval: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    dual_approval_above: Mapped[Decimal | None] = mapped_column(Money)
    # The most the active tiers may pay on one sale together; the tier editor refuses more.
    max_total_tier_rate: Mapped[Decimal] = mapped_column(
        Rate, default=Decimal("0.5"), server_default="0.5"
    )

    __table_args__ = (
        CheckConstraint("singleton", name="singleton"),
        CheckConstraint("max_tier_level >= 1", name="max_tier_positive"),
        CheckConstraint("min_payout_amount >= 0", name="min_payout_non_negative"),
        CheckConstraint(
            f"payout_frequency IN ({sql_in(PAYOUT_FREQUENCIES)})", name="payout_frequency"
        ),
        CheckConstraint(
            "default_commission_rate >= 0 AND default_commission_rate <= 1",
            name="default_rate_fraction",
        ),
        CheckConstraint(
            "attribution_window_days BETWEEN 1 AND 365", name="attribution_window_range"
        ),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_code"),
        CheckConstraint("refund_window_days BETWEEN 0 AND 365", name="refund_window_range"),
        CheckConstraint("hold_days BETWEEN refund_window_days AND 365", name="hold_covers_refunds"),
        CheckConstraint(
            "max_recurring_payments IS NULL OR max_recurring_payments >= 1",
            name="max_recurring_positive",
        ),
        CheckConstraint(
            "dual_approval_above IS NULL OR dual_approval_above >= 0",
            name="dual_approval_non_negative",
        ),
        CheckConstraint(f"commission_base IN ({sql_in(COMMISSION_BASES)})", name="commission_base"),
        CheckConstraint(
            "max_total_tier_rate >= 0 AND max_total_tier_rate <= 1",
            name="total_tier_rate_fraction",
        ),
    )
