"""Two workers drain one network's events in parallel; both are killed with SIGKILL while a
batch is in flight; a restarted worker finishes the work, and the result is a clean run's:
every sale accrued once, the ledger, its running totals and every counter exact."""

from __future__ import annotations

import signal
import time

from sqlalchemy import func, select, text

from app.extensions import db
from app.models import Commission, Sale, WebhookEvent
from tests.factories import make_chain, make_user
from tests.ledger_checks import assert_ledger_invariant
from tests.signing import stripe_checkout, stripe_event, stripe_headers
from tests.test_sweeper import _start_worker, _stop, _wait_for

SALES = 600  # more than one batch (500), so the second worker has one too


def _in_flight(database: str) -> bool:
    """A batch is under way on the test database: a worker holds the accruals lock
    (shared: ``join_accruals``)."""
    return bool(
        db.session.scalar(
            text(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE a.datname = :db AND l.locktype = 'advisory' AND l.mode = 'ShareLock' "
                "AND l.granted"
            ),
            {"db": database},
        )
    )


def test_drains_killed_mid_batch_leave_a_clean_run_after_a_restart(app, client):
    *_, leader = make_chain(3)
    buyers = [make_user(referrer=leader) for _ in range(20)]
    for n in range(SALES):
        checkout = stripe_checkout(buyers[n % len(buyers)].id, 1000 + n, f"pi_kill_{n}")
        body = stripe_event("checkout.session.completed", checkout)
        assert (
            client.post("/webhooks/stripe", data=body, headers=stripe_headers(body)).status_code
            == 200
        )
    database = db.session.scalar(text("SELECT current_database()"))

    workers = [_start_worker(app), _start_worker(app)]
    try:
        assert _wait_for(lambda: _in_flight(database), 30), "no batch started"
    finally:
        for worker in workers:
            _stop(worker, signal.SIGKILL)
    time.sleep(0.5)  # PostgreSQL notices the dead connections and rolls their batches back
    db.session.rollback()
    done = db.session.scalar(select(func.count()).where(WebhookEvent.processed_at.is_not(None)))
    assert done < SALES, "the kill came after the work: nothing was in flight"

    restarted = _start_worker(app)
    try:
        finished = _wait_for(
            lambda: (
                db.session.scalar(select(func.count()).where(WebhookEvent.processed_at.is_(None)))
                == 0
            ),
            120,
        )
    finally:
        _stop(restarted, signal.SIGTERM)
    assert finished
    assert db.session.scalar(select(func.count()).select_from(Sale)) == SALES
    assert db.session.scalar(select(func.count()).select_from(Commission)) == 3 * SALES
    accrued_twice = db.session.scalar(
        text("SELECT count(*) FROM (SELECT commission_id FROM ledger_entries "
             "GROUP BY commission_id HAVING count(*) > 1) twice")
    )  # fmt: skip
    assert accrued_twice == 0
    assert_ledger_invariant()  # running totals, branch earnings
