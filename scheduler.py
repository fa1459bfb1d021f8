"""Start RQ's cron scheduler: it enqueues the periodic jobs (scheduled payouts, hourly, and
once at start) for the workers to run.

python scheduler.py

One is enough; a second (a double deploy) is harmless: the jobs are idempotent.
"""

from __future__ import annotations

import argparse
import logging

from rq.cron import CronScheduler

from app import create_app
from app.jobs import scheduled_payouts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queue", help="queue for the jobs (default: the first of RQ_QUEUES)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    app = create_app()
    scheduler = CronScheduler(connection=app.extensions["redis"])
    scheduled_payouts.register(scheduler, args.queue or app.config["RQ_QUEUES"][0])
    scheduler.start()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
