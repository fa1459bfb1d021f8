"""RQ workers that run every job inside a fresh Flask app context, and sweep for lost work.

RQ's own maintenance pass (registry cleaning, and retrying its scheduler lock, which a crashed
worker holds for a minute) runs every ``MAINTENANCE_EVERY`` seconds instead of every ten
minutes, so retries with backoff resume soon after a crash. A worker built with ``sweeps=True``
also sweeps for lost webhook drains, sales and payout sends: at once when it starts, then
about every minute (``app.jobs.webhooks.sweep_if_due``), without RQ's scheduler.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from rq import SimpleWorker, Worker
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue

from app.extensions import db
from app.jobs.webhooks import sweep, sweep_if_due

MAINTENANCE_EVERY = 30  # seconds
# An idle worker wakes from its blocking dequeue every worker_ttl - 15 seconds to run the
# maintenance pass; RQ's default (420) would leave it asleep for almost seven minutes.
WORKER_TTL = MAINTENANCE_EVERY + 15


class _AppContextMixin:
    app: Flask
    sweeps: bool = False

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        # A new context per job gives each job its own session, removed at teardown.
        with self.app.app_context():
            return super().perform_job(job, queue, execution)  # type: ignore[misc]

    def run_maintenance_tasks(self) -> None:
        starting = self.last_cleaned_at is None  # type: ignore[attr-defined]
        super().run_maintenance_tasks()  # type: ignore[misc]
        if self.sweeps:
            self._sweep(starting)

    def _sweep(self, starting: bool) -> None:
        # At start anything unprocessed is swept, however young: the jobs of a crashed worker
        # or of a Redis outage are lost. A failing sweep must not stop the worker; the next
        # maintenance pass tries again.
        with self.app.app_context():
            try:
                if starting:
                    sweep(older_than=timedelta(0), payouts_after=timedelta(0))
                else:
                    sweep_if_due()
            except Exception:
                db.session.rollback()
                self.app.logger.exception("Sweep failed; the next maintenance pass retries")


class AppWorker(_AppContextMixin, Worker):
    """Forks a work horse per job: a crashing job cannot take the worker down."""

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        # Never share the parent's pooled connections with the forked child.
        with self.app.app_context():
            db.engine.dispose(close=False)
        super().main_work_horse(job, queue)


class AppSimpleWorker(_AppContextMixin, SimpleWorker):
    """Runs jobs in-process: no fork per job, for throughput on small idempotent jobs."""


WORKER_CLASSES = {"fork": AppWorker, "simple": AppSimpleWorker}


def build_worker(
    app: Flask, queues: list[str] | None = None, sweeps: bool = False
) -> Worker | SimpleWorker:
    """A worker on ``queues`` (default: ``RQ_QUEUES``); with ``sweeps`` it also sweeps for lost
    work (``worker.py`` does; in-process test workers do not)."""
    worker_class = WORKER_CLASSES[app.config["RQ_WORKER_CLASS"]]
    names = queues or app.config["RQ_QUEUES"]
    connection = app.extensions["redis"]
    worker = worker_class(
        [Queue(n, connection=connection) for n in names],
        connection=connection,
        maintenance_interval=MAINTENANCE_EVERY,
        worker_ttl=WORKER_TTL,
    )
    worker.app = app
    worker.sweeps = sweeps
    return worker
