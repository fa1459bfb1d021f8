"""The reports as CSV rows (header first), one row per day: what ``app/csv_stream.py``
streams for ``/admin/reports/<report>.csv``."""

from __future__ import annotations

from collections.abc import Iterator

from app.services.reports.figures import Reports

REPORTS = ("sales", "funnel", "affiliates", "payouts")


def csv_rows(report: str, reports: Reports) -> Iterator[tuple[object, ...]]:
    """``report`` (one of ``REPORTS``) of ``reports``; top affiliates only over a preset
    range (otherwise the header alone)."""
    if report == "sales":
        tiers = reports.tiers
        yield (
            "day", "sales", "sales_amount", "refunded_amount", "net_sales_amount",
            "foreign_currency_sales", "commissions_gross_amount",
            *(f"tier_{t}_commission_amount" for t in tiers), "commission_amount",
            "commission_share_of_net_sales",
        )  # fmt: skip
        for r in reports.sales:
            yield (
                r.start, r.sales, r.sales_amount, r.refunded_amount, r.net_amount,
                r.foreign_sales, r.gross_commissions, *(r.commissions.get(t, 0) for t in tiers),
                r.commission_amount, r.paid_out_share,
            )  # fmt: skip
    elif report == "funnel":
        yield (
            "day", "clicks", "signed_up_visitors", "signups", "paying_referrals",
            "signup_rate", "paying_rate", "earnings", "earnings_per_click",
        )  # fmt: skip
        for r in reports.funnel:
            yield (
                r.start, r.clicks, r.signed_up_visitors, r.signups, r.paying_referrals,
                r.signup_rate, r.paying_rate, r.earnings, r.earnings_per_click,
            )  # fmt: skip
    elif report == "affiliates":
        yield (
            "rank", "username", "user_id", "earnings", "referred_sales", "referred_sales_amount",
            "signups", "paying_referrals", "conversion",
        )  # fmt: skip
        for a in reports.top_affiliates or ():
            yield (
                a.rank, a.username, a.user_id, a.earnings, a.sales, a.sales_amount, a.signups,
                a.paying_referrals, a.conversion,
            )  # fmt: skip
    else:
        yield ("day", "payment_method", "status", "payouts", "amount")
        for p in reports.payouts:
            yield (p.start, p.payment_method, p.status, p.payouts, p.amount)
