"""Payouts of earned commissions to an affiliate through a payment provider."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import ID_LENGTH, Base, IdMixin, Money, TimestampMixin
from app.models.transitions import HasStatus, Transitions, sql_in

if TYPE_CHECKING:
    from app.models.users import User

PAYOUT_TRANSITIONS = Transitions(
    "payout",
    {
        # Waiting for an admin (approval), or stopped by one (hold). A release from hold goes
        # back to waiting when approvals are still missing.
        "awaiting_approval": frozenset({"pending", "on_hold", "failed"}),
        "on_hold": frozenset({"awaiting_approval", "pending", "failed"}),
        # Ready to send: a worker (Stripe) or an admin (Lemon Squeezy) takes it.
        "pending": frozenset({"processing", "on_hold", "failed"}),
        # Back to pending: a retry after a transient error or while the platform lacks funds.
        "processing": frozenset({"completed", "failed", "pending"}),
        # The provider took the money back (Stripe transfer reversed).
        "completed": frozenset({"reversed"}),
        "failed": frozenset(),
        "reversed": frozenset(),
    },
)
PAYMENT_METHODS = frozenset({"stripe", "lemon_squeezy"})
# A user has at most one of these at a time (a partial unique index says so too).
OPEN_STATUSES = frozenset({"awaiting_approval", "on_hold", "pending", "processing"})


class Payout(HasStatus, IdMixin, TimestampMixin, Base):
    """Money sent (or being sent) to one affiliate. Its amount is reserved in the ledger
    (a ``payout`` entry) from creation; a failure gives it back (``payout_failure``)."""

    TRANSITIONS = PAYOUT_TRANSITIONS
    __tablename__ = "payouts"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="RESTRICT")
    )
    amount: Mapped[Decimal] = mapped_column(Money)
    payment_method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(20), default="pending", server_default="pending")
    transaction_reference: Mapped[str | None] = mapped_column(String(255))
    # Where the money goes (null only for payouts made before accounts existed). A trigger
    # (migration 0011) checks that the account is the user's and of the payment method.
    payout_account_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("payout_accounts.id", ondelete="RESTRICT")
    )
    # Who asked for it; null for a scheduled payout.
    requested_by: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="RESTRICT")
    )
    # The schedule's period (e.g. 2026-05) of a scheduled payout: one per user and period.
    period: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    # When the provider was first asked to send it: Stripe prunes idempotency keys after
    # 24 hours, so a retry later than that first looks for a transfer already made.
    first_attempted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Admins who must approve it before it is sent (0, 1, or 2 for maker-checker), fixed
    # when it is created so a later settings change does not move the goalposts.
    approvals_required: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # Why a payout that is not final is not moving (e.g. balance_insufficient).
    waiting_reason: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reversed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship(back_populates="payouts", foreign_keys=[user_id])

    __table_args__ = (
        # The minimum threshold is a setting that changes; the app checks it at request time.
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(f"payment_method IN ({sql_in(PAYMENT_METHODS)})", name="payment_method"),
        CheckConstraint(f"status IN ({sql_in(PAYOUT_TRANSITIONS.statuses)})", name="status"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        CheckConstraint(
            "(status = 'failed') = (failure_reason IS NOT NULL AND failed_at IS NOT NULL)",
            name="failed_has_reason",
        ),
        CheckConstraint(
            "(status IN ('completed', 'reversed')) = (completed_at IS NOT NULL)",
            name="completed_has_time",
        ),
        CheckConstraint("approvals_required BETWEEN 0 AND 2", name="approvals_required_range"),
        CheckConstraint(
            "(status = 'reversed') = (reversed_at IS NOT NULL)", name="reversed_has_time"
        ),
        CheckConstraint(
            f"waiting_reason IS NULL OR status IN ({sql_in(OPEN_STATUSES)})",
            name="waiting_only_when_open",
        ),
        UniqueConstraint("user_id", "period", name="uq_payouts_user_id_period"),
        Index("ix_payouts_user_id", user_id),
        Index("ix_payouts_status", status),
        Index(
            "uq_payouts_transaction_reference",
            "transaction_reference",
            unique=True,
            postgresql_where=text("transaction_reference IS NOT NULL"),
        ),
        # The database's last line for "another payout of this user is not final".
        Index(
            "uq_payouts_one_open_per_user",
            user_id,
            unique=True,
            postgresql_where=text(f"status IN ({sql_in(OPEN_STATUSES)})"),
        ),
    )

    @property
    def is_in_flight(self) -> bool:
        """Not final yet: its page keeps asking for its status."""
        return self.status in OPEN_STATUSES

    def transition_to(
        self, new_status: str, *, reason: str | None = None, now: datetime | None = None
    ) -> None:
        """Change the status by the table, keeping its timestamps with it: a failure needs
        a ``reason``; a final status clears ``waiting_reason``."""
        self.TRANSITIONS.check(self.status, new_status)
        if new_status == "failed" and not reason:
            raise ValueError("A failed payout needs a reason.")
        super().transition_to(new_status)
        now = now or datetime.now(UTC)
        if new_status == "failed":
            self.failure_reason, self.failed_at = reason, now
        elif new_status == "completed":
            self.completed_at = now
        elif new_status == "reversed":
            self.reversed_at = now
        if new_status not in OPEN_STATUSES:
            self.waiting_reason = None


class PayoutApproval(IdMixin, Base):
    """One admin's approval of a payout; append-only (a trigger refuses UPDATE and DELETE).
    A payout needing two is approved by two different admins (unique per admin)."""

    __tablename__ = "payout_approvals"

    payout_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("payouts.id", ondelete="RESTRICT")
    )
    admin_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="RESTRICT")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("payout_id", "admin_id"),)
