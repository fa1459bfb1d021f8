"""What the admin health page shows about RQ: queues, failed and started jobs, workers and
the cron scheduler; and the retry of failed jobs.

Each part is a separate check (``app.services.ops.health.run_checks``), so Redis being down
shows as notes, never an error page. Listings are bounded (``JOBS_LISTED`` per queue).
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app
from rq import Queue, Worker, cron_job_registry
from rq.cron import CronScheduler
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.results import Result

from app.jobs.queueing import get_queue, get_redis
from app.models import User
from app.services.ops.audit import record
from app.services.ops.health import run_checks

JOBS_LISTED = 20  # failed and started jobs shown per queue, newest first


def queue_names() -> list[str]:
    """The configured queues, then any other queue RQ knows of."""
    names = list(current_app.config["RQ_QUEUES"])
    known = sorted(queue.name for queue in Queue.all(connection=get_redis()))
    return names + [name for name in known if name not in names]


def _last_error_line(job: Job) -> str:
    result = job.latest_result()
    if result is None or result.type != Result.Type.FAILED or not result.exc_string:
        return ""
    lines = [line for line in result.exc_string.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _jobs(registry_class: type, queue: Queue) -> list[Job]:
    registry = registry_class(queue=queue)
    ids = registry.get_job_ids(0, JOBS_LISTED - 1, desc=True, cleanup=False)
    return [job for job in Job.fetch_many(ids, connection=queue.connection) if job is not None]


def _queues() -> dict[str, object]:
    # Counts without RQ's cleanup: reading the page must not act on jobs (the workers'
    # maintenance moves abandoned ones to the failed registry).
    rows = []
    for name in queue_names():
        queue = get_queue(name)
        rows.append(
            {
                "name": name,
                "waiting": queue.count,
                "started": queue.started_job_registry.get_job_count(cleanup=False),
                "failed": queue.failed_job_registry.get_job_count(cleanup=False),
                "scheduled": queue.scheduled_job_registry.get_job_count(cleanup=False),
            }
        )
    return {"ok": True, "rows": rows}


def _failed() -> dict[str, object]:
    rows = [
        {
            "id": job.id,
            "queue": job.origin,
            "func": job.func_name,
            "ended_at": job.ended_at,
            "error": _last_error_line(job),
        }
        for name in queue_names()
        for job in _jobs(FailedJobRegistry, get_queue(name))
    ]
    return {"ok": True, "rows": rows}


def _started() -> dict[str, object]:
    rows = [
        {"id": job.id, "queue": job.origin, "func": job.func_name, "started_at": job.started_at}
        for name in queue_names()
        for job in _jobs(StartedJobRegistry, get_queue(name))
    ]
    return {"ok": True, "rows": rows}


def _workers() -> dict[str, object]:
    rows = [
        {
            "name": worker.name,
            "state": worker.get_state(),
            "queues": ", ".join(worker.queue_names()),
            "current_job": worker.get_current_job_id(),
            "heartbeat_at": worker.last_heartbeat,
        }
        for worker in Worker.all(connection=get_redis())
    ]
    return {"ok": bool(rows), "rows": rows}


def _scheduler() -> dict[str, object]:
    # RQ's cron scheduler heartbeats into a registry about every minute, and records when
    # each of its jobs was last enqueued (both kept by RQ for its own monitoring).
    redis = get_redis()
    schedulers = [
        {"name": scheduler.name, "heartbeat_at": scheduler.last_heartbeat}
        for scheduler in CronScheduler.all(redis, cleanup=False)
    ]
    enqueued = redis.zrange(cron_job_registry.get_registry_key(), 0, -1, withscores=True)
    jobs = [
        {"name": name.decode(), "enqueued_at": datetime.fromtimestamp(score, UTC)}
        for name, score in enqueued
    ]
    return {"ok": bool(schedulers), "schedulers": schedulers, "jobs": jobs}


def queue_panel() -> dict[str, dict[str, object]]:
    """Each part of the queue panel, as a check that never raises. Workers and the
    scheduler are not ok when none is alive."""
    return run_checks(
        {
            "queues": _queues,
            "failed": _failed,
            "started": _started,
            "workers": _workers,
            "scheduler": _scheduler,
        }
    )


def find_job(job_id: str) -> Job | None:
    """The job with this id, or None when Redis holds none (never was, or expired)."""
    try:
        return Job.fetch(job_id, connection=get_redis())
    except NoSuchJobError:
        return None


def retry_failed_job(job: Job, actor: User) -> bool:
    """Put a failed job back on its queue, audited (the entry commits with the request);
    False, with nothing recorded, when it is no longer failed: RQ takes a job out of the
    failed registry atomically, so two admins retrying it requeue it once."""
    error = _last_error_line(job)
    try:
        FailedJobRegistry(queue=get_queue(job.origin)).requeue(job)
    except InvalidJobOperation:
        return False
    record(
        "job.retried",
        actor_id=actor.id,
        subject_type="job",
        subject_id=job.id,
        func=job.func_name,
        queue=job.origin,
        error=error,
    )
    return True


def retry_all_failed_jobs(actor: User) -> int:
    """Put every failed job of every queue back on its queue; one audit entry with the ids."""
    retried = []
    for name in queue_names():
        registry = FailedJobRegistry(queue=get_queue(name))
        for job_id in registry.get_job_ids(cleanup=False):
            try:
                registry.requeue(job_id)
            except (InvalidJobOperation, NoSuchJobError):
                continue  # retried by someone else meanwhile, or expired
            retried.append(job_id)
    if retried:
        record("job.retried_all", actor_id=actor.id, job_ids=retried, count=len(retried))
    return len(retried)
