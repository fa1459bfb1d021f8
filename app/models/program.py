"""Program configuration: the MLM tier table, the single settings row (with the program's
identity) and the published versions of the program terms."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    LargeBinary,
    String,
    Text,
    false,
    func,
    true,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column

from app.models.base import Base, IdMixin, Money, Rate, TimestampMixin
from app.models.transitions import sql_in

PAYOUT_FREQUENCIES = frozenset({"daily", "weekly", "monthly"})
# What a commission's rate applies to: the sale net of tax, or the total the buyer paid.
COMMISSION_BASES = frozenset({"excluding_tax", "including_tax"})
# The program's logo: the only image types accepted, and the most bytes one may have.
LOGO_TYPES = frozenset({"image/png", "image/svg+xml"})
MAX_LOGO_BYTES = 200 * 1024
DEFAULT_PROGRAM_NAME = "Referral program"


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

    # The program's identity as affiliates see it (header, page titles, mails, the landing
    # page of a shared link): app/services/program/identity.py.
    program_name: Mapped[str] = mapped_column(
        String(80), default=DEFAULT_PROGRAM_NAME, server_default=DEFAULT_PROGRAM_NAME
    )
    program_description: Mapped[str | None] = mapped_column(String(500))
    product_name: Mapped[str | None] = mapped_column(String(80))
    product_url: Mapped[str | None] = mapped_column(String(500))
    # Lower-case #rrggbb; None: the stylesheet's own accent.
    accent_color: Mapped[str | None] = mapped_column(String(7))
    # The logo as uploaded (checked by content: app/services/program/logos.py), loaded only
    # when served; its SHA-256 is the ETag and the cache-busting part of its URL.
    logo: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    logo_type: Mapped[str | None] = mapped_column(String(16))
    logo_digest: Mapped[str | None] = mapped_column(String(64))

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
        CheckConstraint("length(btrim(program_name)) > 0", name="program_name_present"),
        CheckConstraint("product_url ~ '^https?://'", name="product_url_http"),
        CheckConstraint("accent_color ~ '^#[0-9a-f]{6}$'", name="accent_color_hex"),
        CheckConstraint(f"logo_type IN ({sql_in(LOGO_TYPES)})", name="logo_type"),
        CheckConstraint(
            "(logo IS NULL) = (logo_type IS NULL) AND (logo IS NULL) = (logo_digest IS NULL)",
            name="logo_complete",
        ),
        CheckConstraint(f"octet_length(logo) <= {MAX_LOGO_BYTES}", name="logo_size"),
    )


class ProgramTerms(Base):
    """One row per published version of the program's terms; the newest is in force.
    Append-only (a trigger refuses UPDATE and DELETE): what a user accepted stays readable.
    Who published a version is in the audit log (``program.terms_published``)."""

    __tablename__ = "program_terms"

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("length(btrim(body)) > 0", name="body_present"),
    )
