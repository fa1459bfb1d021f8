"""The reports' figures for a date range, read from the report views through the reports
database (``REPORTS_DATABASE_URL``, a read replica, when set; else the primary).

Every figure of one page comes from one read-only snapshot: a refresh commits all the views
at once, so the figures and their time (``report_refreshed``) always agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property

from sqlalchemy import Connection, Engine, TextClause, text

from app.config import REPORTS_BIND
from app.extensions import db
from app.money import ratio
from app.services.reports.ranges import ReportRange

ZERO = Decimal(0)
TOP_SHOWN = 10  # affiliates on the page; the view keeps 100 (the CSV)
TOP_KEPT = 100
# The scheduler refreshes every 5 minutes: figures older than this mean it or the workers
# are not running.
STALE_AFTER = timedelta(minutes=15)


@dataclass(frozen=True)
class Freshness:
    refreshed_at: datetime  # UTC

    @property
    def is_stale(self) -> bool:
        return datetime.now(UTC) - self.refreshed_at > STALE_AFTER


@dataclass(frozen=True)
class SalesRow:
    """One day or week of sales (program currency; refunds and open disputes taken off) and
    the commissions they earned, net, by tier."""

    start: date
    sales: int = 0
    sales_amount: Decimal = ZERO
    refunded_amount: Decimal = ZERO
    foreign_sales: int = 0
    commissions: dict[int, Decimal] = field(default_factory=dict)
    gross_commissions: Decimal = ZERO

    @property
    def net_amount(self) -> Decimal:
        return self.sales_amount - self.refunded_amount

    @property
    def commission_amount(self) -> Decimal:
        return sum(self.commissions.values(), ZERO)

    @property
    def paid_out_share(self) -> Decimal | None:
        """Commissions as a share of net sales."""
        return ratio(self.commission_amount, self.net_amount)


@dataclass(frozen=True)
class FunnelRow:
    """Clicks (unique visitors per link and day) → sign-ups → paying referrals, and what
    affiliates earned (every tier) on the period's sales."""

    start: date
    clicks: int = 0
    signups: int = 0  # tier-1 sign-ups, through a visit or a typed code
    paying_referrals: int = 0
    signed_up_visitors: int = 0  # of the clicks, the visitors who signed up through the link
    earnings: Decimal = ZERO

    @property
    def signup_rate(self) -> Decimal | None:
        """Clicks whose visitor signed up ÷ clicks: one population, so never above 1."""
        return ratio(self.signed_up_visitors, self.clicks)

    @property
    def paying_rate(self) -> Decimal | None:
        return ratio(self.paying_referrals, self.signups)

    @property
    def earnings_per_click(self) -> Decimal | None:
        return ratio(self.earnings, self.clicks)


@dataclass(frozen=True)
class TopAffiliate:
    rank: int
    user_id: str
    username: str
    earnings: Decimal
    sales: int
    sales_amount: Decimal
    signups: int
    paying_referrals: int

    @property
    def conversion(self) -> Decimal | None:
        """Paying referrals per sign-up."""
        return ratio(self.paying_referrals, self.signups)


@dataclass(frozen=True)
class PayoutRow:
    start: date
    payment_method: str
    status: str
    payouts: int
    amount: Decimal


@dataclass(frozen=True)
class Reports:
    range: ReportRange
    freshness: Freshness
    sales: list[SalesRow]
    funnel: list[FunnelRow]
    top_affiliates: list[TopAffiliate] | None  # only over a preset range's window
    payouts: list[PayoutRow]

    # Computed once per page (its tables ask for them on every row).
    @cached_property
    def tiers(self) -> list[int]:
        return sorted({tier for row in self.sales for tier in row.commissions})

    @cached_property
    def sales_total(self) -> SalesRow:
        commissions: dict[int, Decimal] = {}
        for row in self.sales:
            for tier, amount in row.commissions.items():
                commissions[tier] = commissions.get(tier, ZERO) + amount
        return SalesRow(
            self.range.start,
            sum(r.sales for r in self.sales),
            sum((r.sales_amount for r in self.sales), ZERO),
            sum((r.refunded_amount for r in self.sales), ZERO),
            sum(r.foreign_sales for r in self.sales),
            commissions,
            sum((r.gross_commissions for r in self.sales), ZERO),
        )

    @cached_property
    def funnel_total(self) -> FunnelRow:
        return FunnelRow(
            self.range.start,
            sum(r.clicks for r in self.funnel),
            sum(r.signups for r in self.funnel),
            sum(r.paying_referrals for r in self.funnel),
            sum(r.signed_up_visitors for r in self.funnel),
            sum((r.earnings for r in self.funnel), ZERO),
        )

    @cached_property
    def payout_totals(self) -> dict[tuple[str, str], tuple[int, Decimal]]:
        """(method, status) → (payouts, amount) over the range."""
        totals: dict[tuple[str, str], tuple[int, Decimal]] = {}
        for row in self.payouts:
            count, amount = totals.get((row.payment_method, row.status), (0, ZERO))
            totals[row.payment_method, row.status] = (count + row.payouts, amount + row.amount)
        return totals


