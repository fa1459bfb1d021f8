"""Commissions, an affiliate's own (or, for admins, everyone's): filtered keyset pages, a
streamed export, the totals of a filter, monthly totals."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    Select,
    case,
    cast,
    false,
    func,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.orm import aliased

from app.charts import BarChart, Series, colour
from app.extensions import db
from app.models import (
    COMMISSION_TRANSITIONS,
    Commission,
    CommissionRollup,
    CommissionRollupMonth,
    ReferralProgramSettings,
    Sale,
    User,
)
from app.pagination import Cursor
from app.services.money import commission_states
from app.services.money.commissions import in_proportion

PAGE_SIZE = 50
# The earnings chart shows at most this many months (the last ones of the filtered range).
CHART_MONTHS = 12


@dataclass(frozen=True)
class CommissionFilters:
    status: str | None = None  # a stored status (the admins' list)
    state: str | None = None  # an affiliate's status (a key of commission_states.STATES)
    tier: int | None = None
    since: date | None = None  # by the date the commission was recorded
    until: date | None = None  # inclusive
    as_of: datetime = field(default_factory=lambda: datetime.now(UTC))  # for ``state``


@dataclass(frozen=True)
class CommissionRow:
    id: str
    created_at: datetime  # recorded: when the sale was processed and the commission accrued
    status: str
    tier: int
    amount: Decimal
    clawed_back: Decimal
    rate: Decimal
    base_amount: Decimal
    base_includes_tax: bool
    payable_at: datetime  # the sale date plus the hold period
    buyer: str | None
    sale_reference: str
    sale_occurred_at: datetime | None  # the sale date: when the buyer paid
    sale_amount: Decimal
    sale_refunded: Decimal
    sale_disputed: Decimal
    earner: str
    as_of: datetime

    @property
    def sale_net(self) -> Decimal:
        """The commission's base after the sale's refunds and disputes (in proportion),
        unrounded; before or after tax as ``base_includes_tax`` says."""
        return in_proportion(
            self.base_amount, self.sale_amount, self.sale_refunded, self.sale_disputed
        )

    @property
    def state(self) -> str:
        return commission_states.state_of(self.status, self.payable_at, self.as_of)

    @property
    def status_label(self) -> str:
        return commission_states.label(self.status, self.payable_at, self.as_of)


@dataclass(frozen=True)
class CommissionPage:
    rows: list[CommissionRow]
    next_cursor: Cursor | None


def _conditions(user_id: str | None, filters: CommissionFilters) -> list[ColumnElement[bool]]:
    conditions = []
    if user_id:
        conditions.append(Commission.user_id == user_id)
    if filters.status:
        conditions.append(Commission.status == filters.status)
    if filters.state:
        conditions.append(commission_states.where_state(filters.state, filters.as_of))
    if filters.tier:
        conditions.append(Commission.tier == filters.tier)
    if filters.since:
        conditions.append(Commission.created_at >= datetime.combine(filters.since, time(), UTC))
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), time(), UTC)
        conditions.append(Commission.created_at < end)
    return conditions


def _query(user_id: str | None, filters: CommissionFilters) -> Select:
    earner = aliased(User)
    return (
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
            Sale.occurred_at.label("sale_occurred_at"),
            Sale.amount.label("sale_amount"),
            Sale.refunded_amount.label("sale_refunded"),
            Sale.disputed_amount.label("sale_disputed"),
            earner.username.label("earner"),
        )
        .join(Sale, Sale.id == Commission.sale_id)
        .join(earner, earner.id == Commission.user_id)
        .outerjoin(User, User.id == Sale.buyer_id)
        .where(*_conditions(user_id, filters))
        .order_by(Commission.created_at.desc(), Commission.id.desc())
    )


def list_commissions(
    user_id: str | None, filters: CommissionFilters, before: Cursor | None = None
) -> CommissionPage:
    """The user's commissions (``None``: everyone's, for admins), newest first,
    ``PAGE_SIZE`` at a time, continuing before ``before`` (keyset on the ``(user_id,
    created_at, id)`` or the ``(created_at, id)`` index, never OFFSET)."""
    # The page's ids first, alone, by the index (a subquery with a LIMIT is never flattened):
    # then the joins run for these rows only, whatever the planner thinks the user has.
    page = select(Commission.id).where(*_conditions(user_id, filters))
    if before:
        page = page.where(
            tuple_(Commission.created_at, Commission.id) < tuple_(before.created_at, before.id)
        )
    page = page.order_by(Commission.created_at.desc(), Commission.id.desc())
    query = _query(user_id, filters).where(Commission.id.in_(page.limit(PAGE_SIZE + 1)))
    rows = [CommissionRow(**row._mapping, as_of=filters.as_of) for row in db.session.execute(query)]
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
        yield CommissionRow(**row._mapping, as_of=filters.as_of)


@dataclass(frozen=True)
class CommissionTotals:
    """The sums over every commission of a filter (not only the page shown)."""

    count: int
    sale_net: Decimal  # each row's net sale rounded as the row shows it, then summed
    amount: Decimal  # of the commissions not cancelled (a cancelled one earns nothing)
    clawed_back: Decimal

    @property
    def earned(self) -> Decimal:
        return self.amount - self.clawed_back


def _rollup_statuses(filters: CommissionFilters) -> tuple[str, ...] | None:
    """The stored statuses a filter keeps, when the rollups can answer it; None when they
    cannot: "in hold" and "available" split pending commissions by their payable date against
    ``as_of``, which the rollups (keyed by the date recorded) do not know."""
    statuses = set(COMMISSION_TRANSITIONS.statuses)
    if filters.status:
        statuses &= {filters.status}
    if filters.state:
        if filters.state in (commission_states.IN_HOLD, commission_states.AVAILABLE):
            return None
        statuses &= {filters.state}
    return tuple(sorted(statuses))


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _rollup_rows(user_id: str | None, filters: CommissionFilters, statuses: tuple[str, ...]):
    """The rollups of the filter as (month, tier, status, figures) rows: the month rows of
    the whole months between ``since`` and ``until``, the day rows of the partial months at
    either end (each day recorded, UTC, stands for its commissions)."""
    # Whole months: from the first month starting on or after ``since`` to the month of the
    # day after ``until`` (exclusive); None is open-ended.
    first_whole = filters.since
    if filters.since and filters.since.day != 1:
        first_whole = _next_month(filters.since)
    end_whole = filters.until + timedelta(days=1) if filters.until else None
    end_whole = end_whole.replace(day=1) if end_whole else None

    def kept(table) -> list[ColumnElement[bool]]:
        conditions = [table.status.in_(statuses)]
        if user_id:
            conditions.append(table.user_id == user_id)
        if filters.tier:
            conditions.append(table.tier == filters.tier)
        return conditions

    def figures(table) -> tuple:
        return (table.tier, table.status, table.commissions, table.amount, table.clawed_back,
                table.sale_net)  # fmt: skip

    months = select(CommissionRollupMonth.month, *figures(CommissionRollupMonth)).where(
        *kept(CommissionRollupMonth)
    )
    if first_whole:
        months = months.where(CommissionRollupMonth.month >= first_whole)
    if end_whole:
        months = months.where(CommissionRollupMonth.month < end_whole)
    day = CommissionRollup.day
    edges = [day < first_whole] if first_whole else []
    edges += [day >= end_whole] if end_whole else []
    month_of_day = cast(func.date_trunc("month", cast(day, DateTime)), Date)
    days = select(month_of_day, *figures(CommissionRollup)).where(*kept(CommissionRollup))
    days = days.where(or_(*edges) if edges else false())
    if filters.since:
        days = days.where(day >= filters.since)
    if filters.until:
        days = days.where(day <= filters.until)
    return union_all(months, days).subquery()


def commission_totals(
    user_id: str | None, filters: CommissionFilters, minor: int, *, from_rows: bool = False
) -> CommissionTotals:
    """The sums over the filtered commissions; ``minor`` is the currency's number of
    decimals, to which each row's net sale is rounded (as on the page and in the CSV) before
    it is summed, so the total is the sum of the figures listed. Amounts leave cancelled
    commissions out (one cancelled as fraud keeps its figure, earning nothing).

    Read from the rollups when they can answer the filter (status, tier, dates recorded and
    the held/paid/cancelled states): month rows for whole months, day rows for the partial
    months at either end, a few dozen rows a year whatever the number of commissions. The
    "in hold" and "available" states (they split pending commissions by payable date), and a
    ``minor`` other than the program currency's (the rollups' net sales are rounded to
    that), take one aggregate statement over the commissions instead, with the same result;
    so does ``from_rows`` (what the rollups are checked against)."""
    statuses = None if from_rows else _rollup_statuses(filters)
    if statuses is not None:
        rows = _rollup_rows(user_id, filters, statuses)
        counted = rows.c.status != "cancelled"
        program_minor = select(
            func.currency_minor_units(ReferralProgramSettings.currency)
        ).scalar_subquery()
        rolled_minor, count, net, amount, clawed_back = db.session.execute(
            select(
                program_minor,
                func.coalesce(func.sum(rows.c.commissions), 0),
                func.coalesce(func.sum(rows.c.sale_net), 0),
                func.coalesce(func.sum(rows.c.amount).filter(counted), 0),
                func.coalesce(func.sum(rows.c.clawed_back).filter(counted), 0),
            )
        ).one()
        if rolled_minor == minor:
            return CommissionTotals(int(count), Decimal(net), amount, clawed_back)
    return _counted_totals(user_id, filters, minor)


def _counted_totals(
    user_id: str | None, filters: CommissionFilters, minor: int
) -> CommissionTotals:
    """``commission_totals`` from the commission rows themselves."""
    remaining = Sale.amount - func.least(Sale.amount, Sale.refunded_amount + Sale.disputed_amount)
    sale_net = case(
        (Sale.amount > 0, func.round(Commission.base_amount * remaining / Sale.amount, minor)),
        else_=0,
    )
    counted = Commission.status != "cancelled"
    count, net, amount, clawed_back = db.session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(sale_net), 0),
            func.coalesce(func.sum(Commission.amount).filter(counted), 0),
            func.coalesce(func.sum(Commission.clawed_back).filter(counted), 0),
        )
        .select_from(Commission)
        .join(Sale, Sale.id == Commission.sale_id)
        .where(*_conditions(user_id, filters))
    ).one()
    return CommissionTotals(count, Decimal(net), amount, clawed_back)


@dataclass(frozen=True)
class MonthlyEarnings:
    months: list[date]  # first day of each month, oldest first
    tiers: list[int]
    amounts: dict[tuple[date, int], Decimal]  # not cancelled, net of clawbacks

    @property
    def is_empty(self) -> bool:
        return not any(self.amounts.values())

    @property
    def totals(self) -> dict[date, Decimal]:
        return {
            m: sum((self.amounts.get((m, t), Decimal(0)) for t in self.tiers), Decimal(0))
            for m in self.months
        }

    @property
    def period(self) -> str:
        if not self.months:
            return "no months"
        first, last = self.months[0], self.months[-1]
        return f"{first:%b %Y}" if first == last else f"{first:%b %Y} to {last:%b %Y}"

    def chart(self, currency: str) -> BarChart:
        return BarChart(
            id="earnings",
            title=f"Commissions earned per month, {self.period}, by tier",
            labels=[m.strftime("%b") for m in self.months],
            titles=[m.strftime("%b %Y") for m in self.months],
            series=[Series(f"Tier {t}", colour(t)) for t in self.tiers],
            values=[
                [self.amounts.get((m, t), Decimal(0)) for t in self.tiers] for m in self.months
            ],
            currency=currency,
        )


def _month_starts(since: date | None, until: date) -> list[date]:
    """First days of the months from ``since`` (or ``CHART_MONTHS`` before ``until``) to
    ``until``'s, the last ``CHART_MONTHS`` of them."""
    last = until.year * 12 + until.month - 1
    first = last - CHART_MONTHS + 1
    if since is not None:
        first = max(first, since.year * 12 + since.month - 1)
    return [date(m // 12, m % 12 + 1, 1) for m in range(first, last + 1)]


def monthly_earnings(
    user_id: str | None, filters: CommissionFilters, *, from_rows: bool = False
) -> MonthlyEarnings:
    """Earnings (not cancelled, net of clawbacks) per month, by the date recorded, and tier, for the
    filtered commissions: the months of the filter's dates (the last ``CHART_MONTHS`` of
    them; without an end date, up to this month). From the rollups (as ``commission_totals``),
    except for the "in hold" and "available" states (and ``from_rows``), which take the
    commissions themselves."""
    today = filters.as_of.date()
    until = min(filters.until, today) if filters.until else today
    starts = _month_starts(filters.since, until)
    if not starts:
        return MonthlyEarnings([], [], {})
    statuses = None if from_rows else _rollup_statuses(filters)
    if statuses is None:
        chart_start = datetime.combine(starts[0], time(), UTC)
        month = func.date_trunc("month", func.timezone("UTC", Commission.created_at))
        query = select(
            month, Commission.tier, func.sum(Commission.amount - Commission.clawed_back)
        ).where(
            *_conditions(user_id, filters),
            Commission.status != "cancelled",
            Commission.created_at >= chart_start,
        )
        rows = db.session.execute(query.group_by(month, Commission.tier))
        amounts = {(at.date(), tier): amount for at, tier, amount in rows}
    else:
        rolled = _rollup_rows(user_id, filters, statuses)
        rows = db.session.execute(
            select(
                rolled.c.month,
                rolled.c.tier,
                func.sum(rolled.c.amount) - func.sum(rolled.c.clawed_back),
            )
            .where(rolled.c.status != "cancelled", rolled.c.month >= starts[0])
            .group_by(rolled.c.month, rolled.c.tier)
        )
        amounts = {(month, tier): amount for month, tier, amount in rows}
    tiers = sorted({tier for _, tier in amounts})
    return MonthlyEarnings(starts, tiers, amounts)


def commission_row(commission_id: str) -> CommissionRow | None:
    """One commission as the lists show it (any user's: the caller checks who may see it)."""
    filters = CommissionFilters()
    row = db.session.execute(
        _query(None, filters).where(Commission.id == commission_id)
    ).one_or_none()
    return CommissionRow(**row._mapping, as_of=filters.as_of) if row else None
