"""Redis connection, queues, and enqueueing that waits for the database commit.

Jobs are enqueued only after the transaction that created their inputs has committed, so a
worker never looks for rows that are not there yet, and a rolled back request enqueues nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from redis import Redis
from rq import Queue, Retry
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from app.extensions import db

_PENDING_KEY = "rq_after_commit"
# Jobs that touch money retry from seconds to half an hour; after the last retry they rest in
# RQ's failed registry with their traceback (and sweepers find the work they left undone).
RETRY = Retry(max=5, interval=[5, 30, 120, 600, 1800])
# Jobs enqueued in one Redis pipeline (one round trip) by enqueue_many.
ENQUEUE_CHUNK = 1000


@dataclass
class _PendingJob:
    func: Callable[..., Any]
    args: tuple
    queue: str
    options: dict = field(default_factory=dict)


def get_redis() -> Redis:
    return current_app.extensions["redis"]


def get_queue(name: str = "default") -> Queue:
    return Queue(name, connection=get_redis())


def enqueue_after_commit(
    func: Callable[..., Any], *args: Any, queue: str = "default", **options: Any
) -> None:
    """Enqueue ``func(*args)`` once the current session commits; dropped if it rolls back."""
    session = db.session()
    if not session.in_transaction():
        session.begin()  # so that a rollback before any SQL still discards the job
    session.info.setdefault(_PENDING_KEY, []).append(_PendingJob(func, args, queue, options))


def enqueue_many(
    func: Callable[..., Any], args_list: list[tuple], *, queue: str = "default", **options: Any
) -> None:
    """Enqueue ``func(*args)`` for each ``args`` of ``args_list`` now (no transaction to wait
    for: callers are jobs), ``ENQUEUE_CHUNK`` jobs per Redis round trip."""
    target = get_queue(queue)
    for start in range(0, len(args_list), ENQUEUE_CHUNK):
        chunk = args_list[start : start + ENQUEUE_CHUNK]
        target.enqueue_many([Queue.prepare_data(func, args, **options) for args in chunk])


def _after_commit(session: Session) -> None:
    pending: list[_PendingJob] = session.info.pop(_PENDING_KEY, [])
    for job in pending:
        try:
            get_queue(job.queue).enqueue(job.func, *job.args, **job.options)
        except Exception:
            # The committed rows stay the source of truth; a sweeper re-enqueues what was missed.
            current_app.logger.exception("Could not enqueue %s after commit", job.func.__name__)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # Runs after `after_commit`; whatever is still pending here belonged to a rolled back
    # root transaction. A rolled back savepoint keeps the outer transaction's jobs.
    if transaction.parent is None:
        session.info.pop(_PENDING_KEY, None)


def init_app(app: Flask) -> None:
    # Fail fast when Redis is down or stalls, so a request never hangs on it (RQ workers
    # raise the read timeout on their own connection for their blocking reads).
    app.extensions["redis"] = Redis.from_url(
        app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=2
    )
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_transaction_end", _after_transaction_end)
