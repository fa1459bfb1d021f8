"""Earnings rollups: one affiliate's commissions summed per day recorded, tier and status,
and again per month, kept exact by statement-level triggers (migration 0025).

The commissions page's totals row and monthly chart are sums over every commission of a
filter; for an affiliate with a million commissions that is a million rows per page view.
These rows answer the same sums from a few hundred rows: whole months from the month rows,
the days of a filter's partial months from the day rows (``commission_listing``; the reasons
and figures are in docs/benchmarks.md, "Issue 14: earnings rollups").
The application never writes them: triggers on ``commissions``, ``sales`` (refunds and
disputes change the net sale) and ``referral_program_settings`` (the currency's minor units
round the net sale) do, in the same statement as the change.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import BigInteger, Date, ForeignKey, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID_LENGTH, Base


class RollupFigures:
    """The figures both rollups keep for their key (after it in the table)."""

    commissions: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[Decimal] = mapped_column(Numeric)
    clawed_back: Mapped[Decimal] = mapped_column(Numeric)
    sale_net: Mapped[Decimal] = mapped_column(Numeric)


class CommissionRollup(RollupFigures, Base):
    """The commissions of ``user_id`` recorded on ``day`` (UTC) at ``tier`` now in
    ``status``: how many, and the sums of their amount, clawed back and net sale (each
    commission's net sale rounded to the program currency's minor units, as listed).

    Sums are unbounded ``numeric``: a million amounts of ``Money`` need more digits than one.
    A row whose count falls to zero is deleted by the trigger that emptied it. No CHECK on
    the count: PostgreSQL checks an upsert's proposed row (here a negative delta) before it
    finds the conflict, so ``commissions >= 0`` would refuse every decrement."""

    __tablename__ = "commission_rollups"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    tier: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)


class CommissionRollupMonth(RollupFigures, Base):
    """``CommissionRollup`` summed per month (``month`` is its first day): the same figures,
    kept by the same statements, read for the whole months of a filter."""

    __tablename__ = "commission_rollup_months"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    tier: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
