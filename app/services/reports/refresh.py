"""Refreshing the report views (migration 0018), always on the primary."""

from __future__ import annotations

from sqlalchemy import text

from app.extensions import db

# In refresh order: ``report_refreshed`` last, its one row is the time of the refresh.
REPORT_VIEWS = (
    "report_daily_sales",
    "report_daily_commissions",
    "report_daily_funnel",
    "report_top_affiliates",
    "report_daily_payouts",
    "report_refreshed",
)
_ONE_AT_A_TIME = text("SELECT pg_try_advisory_xact_lock(hashtext('reports:refresh'))")


def refresh_reports() -> bool:
    """Recompute every report view in the session's transaction; the caller commits.

    ``REFRESH MATERIALIZED VIEW CONCURRENTLY``: readers keep the previous figures while it
    runs and see all the new ones, with their time, at the commit. One refresh at a time
    (a transaction-level advisory lock, not waited for): a refresh that finds another under
    way changes nothing and returns False, that one's figures being as fresh. Running it
    twice in a row only recomputes the same figures."""
    if not db.session.scalar(_ONE_AT_A_TIME):
        return False
    for name in REPORT_VIEWS:
        db.session.execute(text(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {name}"))
    return True
