"""The ledger: every change of an affiliate's money, appended, never changed.

Balances are sums of entries. ``available_at`` says when an entry's money can be paid out:
an accrual's is its commission's payable date (``infinity`` while the commission is held),
its later adjustments share it; payouts and clawbacks take effect at once.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID_LENGTH, Base, Money
from app.models.transitions import sql_in

# accrual: a commission earned (or a held one released); reversal: its amount reduced by a
# refund before payout; clawback: money taken back after payout (or returned, when a dispute
# is won); payout: money sent; payout_failure: a failed payout's money back;
# payout_reversal: a completed payout's money back (the provider reversed the transfer).
PAYOUT_KINDS = frozenset({"payout", "payout_failure", "payout_reversal"})
LEDGER_KINDS = frozenset({"accrual", "reversal", "clawback"}) | PAYOUT_KINDS


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="RESTRICT")
    )
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money)
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    commission_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("commissions.id", ondelete="RESTRICT")
    )
    payout_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("payouts.id", ondelete="RESTRICT")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"kind IN ({sql_in(LEDGER_KINDS)})", name="kind"),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        CheckConstraint(
            f"(kind IN ({sql_in(PAYOUT_KINDS)})) = (payout_id IS NOT NULL)",
            name="payout_entries_name_the_payout",
        ),
        CheckConstraint(
            "(kind IN ('accrual', 'reversal', 'clawback')) = (commission_id IS NOT NULL)",
            name="commission_entries_name_the_commission",
        ),
        Index("ix_ledger_entries_user_id_available_at", user_id, available_at),
        Index("ix_ledger_entries_commission_id", commission_id),
        # A payout's reservation, failure and reversal, each at most once; statements find a
        # payout's reservation by it (and the clawbacks between two reservations below).
        Index(
            "uq_ledger_entries_payout_id_kind",
            payout_id,
            kind,
            unique=True,
            postgresql_where=text("payout_id IS NOT NULL"),
        ),
        Index(
            "ix_ledger_entries_user_id_clawbacks",
            user_id,
            id,
            postgresql_where=text("kind = 'clawback'"),
        ),
    )


class LedgerTotal(Base):
    """A user's running totals over the ledger, kept by a statement-level trigger on
    ``ledger_entries`` (migration 0024) in the statement that appends the entries: ``total``
    is the sum of every entry, ``paid`` minus the sum of the payout kinds. The application
    never writes it (``flask ledger verify --fix`` repairs it from the entries)."""

    __tablename__ = "ledger_totals"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    total: Mapped[Decimal] = mapped_column(Money)
    paid: Mapped[Decimal] = mapped_column(Money)


class LedgerBucket(Base):
    """The sum of a user's entries that become available within one UTC hour
    (``available_hour``, the hour's start): balances read the buckets after the current hour,
    a bounded number, and the current hour's entries. Kept by the same trigger."""

    __tablename__ = "ledger_buckets"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    available_hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Money)

    __table_args__ = (
        CheckConstraint(
            "available_hour = date_trunc('hour', available_hour, 'UTC')", name="whole_hour"
        ),
        # The treasury's "owed": every user's buckets after the current hour.
        Index("ix_ledger_buckets_available_hour", available_hour),
    )
