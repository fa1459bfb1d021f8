"""The what-if simulator: what the last 30 or 90 days of sales would have paid under draft
tier rates and a draft max tier, beside what they did pay. It writes nothing: one read-only
statement, inside a savepoint that is rolled back.

The replay follows the accrual rules (README, "Commission rules") on the sales that accrued
a commission in the window: each sale's base is the one its commissions kept; every
non-cancelled referral of its buyer up to the draft max tier earns ``round(base * rate)``
at the draft rate of its tier (tier 1 falls back to the default rate; MLM off: only tier 1,
at the default rate); suspended affiliates earn nothing. "Today" is what those sales
accrued (before refunds). Tiers above the current max tier count only once the backfill has
written their referral rows.

How it stays fast (``docs/benchmarks.md``, "What-if simulator"): the window's commissions
are read once and summed by buyer, never by sale. Per buyer: today's commissions by tier,
and the draft at every level summed over its tier-1 commissions — a sale has at most one,
and it carries the sale's base — so ``round(base * rate)`` is still rounded sale by sale.
When a buyer's tier-1 commissions do not cover all of its accrued sales in the window (a
direct referrer suspended at the time, a payment that earned nothing), its draft is summed
sale by sale instead, from each sale's first commission. The buyers' referral rows then
say who earns at each tier: a commission at tier N of a sale is paid through its buyer's
referral at tier N (accrual writes it so, referrals cannot be rewired; receipts read the
chain the same way). Totals by tier and by affiliate come from one grouping of those rows.
The window is read through indexes: its sales by payment time, its commissions by when they
become payable, which is never before their sale's payment (the hold period, 0 days or more,
counts from it), so older commissions are never read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache

from sqlalchemy import TextClause, text

from app.extensions import db
from app.models import ReferralProgramSettings
from app.money import minor_units
from app.services.program.program import get_settings
from app.services.program.rates import is_whole, percent
from app.services.program.settings import MAX_TIER_LEVEL
from app.services.program.tiers import TierRefused

WINDOWS = (30, 90)

_IN_WINDOW = "s.occurred_at >= :since AND s.amount IS NOT NULL AND NOT s.is_foreign_currency"
# For this statement only (the savepoint's rollback restores them): no JIT (compiling cost
# more than running it), no parallel workers (handing partial numeric sums between
# processes cost more than it saved), and room for the by-buyer sums (about 2 kB a buyer)
# to stay in memory instead of spilling to disk in batches.
_STATEMENT_SETTINGS = text(
    "SELECT set_config('jit', 'off', true), "
    "set_config('max_parallel_workers_per_gather', '0', true), "
    "set_config('work_mem', '32MB', true)"
)


def _draft_sums(base: str, levels: tuple[int, ...], paying: tuple[int, ...], where: str) -> str:
    """``ARRAY[...]`` of the draft at each of ``levels``: ``sum(round(base * rate))`` where
    the level pays, NULL where it does not."""
    sums = [
        f"sum(round({base} * :rate_{level}, :minor)){where}"
        if level in paying
        else "CAST(NULL AS numeric)"
        for level in levels
    ]
    return f"ARRAY[{', '.join(sums)}]"


@cache
def _replay(tiers: int, paying: tuple[int, ...]) -> TextClause:
    """The statement for today's commissions at tiers 1..``tiers`` and a draft paying the
    levels ``paying`` (rates bound as ``:rate_<level>``)."""
    levels = tuple(range(1, max(paying) + 1))
    today = ", ".join(
        f"sum(c.gross_amount) FILTER (WHERE c.tier = {tier})" for tier in range(1, tiers + 1)
    )
    return text(
        f"""
        WITH window_sales AS (
            SELECT s.buyer_id, count(*) FILTER (WHERE s.accrued_at IS NOT NULL) AS accrued,
                   sum(s.amount) AS revenue
            FROM sales s WHERE {_IN_WINDOW}
            GROUP BY s.buyer_id
        ),
        accrued AS (
            SELECT s.buyer_id, count(*) FILTER (WHERE c.tier = 1) AS sales,
                   ARRAY[{today}] AS today,
                   {_draft_sums("c.base_amount", levels, paying, " FILTER (WHERE c.tier = 1)")}
                       AS draft
            FROM commissions c JOIN sales s ON s.id = c.sale_id
            WHERE c.payable_at >= :since AND {_IN_WINDOW}
            GROUP BY s.buyer_id
        ),
        buyers AS (
            SELECT a.buyer_id, a.today,
                   CASE WHEN a.sales = w.accrued THEN a.draft ELSE (
                       SELECT {_draft_sums("first.base_amount", levels, paying, "")}
                       FROM sales s CROSS JOIN LATERAL (
                           SELECT c.base_amount FROM commissions c WHERE c.sale_id = s.id
                           ORDER BY c.tier LIMIT 1
                       ) first
                       WHERE s.buyer_id = a.buyer_id AND {_IN_WINDOW}
                   ) END AS draft
            FROM accrued a JOIN window_sales w ON w.buyer_id = a.buyer_id
        ),
        totals AS (
            SELECT r.referrer_id AS user_id, r.tier, GROUPING(r.tier) AS by_user,
                   sum(b.today[r.tier]) AS today,
                   sum(b.draft[r.tier])
                       FILTER (WHERE r.status <> 'cancelled' AND NOT u.is_suspended) AS draft
            FROM buyers b
            JOIN referrals r ON r.referred_user_id = b.buyer_id
            JOIN users u ON u.id = r.referrer_id
            GROUP BY GROUPING SETS ((r.tier), (r.referrer_id))
        )
        SELECT 'tier' AS kind, tier, NULL AS user_id, NULL AS username,
               coalesce(today, 0) AS today, coalesce(draft, 0) AS draft
        FROM totals
        WHERE by_user = 0 AND (today IS NOT NULL OR draft IS NOT NULL OR tier > {tiers})
        UNION ALL
        SELECT 'affiliate', NULL, top.user_id, u.username, top.today, top.draft
        FROM (
            SELECT user_id, coalesce(today, 0) AS today, coalesce(draft, 0) AS draft
            FROM totals WHERE by_user = 1 AND coalesce(draft, 0) <> coalesce(today, 0)
            ORDER BY abs(coalesce(draft, 0) - coalesce(today, 0)) DESC, user_id
            LIMIT 10
        ) top JOIN users u ON u.id = top.user_id
        UNION ALL
        SELECT 'revenue', NULL, NULL, NULL, coalesce(sum(revenue), 0), NULL FROM window_sales
        """  # noqa: S608 (put together from constants and level numbers; values are bound)
    )


@dataclass(frozen=True)
class Line:
    """Today's commissions and the draft's, for a tier or an affiliate."""

    label: str
    today: Decimal
    draft: Decimal

    @property
    def change(self) -> Decimal:
        return self.draft - self.today


@dataclass
class Simulation:
    days: int
    revenue: Decimal
    tiers: list[Line] = field(default_factory=list)
    affiliates: list[Line] = field(default_factory=list)

    @property
    def total(self) -> Line:
        zero = Decimal(0)
        return Line(
            "Total",
            sum((t.today for t in self.tiers), zero),
            sum((t.draft for t in self.tiers), zero),
        )

    def share(self, amount: Decimal) -> Decimal | None:
        """``amount`` as a percentage of the window's revenue (None without revenue)."""
        return (amount * 100 / self.revenue).quantize(Decimal("0.01")) if self.revenue else None


