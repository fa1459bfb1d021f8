"""The daily backup from RQ's cron scheduler (``scheduler.py``), registered only when
``BACKUP_DIR`` is set: a dump, then its verification (``app/services/ops/backups.py``)."""

from __future__ import annotations

from pathlib import Path

from flask import current_app
from rq.cron import CronScheduler

from app.config import direct_database_url
from app.extensions import db
from app.services.ops.backups import BackupError, create_backup, verify_backup

CRON = "15 3 * * *"  # daily, 03:15 UTC: after the night's scheduled payouts settle
TIMEOUT = 6 * 3600  # seconds: a dump and a restore of a large database


def run_backup_job() -> str:
    """Dump the database into ``BACKUP_DIR`` and verify the dump; both are audited. A
    failed verification fails the job (it shows among the failed jobs) with the
    differences. Run twice, it makes two dumps: harmless, the directory's retention keeps
    what it keeps."""
    url = direct_database_url(current_app.config)
    backup = create_backup(url, Path(current_app.config["BACKUP_DIR"]))
    db.session.commit()
    result = verify_backup(url, backup.dump)
    db.session.commit()
    if not result.passed:
        raise BackupError(f"{backup.dump.name} failed verification: " + "; ".join(result.problems))
    return backup.dump.name


def register(scheduler: CronScheduler, queue: str, backup_dir: str) -> None:
    """The daily backup, when there is a directory to write it to."""
    if backup_dir:
        scheduler.register(run_backup_job, queue, cron=CRON, job_timeout=TIMEOUT)
