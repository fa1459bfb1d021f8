"""Processing provider events, with retries, and the sweeper that catches lost jobs."""

from __future__ import annotations

import math
import time
from datetime import timedelta

from rq import Retry

from app.extensions import db
from app.jobs.queueing import enqueue_after_commit, get_queue
from app.services.webhooks import process_event, record_failure, unprocessed_event_ids

# Back off from seconds to half an hour; after the last retry the job rests in RQ's failed
# registry with its traceback, and the event (with last_error) waits for the sweeper.
RETRY = Retry(max=5, interval=[5, 30, 120, 600, 1800])
SWEEP_EVERY = 60  # seconds
SWEEP_AFTER = timedelta(seconds=60)  # an event this old without processing lost its job


def process_webhook_event_job(event_pk: int) -> bool:
    """Apply one stored event. Safe to run twice or concurrently (the event row is locked
    and processed once). A failure is noted on the event and re-raised for RQ's retry."""
    try:
        done = process_event(event_pk)
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        record_failure(event_pk, f"{type(exc).__name__}: {exc}")
        db.session.commit()
        raise
    return done


def enqueue_processing(event_pk: int) -> None:
    enqueue_after_commit(process_webhook_event_job, event_pk, retry=RETRY)


def sweep_webhook_events_job() -> int:
    """Enqueue every event left unprocessed, then schedule the next sweep."""
    queue = get_queue()
    event_ids = unprocessed_event_ids(SWEEP_AFTER)
    for event_pk in event_ids:
        queue.enqueue(process_webhook_event_job, event_pk, retry=RETRY)
    schedule_sweep()
    return len(event_ids)


def schedule_sweep() -> None:
    """The next sweep, by RQ's scheduler. Its job id names the minute it runs in, so any
    number of schedulers (or restarts) agree on one sweep per minute."""
    slot = math.ceil((time.time() + 1) / SWEEP_EVERY) * SWEEP_EVERY
    get_queue().enqueue_in(
        timedelta(seconds=slot - time.time()),
        sweep_webhook_events_job,
        job_id=f"sweep-webhook-events-{slot}",
    )
