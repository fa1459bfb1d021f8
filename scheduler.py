"""Start RQ's cron scheduler: it enqueues the periodic jobs (scheduled payouts, hourly, and
once at start; the report views' refresh, every 5 minutes; the daily mail digests; the backup
and its verification, daily, when BACKUP_DIR is set) for the workers to run.

python scheduler.py

One is enough; a second (a double deploy) is harmless: the jobs are idempotent.
"""

from __future__ import annotations

import argparse
import logging

from rq.cron import CronScheduler

from app import create_app
from app.jobs import backups, digests, reports, scheduled_payouts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queue", help="queue for the jobs (default: the first of RQ_QUEUES)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    app = create_app()
    scheduler = CronScheduler(connection=app.extensions["redis"])
    queue = args.queue or app.config["RQ_QUEUES"][0]
    scheduled_payouts.register(scheduler, queue)
    reports.register(scheduler, queue)
    digests.register(scheduler, queue)
    backups.register(scheduler, queue, app.config["BACKUP_DIR"])
    scheduler.start()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
