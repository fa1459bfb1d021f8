"""Scheduled payouts from RQ's cron scheduler (``scheduler.py``): an hourly job; the period
key makes every run after the first of a period a no-op for those already paid."""

from __future__ import annotations

from datetime import UTC, datetime

from rq.cron import CronScheduler

from app.extensions import db
from app.services.payouts.schedule import run_scheduled_payouts

EVERY = 3600  # seconds; the first run is when the scheduler starts
TIMEOUT = 1800  # seconds: 100,000 affiliates take well under a minute


def run_scheduled_payouts_job() -> int:
    """Make this period's scheduled payouts, one committed batch at a time (each batch's
    Stripe payouts are enqueued for sending after its commit); returns how many were made.
    Idempotent: a second run, or one in another scheduler's worker, makes none twice."""
    now = datetime.now(UTC)  # one period for the whole run, even across midnight
    made, after = 0, ""
    while after is not None:
        batch = run_scheduled_payouts(now, after=after)
        db.session.commit()
        made, after = made + batch.created, batch.next_after
    return made


def register(scheduler: CronScheduler, queue: str = "default") -> None:
    """The jobs RQ's cron scheduler enqueues."""
    scheduler.register(run_scheduled_payouts_job, queue, interval=EVERY, job_timeout=TIMEOUT)
