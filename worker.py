"""Start an RQ worker on the configured queues, each job inside the Flask app context.

python worker.py [--burst] [--with-scheduler]

Every worker sweeps for lost webhook drains and sales when it starts and about every minute
after; ``--with-scheduler`` also runs RQ's scheduler, which retries failed jobs with backoff.
"""

from __future__ import annotations

import argparse
import logging

from app import create_app
from app.jobs.worker import build_worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--with-scheduler", action="store_true", help="also run RQ's scheduler")
    parser.add_argument("--queues", nargs="*", help="queue names (default: RQ_QUEUES)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    app = create_app()
    worker = build_worker(app, args.queues, sweeps=True)
    worker.work(burst=args.burst, with_scheduler=args.with_scheduler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
