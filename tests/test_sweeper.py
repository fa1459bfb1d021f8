"""Lost work is swept by the workers themselves: at every start, then about every minute,
without waiting for RQ's scheduler lock that a crashed worker still holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal

from redis import Redis
from sqlalchemy import select, text

from app.extensions import db
from app.jobs.queueing import get_queue, get_redis
from app.jobs.worker import build_worker
from app.models import Commission, WebhookEvent
from tests.factories import make_chain
from tests.services_under_test import ROOT
from tests.signing import stripe_checkout, stripe_event, stripe_headers

SCHEDULER_LOCK = "rq:scheduler-lock:default"


def _start_worker(app) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
    }
    return subprocess.Popen(
        [sys.executable, "worker.py", "--with-scheduler"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the scheduler process goes with it
    )


def _stop(worker: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(worker.pid, sig)
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=15)
    except ProcessLookupError:
        pass


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        db.session.rollback()  # see other connections' commits
        if condition():
            return True
        time.sleep(0.2)
    return False


def _store_while_redis_is_down(app, client, buyer_id: str) -> None:
    body = stripe_event("checkout.session.completed", stripe_checkout(buyer_id, 1000, "pi_crash"))
    redis = app.extensions["redis"]
    app.extensions["redis"] = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    try:
        response = client.post("/webhooks/stripe", data=body, headers=stripe_headers(body))
        assert response.status_code == 200
    finally:
        app.extensions["redis"] = redis
    assert get_queue().count == 0  # no drain was requested


def test_a_worker_restarted_right_after_a_kill_processes_what_came_meanwhile(app, client):
    _, buyer = make_chain(2)
    crashed = _start_worker(app)
    try:
        assert _wait_for(lambda: get_redis().exists(SCHEDULER_LOCK), 30), "no scheduler"
    finally:
        _stop(crashed, signal.SIGKILL)
    assert get_redis().exists(SCHEDULER_LOCK)  # held for another minute by the dead one
    _store_while_redis_is_down(app, client, buyer.id)

    restarted = _start_worker(app)
    try:
        processed = _wait_for(
            lambda: db.session.scalar(select(WebhookEvent.processed_at)) is not None, 30
        )
    finally:
        _stop(restarted, signal.SIGTERM)
    assert processed, "the event waited for RQ's scheduler"
    assert db.session.scalars(select(Commission.amount)).all() == [Decimal("1.00")]


def test_a_running_worker_sweeps_about_every_minute_without_rqs_scheduler(app, client):
    worker = build_worker(app, sweeps=True)
    assert worker.maintenance_interval <= 30 and worker.dequeue_timeout <= 30
    worker.run_maintenance_tasks()  # the start: nothing to sweep yet
    _, buyer = make_chain(2)
    _store_while_redis_is_down(app, client, buyer.id)
    db.session.execute(text("UPDATE webhook_events SET received_at = now() - interval '2 min'"))
    db.session.commit()

    worker.last_cleaned_at = datetime.now(UTC)
    worker.run_maintenance_tasks()
    assert get_queue().count == 1  # a drain
    worker.run_maintenance_tasks()
    assert get_queue().count == 1  # once a minute, whichever worker comes first
