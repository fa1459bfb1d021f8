"""Sales reported by the payment providers (or recorded by an admin), and provider events.

A sale is unique per provider and external id, whatever order its events arrive in: a
refund seen before its sale creates the row with the refund and no amount yet, and the sale
fills it in. Its buyer may be unknown (unattributed) until an admin attributes it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID_LENGTH, Base, IdMixin, Money, TimestampMixin
from app.models.transitions import sql_in

PROVIDERS = frozenset({"stripe", "lemon_squeezy"})
SALE_SOURCES = PROVIDERS | {"manual"}
# Where provider events come from: Stripe Connect events (about connected accounts) have
# their own endpoint and secret, and their ids never meet the platform endpoint's.
EVENT_SOURCES = PROVIDERS | {"stripe_connect"}
# The database's fixed bounds for a sale's date (the app refuses dates ahead of its clock too).
SALE_DATE_RANGE = "occurred_at >= '2000-01-01 00:00+00' AND occurred_at < '2100-01-01 00:00+00'"


class Sale(IdMixin, TimestampMixin, Base):
    __tablename__ = "sales"

    provider: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(255))
    buyer_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="RESTRICT")
    )
    amount: Mapped[Decimal | None] = mapped_column(Money)  # None: only a refund seen so far
    # The part of ``amount`` that is tax (the commission base excludes it, by default).
    tax_amount: Mapped[Decimal] = mapped_column(Money, default=0, server_default="0")
    currency: Mapped[str | None] = mapped_column(String(3))
    # Cumulative, as the provider reports it; open disputes count as refunded until resolved.
    refunded_amount: Mapped[Decimal] = mapped_column(Money, default=0, server_default="0")
    disputed_amount: Mapped[Decimal] = mapped_column(Money, default=0, server_default="0")
    dispute_closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    subscription_id: Mapped[str | None] = mapped_column(String(255))
    # The provider's customer: a payment that arrives before we know who the customer is
    # gets its buyer when the link is learned.
    customer_id: Mapped[str | None] = mapped_column(String(255))
    # The address the provider says paid, lower-case: a self-purchase signal.
    payer_email: Mapped[str | None] = mapped_column(String(320))
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_foreign_currency: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    accrued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="RESTRICT")
    )
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("provider", "external_id", name="uq_sales_provider_external_id"),
        CheckConstraint(f"provider IN ({sql_in(SALE_SOURCES)})", name="provider"),
        CheckConstraint("amount IS NULL OR amount >= 0", name="amount_non_negative"),
        CheckConstraint("refunded_amount >= 0", name="refunded_non_negative"),
        CheckConstraint("disputed_amount >= 0", name="disputed_non_negative"),
        CheckConstraint("currency IS NULL OR currency ~ '^[A-Z]{3}$'", name="currency_code"),
        CheckConstraint("(amount IS NULL) = (occurred_at IS NULL)", name="amount_with_occurred_at"),
        CheckConstraint(SALE_DATE_RANGE, name="occurred_at_range"),
        CheckConstraint(
            "tax_amount >= 0 AND (amount IS NULL OR tax_amount <= amount)", name="tax_within_amount"
        ),
        CheckConstraint("payer_email = lower(payer_email)", name="payer_email_lower"),
        Index("ix_sales_buyer_id", "buyer_id"),
        Index(
            "ix_sales_unattributed_customer",
            "provider",
            "customer_id",
            postgresql_where=text("buyer_id IS NULL AND customer_id IS NOT NULL"),
        ),
        Index("ix_sales_subscription", "provider", "subscription_id", "occurred_at"),
        # The what-if simulator's window (the sales of the last 30 or 90 days).
        Index("ix_sales_occurred_at", "occurred_at"),
        Index(
            "ix_sales_unattributed",
            "occurred_at",
            postgresql_where=text("buyer_id IS NULL AND amount IS NOT NULL"),
        ),
        # Sales under an open dispute (few at any time): what a payout must leave out is
        # found from them, not from the earner's whole history.
        Index(
            "ix_sales_open_disputes",
            "id",
            postgresql_where=text("disputed_amount > 0 AND dispute_closed_at IS NULL"),
        ),
    )


class SaleKey(Base):
    """Every id a provider uses for one payment (PaymentIntent, charge, invoice, checkout
    session), each naming its sale: events that name different ids of one payment find one
    sale. A sale's ``external_id`` is one of its keys."""

    __tablename__ = "sale_keys"

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    sale_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("sales.id", ondelete="CASCADE")
    )

    __table_args__ = (Index("ix_sale_keys_sale_id", "sale_id"),)


class CustomerLink(Base):
    """A provider's customer id mapped to our user (learned from a checkout), for the
    subscription payments that name only the customer."""

    __tablename__ = "customer_links"

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookEvent(Base):
    """A provider's event exactly as received (verified), stored before anything is done."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    # An admin gave up on a parked event (one that failed too often): it is never claimed
    # again and no longer counts as waiting. Kept, with who decided, for the record.
    dismissed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dismissed_by: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="RESTRICT")
    )

    __table_args__ = (
        UniqueConstraint("provider", "event_id", name="uq_webhook_events_provider_event_id"),
        CheckConstraint(f"provider IN ({sql_in(EVENT_SOURCES)})", name="provider"),
        CheckConstraint(
            "(dismissed_at IS NULL) = (dismissed_by IS NULL)", name="dismissed_by_someone"
        ),
        CheckConstraint(
            "dismissed_at IS NULL OR processed_at IS NULL", name="dismissed_unprocessed"
        ),
        Index(
            "ix_webhook_events_unprocessed",
            "received_at",
            postgresql_where=text("processed_at IS NULL"),
        ),
    )
