"""The report views' refresh: every 5 minutes from RQ's cron scheduler (``scheduler.py``),
and when an admin asks for it (``/admin/reports``)."""

from __future__ import annotations

from rq.cron import CronScheduler

from app.extensions import db
from app.services.reports.refresh import refresh_reports

EVERY = 300  # seconds
TIMEOUT = 1800  # seconds: 5M commissions take about a minute (docs/benchmarks.md)


def refresh_reports_job() -> bool:
    """Refresh the report views on the primary and commit; False when another refresh was
    under way (this one then changed nothing). Run twice, it recomputes the same figures."""
    refreshed = refresh_reports()
    db.session.commit()
    return refreshed


def register(scheduler: CronScheduler, queue: str = "default") -> None:
    """The jobs RQ's cron scheduler enqueues."""
    scheduler.register(refresh_reports_job, queue, interval=EVERY, job_timeout=TIMEOUT)
