"""Commissions, an affiliate's own (or, for admins, everyone's): filtered keyset pages, a
streamed export, monthly totals."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import aliased

from app.charts import BarChart, Series, colour
from app.extensions import db
from app.models import Commission, Sale, User
from app.pagination import Cursor
from app.services.money.commissions import in_proportion

PAGE_SIZE = 50


@dataclass(frozen=True)
class CommissionFilters:
    status: str | None = None
    tier: int | None = None
    since: date | None = None
    until: date | None = None  # inclusive


@dataclass(frozen=True)
class CommissionRow:
    id: str
    created_at: datetime
    status: str
    tier: int
    amount: Decimal
    clawed_back: Decimal
    rate: Decimal
    base_amount: Decimal
    base_includes_tax: bool
    payable_at: datetime
    buyer: str | None
    sale_reference: str
    sale_amount: Decimal
    sale_refunded: Decimal
    sale_disputed: Decimal
    earner: str

    @property
    def sale_net(self) -> Decimal:
        """The commission's base after the sale's refunds and disputes (in proportion),
        unrounded; before or after tax as ``base_includes_tax`` says."""
        return in_proportion(
            self.base_amount, self.sale_amount, self.sale_refunded, self.sale_disputed
        )


@dataclass(frozen=True)
class CommissionPage:
    rows: list[CommissionRow]
    next_cursor: Cursor | None


def _query(user_id: str | None, filters: CommissionFilters) -> Select:
    earner = aliased(User)
    query = (
        select(
            Commission.id,
            Commission.created_at,
            Commission.status,
            Commission.tier,
            Commission.amount,
            Commission.clawed_back,
            Commission.rate,
            Commission.base_amount,
            Commission.base_includes_tax,
            Commission.payable_at,
            User.username.label("buyer"),
            Sale.external_id.label("sale_reference"),
            Sale.amount.label("sale_amount"),
            Sale.refunded_amount.label("sale_refunded"),
            Sale.disputed_amount.label("sale_disputed"),
            earner.username.label("earner"),
        )
        .join(Sale, Sale.id == Commission.sale_id)
        .join(earner, earner.id == Commission.user_id)
        .outerjoin(User, User.id == Sale.buyer_id)
    )
    if user_id:
        query = query.where(Commission.user_id == user_id)
    if filters.status:
        query = query.where(Commission.status == filters.status)
    if filters.tier:
        query = query.where(Commission.tier == filters.tier)
    if filters.since:
        query = query.where(Commission.created_at >= datetime.combine(filters.since, time(), UTC))
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), time(), UTC)
        query = query.where(Commission.created_at < end)
    return query.order_by(Commission.created_at.desc(), Commission.id.desc())


def list_commissions(
    user_id: str | None, filters: CommissionFilters, before: Cursor | None = None
) -> CommissionPage:
    """The user's commissions (``None``: everyone's, for admins), newest first,
    ``PAGE_SIZE`` at a time, continuing before ``before`` (keyset on the ``(user_id,
    created_at, id)`` or the ``(created_at, id)`` index, never OFFSET)."""
    query = _query(user_id, filters)
    if before:
        query = query.where(
            tuple_(Commission.created_at, Commission.id) < tuple_(before.created_at, before.id)
        )
    rows = [CommissionRow(**row._mapping) for row in db.session.execute(query.limit(PAGE_SIZE + 1))]
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    cursor = Cursor(rows[-1].created_at, rows[-1].id) if more else None
    return CommissionPage(rows, cursor)


def iter_commissions(user_id: str, filters: CommissionFilters) -> Iterator[CommissionRow]:
    """Every matching row, fetched in batches from a server-side cursor (for the export)."""
    result = db.session.execute(
        _query(user_id, filters).execution_options(yield_per=1000, stream_results=True)
    )
    for row in result:
        yield CommissionRow(**row._mapping)


@dataclass(frozen=True)
class MonthlyEarnings:
    months: list[date]  # first day of each month, oldest first
    tiers: list[int]
    amounts: dict[tuple[date, int], Decimal]  # non-cancelled, net of clawbacks

    @property
    def totals(self) -> dict[date, Decimal]:
        return {
            m: sum((self.amounts.get((m, t), Decimal(0)) for t in self.tiers), Decimal(0))
            for m in self.months
        }

    def chart(self, currency: str) -> BarChart:
        return BarChart(
            id="earnings",
            title=f"Commissions earned per month over the last {len(self.months)} months, by tier",
            labels=[m.strftime("%b") for m in self.months],
            titles=[m.strftime("%b %Y") for m in self.months],
            series=[Series(f"Tier {t}", colour(t)) for t in self.tiers],
            values=[
                [self.amounts.get((m, t), Decimal(0)) for t in self.tiers] for m in self.months
            ],
            currency=currency,
        )


def monthly_earnings(user_id: str, months: int = 12, today: date | None = None) -> MonthlyEarnings:
    """Earnings per month (by accrual date) and tier over the last ``months`` months."""
    today = today or datetime.now(UTC).date()
    first = date(today.year, today.month, 1)
    starts = []
    for back in range(months - 1, -1, -1):
        year, month = divmod(first.year * 12 + first.month - 1 - back, 12)
        starts.append(date(year, month + 1, 1))
    month = func.date_trunc("month", func.timezone("UTC", Commission.created_at))
    rows = db.session.execute(
        select(month, Commission.tier, func.sum(Commission.amount - Commission.clawed_back))
        .where(
            Commission.user_id == user_id,
            Commission.status != "cancelled",
            Commission.created_at >= datetime.combine(starts[0], time(), UTC),
        )
        .group_by(month, Commission.tier)
    )
    amounts = {(at.date(), tier): amount for at, tier, amount in rows}
    tiers = sorted({tier for _, tier in amounts})
    return MonthlyEarnings(starts, tiers, amounts)


def commission_row(commission_id: str) -> CommissionRow | None:
    """One commission as the lists show it (any user's: the caller checks who may see it)."""
    row = db.session.execute(
        _query(None, CommissionFilters()).where(Commission.id == commission_id)
    ).one_or_none()
    return CommissionRow(**row._mapping) if row else None