def paying_rates(
    settings: ReferralProgramSettings, draft_rates: dict[int, Decimal], max_tier: int
) -> dict[int, Decimal]:
    """The levels the draft pays and their rates, as accrual decides them: MLM on, each
    level up to ``max_tier`` at its draft rate, tier 1 without one at the default rate; MLM
    off, tier 1 alone at the default rate."""
    if not settings.is_mlm_enabled:
        return {1: settings.default_commission_rate}
    rates = {level: rate for level, rate in draft_rates.items() if level <= max_tier}
    return {1: settings.default_commission_rate, **rates}


def simulate(draft_rates: dict[int, Decimal], max_tier: int, days: int) -> Simulation:
    """Replay the last ``days`` days of sales under ``draft_rates`` (level -> fraction of the
    active tiers; a level absent pays nothing, tier 1 then the default rate) and ``max_tier``.
    Writes nothing: the statement runs in a savepoint that is rolled back."""
    settings = get_settings()
    rates = paying_rates(settings, draft_rates, max_tier)
    values = {
        "since": datetime.now(UTC) - timedelta(days=days),
        "minor": minor_units(settings.currency),
        **{f"rate_{level}": rate for level, rate in rates.items()},
    }
    # Today's commissions are summed for tiers 1..tiers. They are at most as deep as the max
    # tier was when they accrued, which the settings cap at MAX_TIER_LEVEL; the statement
    # also returns any deeper tier its buyers' referrals reach, then it runs again that deep.
    tiers = max(MAX_TIER_LEVEL, settings.max_tier_level)
    paying = tuple(sorted(rates))
    savepoint = db.session.begin_nested()
    try:
        db.session.execute(_STATEMENT_SETTINGS)
        rows = db.session.execute(_replay(tiers, paying), values).all()
        deepest = max((row.tier for row in rows if row.kind == "tier"), default=0)
        if deepest > tiers:
            rows = db.session.execute(_replay(deepest, paying), values).all()
    finally:
        savepoint.rollback()
    result = Simulation(days=days, revenue=Decimal(0))
    for row in sorted(rows, key=lambda row: row.tier or 0):
        if row.kind == "revenue":
            result.revenue = row.today
        elif row.kind == "tier":
            result.tiers.append(Line(f"Tier {row.tier}", row.today, row.draft))
    top = sorted(
        (row for row in rows if row.kind == "affiliate"),
        key=lambda row: (-abs(row.draft - row.today), row.user_id),
    )
    result.affiliates = [Line(row.username, row.today, row.draft) for row in top]
    return result


def parse_draft(args: dict[str, str], levels: int) -> tuple[dict[int, Decimal], int, int]:
    """Draft rates (``rate_1`` … ``rate_<levels>``, percentages; blank: no active tier), the
    draft max tier and the window from a query string; ``TierRefused`` lists bad fields."""
    errors, rates = {}, {}
    raw_max = args.get("max_tier", "").strip()
    if not is_whole(raw_max) or not 1 <= int(raw_max) <= MAX_TIER_LEVEL:
        errors["max_tier"] = f"A whole number from 1 to {MAX_TIER_LEVEL}."
    raw_days = args.get("days", "")
    if raw_days not in {str(d) for d in WINDOWS}:
        errors["days"] = "The last 30 or 90 days."
    for level in range(1, levels + 1):
        raw = args.get(f"rate_{level}", "").strip()
        if raw:
            try:
                rates[level] = percent(raw)
            except ValueError as problem:
                errors[f"rate_{level}"] = str(problem)
    if errors:
        raise TierRefused(errors)
    return rates, int(raw_max), int(raw_days)
