"""Draining provider events in batches, with retries, and the sweeper for lost jobs (drains,
sales to settle, Stripe payouts to send, outbox mails due).

The sweep runs in the workers themselves (``app.jobs.worker``): once at every start, then
about every minute. It does not depend on RQ's scheduler, whose lock a crashed worker holds
for a minute and a new one retries only in its maintenance pass.

Volume: a drain job processes events 500 at a time (one accrual statement per batch); the
webhook endpoint requests a drain after each commit, but a short-lived Redis flag keeps at
most one drain waiting in the queue, so a burst of events costs a few jobs, not one each.
A drain that takes a full batch requests another, so while a backlog lasts every worker
drains (batches run in parallel), not only the one that started.
"""

from __future__ import annotations

import time
from datetime import timedelta

from flask import current_app
from psycopg import errors as pg_errors
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from app.extensions import db
from app.jobs.mail import send_mail_job
from app.jobs.payouts import send_payout_job
from app.jobs.queueing import RETRY, enqueue_many, get_queue, get_redis
from app.jobs.sales import settle_sales_job
from app.providers import MalformedEvent
from app.services.mail.outbox import mails_due, reclaim_stale
from app.services.money.sales import unaccrued_sale_ids
from app.services.money.webhooks import (
    claim_events,
    has_stale_events,
    process_events,
    record_failure,
)
from app.services.payouts.transfers import payouts_to_send

BATCH_SIZE = 500
DRAIN_FLAG = "webhooks:drain-requested"
DRAIN_FLAG_TTL = 30  # seconds: a lost drain job is re-requested by the next event anyway
DRAIN_BUDGET = 60  # seconds of work per drain job, far below RQ's default job timeout (180 s)
# Parallel batches can still deadlock in rare shapes (two batches linking the same
# customer's older sales); PostgreSQL aborts one, which is claimed again whole this many
# times before it falls back to one transaction per event.
MAX_BATCH_CONFLICTS = 3
SWEEP_FLAG = "webhooks:swept"
SWEEP_EVERY = 60  # seconds
SWEEP_AFTER = timedelta(seconds=60)  # an event this old without processing lost its job
# A Stripe payout pending or processing this long lost its job (or waits for funds, and is
# tried again): about one try per payout every few minutes.
PAYOUTS_AFTER = timedelta(minutes=5)


def is_lock_conflict(exc: BaseException) -> bool:
    """PostgreSQL aborted the transaction for a deadlock or a serialization failure: the
    same work can simply run again."""
    return isinstance(exc, DBAPIError) and isinstance(
        exc.orig, pg_errors.DeadlockDetected | pg_errors.SerializationFailure
    )


def request_drain() -> None:
    """Call after the commit that stored events. Never raises: if Redis is down the events
    stay stored, and the sweeper requests a drain once it is back."""
    try:
        if get_redis().set(DRAIN_FLAG, 1, nx=True, ex=DRAIN_FLAG_TTL):
            get_queue().enqueue(drain_webhook_events_job, retry=RETRY)
    except RedisError:
        current_app.logger.exception("Could not request a webhook drain; the sweeper will")


def drain_webhook_events_job(batch_size: int = BATCH_SIZE, budget: float = DRAIN_BUDGET) -> int:
    """Process unprocessed events, a batch per transaction, for about ``budget`` seconds (at
    least one batch); then request another drain and stop: a job that ran until a busy
    queue is empty would outlive RQ's job timeout and be killed mid-batch. Safe to run twice or on
    several workers at once. A batch that fails is retried event by event, so one bad event
    is noted (``last_error``) and skipped while the others go through; the job then fails
    (and RQ retries it with backoff) when an event may succeed later. Malformed events are
    parked for a person at once: no retry can change them."""
    get_redis().delete(DRAIN_FLAG)  # events stored from now on request another drain
    done, failed, parked, conflicts = 0, set(), set(), 0
    deadline = time.monotonic() + budget
    while event_pks := claim_events(batch_size, skip=failed | parked):
        try:
            done += process_events(event_pks)
            db.session.commit()
            if len(event_pks) == batch_size:
                request_drain()  # more waiting: another worker joins in (one queued at most)
        except Exception as exc:
            db.session.rollback()
            if is_lock_conflict(exc) and conflicts < MAX_BATCH_CONFLICTS:
                conflicts += 1  # a rare deadlock with a parallel batch: claim and try again
                continue
            for event_pk in event_pks:
                outcome = process_webhook_event(event_pk)
                if outcome == "failed":
                    failed.add(event_pk)
                elif outcome == "parked":
                    parked.add(event_pk)
                else:
                    done += 1
        if time.monotonic() > deadline:  # at least one batch per job, whatever the budget
            request_drain()
            break
    if failed:
        raise RuntimeError(f"{len(failed)} events failed; see webhook_events.last_error")
    return done


def process_webhook_event(event_pk: int) -> str:
    """Apply one event alone, in its own transaction: "processed", "failed" (noted on the
    event, to be retried) or "parked" (malformed: noted, and left for a person)."""
    try:
        process_events([event_pk])
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        is_malformed = isinstance(exc, MalformedEvent)
        record_failure(event_pk, f"{type(exc).__name__}: {exc}", is_final=is_malformed)
        db.session.commit()
        return "parked" if is_malformed else "failed"
    return "processed"


def sweep(older_than: timedelta = SWEEP_AFTER, payouts_after: timedelta = PAYOUTS_AFTER) -> bool:
    """Request a drain if an event waited longer than ``older_than``, settle sales whose
    job was lost (an admin's sale enqueued while Redis was down), and send Stripe payouts
    left ``pending`` or ``processing`` for ``payouts_after`` (a lost job, a worker killed
    mid-send, retries used up, or waiting for funds), and outbox mails that are due (a lost
    job, a refused attempt's backoff over, a worker dead mid-send: ``reclaim_stale``).
    Idempotent: drains, settling and sending may run twice. Whether there was anything to do."""
    stale = has_stale_events(older_than)
    if stale:
        get_queue().enqueue(drain_webhook_events_job, retry=RETRY)
    if sale_ids := unaccrued_sale_ids(older_than):
        get_queue().enqueue(settle_sales_job, sale_ids, retry=RETRY)
    payout_ids = payouts_to_send(payouts_after)
    for payout_id in payout_ids:
        get_queue().enqueue(send_payout_job, payout_id, retry=RETRY)
    reclaim_stale()
    db.session.commit()
    mail_ids = mails_due(pending_after=older_than)
    enqueue_many(send_mail_job, [(mail_id,) for mail_id in mail_ids])
    return stale or bool(sale_ids) or bool(payout_ids) or bool(mail_ids)


def sweep_if_due() -> bool:
    """``sweep()`` at most once per ``SWEEP_EVERY`` seconds, whichever worker asks first
    (a Redis key, not RQ's scheduler). Whether this call swept."""
    if not get_redis().set(SWEEP_FLAG, 1, nx=True, ex=SWEEP_EVERY):
        return False
    sweep()
    return True