@dataclass(frozen=True)
class ReportQueries:
    """The SQL of the reports. Each takes ``start``, ``end`` (days), ``unit`` (``day`` or
    ``week``), ``window_days`` and ``limit`` and answers the columns named here, with
    ``bucket`` the first day of the row's day or week (the range's first day for the first
    one). ``VIEW_QUERIES`` read the views; the tests and ``bench/reports.py`` compute the
    same columns from the base tables."""

    refreshed: TextClause  # refreshed_at
    sales: TextClause  # bucket, sales, sales_amount, refunded_amount, foreign_sales
    commissions: TextClause  # bucket, tier, gross_amount, amount
    funnel: TextClause  # bucket, clicks, signups, paying_referrals, signed_up_visitors
    top_affiliates: TextClause  # the columns of TopAffiliate, best first
    payouts: TextClause  # bucket, payment_method, status, payouts, amount


BUCKET = "greatest(date_trunc(:unit, {day}::timestamp)::date, :start)"


def _per_bucket(columns: str, view: str, keys: str = "1") -> TextClause:
    """A daily view's rows in the range summed per bucket (and ``keys``)."""
    return text(
        f"SELECT {BUCKET.format(day='day')} AS bucket, {columns} FROM {view} "  # noqa: S608 (constant SQL)
        f"WHERE day BETWEEN :start AND :end GROUP BY {keys} ORDER BY {keys}"
    )


VIEW_QUERIES = ReportQueries(
    refreshed=text("SELECT refreshed_at FROM report_refreshed"),
    sales=_per_bucket(
        "sum(sales)::bigint, sum(sales_amount), sum(refunded_amount), sum(foreign_sales)::bigint",
        "report_daily_sales",
    ),
    commissions=_per_bucket(
        "tier, sum(gross_amount), sum(amount)", "report_daily_commissions", "1, 2"
    ),
    funnel=_per_bucket(
        "sum(clicks)::bigint, sum(signups)::bigint, sum(paying_referrals)::bigint, "
        "sum(signed_up_visitors)::bigint",
        "report_daily_funnel",
    ),
    top_affiliates=text(
        "SELECT rank, user_id, username, earnings, sales, sales_amount, signups, "
        "paying_referrals FROM report_top_affiliates WHERE window_days = :window_days "
        "ORDER BY rank LIMIT :limit"
    ),
    payouts=_per_bucket(
        "payment_method, status, sum(payouts)::bigint, sum(amount)",
        "report_daily_payouts",
        "1, 2, 3",
    ),
)


def reports_engine() -> Engine:
    """The reports database's engine: the read replica's when configured, else the primary's."""
    return db.engines.get(REPORTS_BIND, db.engine)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """One read-only ``REPEATABLE READ`` transaction (a hot standby allows it too)."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


def _freshness(conn: Connection, queries: ReportQueries) -> Freshness:
    return Freshness(conn.execute(queries.refreshed).scalar_one().astimezone(UTC))


def last_refreshed() -> Freshness:
    """When the views were last refreshed, as the reports database has them."""
    with snapshot(reports_engine()) as conn:
        return _freshness(conn, VIEW_QUERIES)


def read_reports(report_range: ReportRange, top: int = TOP_SHOWN) -> Reports:
    """Every report over ``report_range``, from the views as of their last refresh."""
    with snapshot(reports_engine()) as conn:
        return collect(conn, report_range, VIEW_QUERIES, top)


def collect(
    conn: Connection, report_range: ReportRange, queries: ReportQueries, top: int = TOP_SHOWN
) -> Reports:
    """The reports over ``report_range`` as ``queries`` compute them on ``conn``."""
    params = {
        "start": report_range.start,
        "end": report_range.end,
        "unit": report_range.unit,
        "window_days": report_range.preset,
        "limit": top,
    }
    buckets = report_range.buckets()
    commissions: dict[date, dict[int, Decimal]] = {b: {} for b in buckets}
    gross: dict[date, Decimal] = dict.fromkeys(buckets, ZERO)
    for bucket, tier, gross_amount, amount in conn.execute(queries.commissions, params):
        commissions[bucket][tier] = amount
        gross[bucket] += gross_amount
    sold = {row[0]: row[1:] for row in conn.execute(queries.sales, params)}
    sales = [
        SalesRow(b, *sold.get(b, (0, ZERO, ZERO, 0)), commissions[b], gross[b]) for b in buckets
    ]
    came = {row[0]: row[1:] for row in conn.execute(queries.funnel, params)}
    funnel = [
        FunnelRow(b, *came.get(b, (0, 0, 0, 0)), s.commission_amount)
        for b, s in zip(buckets, sales, strict=True)
    ]
    top_affiliates = None
    if report_range.preset:
        top_affiliates = [
            TopAffiliate(*row) for row in conn.execute(queries.top_affiliates, params)
        ]
    return Reports(
        range=report_range,
        freshness=_freshness(conn, queries),
        sales=sales,
        funnel=funnel,
        top_affiliates=top_affiliates,
        payouts=[PayoutRow(*row) for row in conn.execute(queries.payouts, params)],
    )
