"""The reports' charts (``app/charts.py``): what each bar of each report shows."""

from __future__ import annotations

from dataclasses import dataclass

from app.charts import BarChart, Series, colour
from app.services.payouts.payouts import METHOD_NAMES
from app.services.reports.figures import Reports


@dataclass(frozen=True)
class ReportCharts:
    sales: BarChart
    commissions: BarChart
    funnel: BarChart
    earnings_per_click: BarChart
    top_affiliates: BarChart | None
    payouts: BarChart


def _time_axis(reports: Reports) -> tuple[list[str], list[str]]:
    """Axis labels and full names of the range's days or weeks."""
    starts = [row.start for row in reports.sales]
    week = "week from " if reports.range.unit == "week" else ""
    return [d.strftime("%d %b") for d in starts], [f"{week}{d:%Y-%m-%d}" for d in starts]


def report_charts(reports: Reports, currency: str) -> ReportCharts:
    labels, titles = _time_axis(reports)
    per = reports.range.unit
    total = reports.funnel_total
    tiers = reports.tiers
    top = reports.top_affiliates
    payouts = reports.payout_totals
    methods = sorted({method for method, _ in payouts})
    statuses = sorted({status for _, status in payouts})
    return ReportCharts(
        sales=BarChart(
            "sales",
            f"Sales per {per}, net of refunds",
            labels,
            titles,
            [Series("Net sales", colour(1))],
            [[row.net_amount] for row in reports.sales],
            currency=currency,
        ),
        commissions=BarChart(
            "commissions",
            f"Commissions per {per} (net), by tier",
            labels,
            titles,
            [Series(f"Tier {t}", colour(t)) for t in tiers],
            [[row.commissions.get(t, 0) for t in tiers] for row in reports.sales],
            currency=currency,
        ),
        funnel=BarChart(
            "funnel",
            "Clicks, sign-ups and paying referrals over the range",
            ["Clicks", "Sign-ups", "Paying referrals"],
            ["Clicks", "Sign-ups", "Paying referrals"],
            [Series("People", colour(1))],
            [[total.clicks], [total.signups], [total.paying_referrals]],
            horizontal=True,
        ),
        earnings_per_click=BarChart(
            "epc",
            f"Earnings per click, per {per}",
            labels,
            titles,
            [Series("Earnings per click", colour(6))],
            [[row.earnings_per_click or 0] for row in reports.funnel],
            currency=currency,
        ),
        top_affiliates=None
        if top is None
        else BarChart(
            "top-affiliates",
            f"The {len(top)} affiliates who earned most over the last {reports.range.preset} days",
            [a.username for a in top],
            [f"{a.rank}. {a.username}" for a in top],
            [Series("Earnings", colour(1))],
            [[a.earnings] for a in top],
            currency=currency,
            horizontal=True,
        ),
        payouts=BarChart(
            "payouts",
            "Payouts made in the range, by method and status",
            [METHOD_NAMES.get(m, m) for m in methods],
            [METHOD_NAMES.get(m, m) for m in methods],
            [Series(s.replace("_", " "), colour(n)) for n, s in enumerate(statuses, 1)],
            [[payouts.get((m, s), (0, 0))[1] for s in statuses] for m in methods],
            currency=currency,
            horizontal=True,
        ),
    )
