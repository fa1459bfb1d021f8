"""Where an affiliate is paid: a Stripe Connect account, or the payee details an admin needs
to settle a Lemon Squeezy payout by hand (encrypted at rest)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID_LENGTH, Base, IdMixin, TimestampMixin
from app.models.payouts import PAYMENT_METHODS
from app.models.transitions import sql_in


class PayoutAccount(IdMixin, TimestampMixin, Base):
    """One per user and provider.

    Stripe: the connected (Express) account and its readiness, as the last ``account.updated``
    (or a fresh retrieve) said: ready = ``payouts_enabled`` and the transfers capability
    ``active``. Lemon Squeezy: ``payee_details``, a Fernet token of the payee's name, email and
    IBAN or PayPal address (never stored or logged in clear).
    """

    __tablename__ = "payout_accounts"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="RESTRICT")
    )
    provider: Mapped[str] = mapped_column(String(16))
    stripe_account_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    country: Mapped[str | None] = mapped_column(String(2))
    payouts_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    transfers_active: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Why Stripe will not pay this account now (requirements due, rejected, deauthorized).
    restriction: Mapped[str | None] = mapped_column(Text)
    # When Stripe stated the readiness stored here (an event's ``created``, or when we asked):
    # an older statement arriving later is ignored.
    stripe_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    payee_details: Mapped[str | None] = mapped_column(Text)
    details_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("user_id", "provider", name="uq_payout_accounts_user_provider"),
        CheckConstraint(f"provider IN ({sql_in(PAYMENT_METHODS)})", name="provider"),
        CheckConstraint("country ~ '^[A-Z]{2}$'", name="country_code"),
        # Each provider keeps only what it needs: an account id, or payee details.
        CheckConstraint(
            "(provider = 'stripe') = (stripe_account_id IS NOT NULL)", name="stripe_has_account"
        ),
        CheckConstraint(
            "provider = 'lemon_squeezy' OR payee_details IS NULL", name="details_for_lemon_squeezy"
        ),
        CheckConstraint(
            "provider = 'stripe' OR NOT (payouts_enabled OR transfers_active)",
            name="readiness_for_stripe",
        ),
    )

    @property
    def is_ready(self) -> bool:
        """Whether a payout can be sent to this account now (as far as we last heard)."""
        if self.provider == "stripe":
            return self.payouts_enabled and self.transfers_active and not self.restriction
        return self.payee_details is not None
