"""The daily digests ("new referrals", "commissions earned") from RQ's cron scheduler
(``scheduler.py``): one job a day that sends both."""

from __future__ import annotations

from rq.cron import CronScheduler

from app.extensions import db
from app.models import DIGEST_CATEGORIES
from app.services.mail.digests import drop_unwanted, send_digest_batch, today

CRON = "0 8 * * *"  # daily, 08:00 UTC: a morning mail in Europe, after the night's payouts
TIMEOUT = 3600  # seconds


def send_digests_job() -> dict[str, int]:
    """Queue today's digests, one transaction per batch of users; how many users got each
    kind. Run twice in a day, the second run queues nothing for anyone already mailed
    (``mail_digests`` holds the day). Takes no arguments: the day is today's (UTC)."""
    day = today()
    counts = {}
    for kind in sorted(DIGEST_CATEGORIES):
        drop_unwanted(kind)
        db.session.commit()
        counts[kind] = 0
        while claimed := send_digest_batch(kind, day):
            db.session.commit()
            counts[kind] += claimed
    return counts


def register(scheduler: CronScheduler, queue: str = "default") -> None:
    """The jobs RQ's cron scheduler enqueues."""
    scheduler.register(send_digests_job, queue, cron=CRON, job_timeout=TIMEOUT)
