"""The what-if simulator: what the last 30 or 90 days of sales would have paid under draft
tier rates and a draft max tier, beside what they did pay. It writes nothing: one read-only,
set-based statement.

The replay follows the accrual rules (README, "Commission rules") on the sales that accrued
a commission in the window: each sale's base is the one its commissions kept; every
non-cancelled referral of its buyer up to the draft max tier earns ``round(base * rate)``
at the draft rate of its tier (tier 1 falls back to the default rate; MLM off: only tier 1,
at the default rate); suspended affiliates earn nothing. "Today" is what those sales
accrued (before refunds). Tiers above the current max tier count only once the backfill has
written their referral rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, INTEGER, NUMERIC

from app.extensions import db
from app.money import minor_units
from app.services.program.program import get_settings
from app.services.program.rates import is_whole, percent
from app.services.program.settings import MAX_TIER_LEVEL
from app.services.program.tiers import TierRefused

WINDOWS = (30, 90)

_SIMULATE = text(
    """
    WITH window_sales AS (
        SELECT s.id, s.buyer_id, s.amount FROM sales s
        WHERE s.occurred_at >= :since AND s.amount IS NOT NULL AND NOT s.is_foreign_currency
    ),
    today AS (
        SELECT c.sale_id, c.user_id, c.tier, c.gross_amount, c.base_amount
        FROM commissions c JOIN window_sales w ON w.id = c.sale_id
    ),
    bases AS (SELECT sale_id, max(base_amount) AS base FROM today GROUP BY sale_id),
    draft_tiers AS (SELECT * FROM unnest(:levels, :rates) AS d(level, rate)),
    draft AS (
        SELECT r.referrer_id AS user_id, r.tier,
               round(b.base * CASE WHEN NOT st.is_mlm_enabled THEN st.default_commission_rate
                                   ELSE coalesce(d.rate, CASE WHEN r.tier = 1
                                                         THEN st.default_commission_rate END)
                              END, :minor) AS amount
        FROM bases b
        JOIN window_sales w ON w.id = b.sale_id
        CROSS JOIN referral_program_settings st
        JOIN referrals r ON r.referred_user_id = w.buyer_id
        JOIN users u ON u.id = r.referrer_id
        LEFT JOIN draft_tiers d ON d.level = r.tier
        WHERE r.status <> 'cancelled' AND NOT u.is_suspended
          AND r.tier <= CASE WHEN st.is_mlm_enabled THEN :max_tier ELSE 1 END
    ),
    amounts AS (
        SELECT user_id, tier, gross_amount AS today, 0 AS draft FROM today
        UNION ALL
        SELECT user_id, tier, 0, coalesce(amount, 0) FROM draft
    )
    SELECT 'tier' AS kind, tier, NULL AS user_id, NULL AS username,
           sum(today) AS today, sum(draft) AS draft
    FROM amounts GROUP BY tier
    UNION ALL
    (SELECT 'affiliate', NULL, a.user_id, u.username, sum(a.today), sum(a.draft)
     FROM amounts a JOIN users u ON u.id = a.user_id
     GROUP BY a.user_id, u.username
     HAVING sum(a.draft) <> sum(a.today)
     ORDER BY abs(sum(a.draft) - sum(a.today)) DESC, a.user_id
     LIMIT 10)
    UNION ALL
    SELECT 'revenue', NULL, NULL, NULL, coalesce(sum(amount), 0), NULL FROM window_sales
    """
).bindparams(bindparam("levels", type_=ARRAY(INTEGER)), bindparam("rates", type_=ARRAY(NUMERIC)))


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


def simulate(draft_rates: dict[int, Decimal], max_tier: int, days: int) -> Simulation:
    """Replay the last ``days`` days of sales under ``draft_rates`` (level -> fraction of the
    active tiers; a level absent pays nothing, tier 1 then the default rate) and ``max_tier``.
    Reads only."""
    settings = get_settings()
    levels = sorted(draft_rates)
    rows = db.session.execute(
        _SIMULATE,
        {
            "since": datetime.now(UTC) - timedelta(days=days),
            "levels": levels,
            "rates": [draft_rates[level] for level in levels],
            "max_tier": max_tier,
            "minor": minor_units(settings.currency),
        },
    ).all()
    result = Simulation(days=days, revenue=Decimal(0))
    for row in sorted(rows, key=lambda row: row.tier or 0):
        if row.kind == "revenue":
            result.revenue = row.today
        elif row.kind == "tier":
            result.tiers.append(Line(f"Tier {row.tier}", row.today, row.draft))
        else:
            result.affiliates.append(Line(row.username, row.today, row.draft))
    result.affiliates.sort(key=lambda line: -abs(line.change))  # stable: ties by user id
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
