"""Scheduled payouts: periods, who is paid and how much, once per period under repeats and
concurrency (real threads, each its own app context and session), approval, sending."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from rq.cron import CronScheduler
from sqlalchemy import func, select

from app.extensions import db
from app.jobs.payouts import enqueue_sends_job, send_payout_job
from app.jobs.queueing import get_queue, get_redis
from app.jobs.reports import refresh_reports_job
from app.jobs.scheduled_payouts import register, run_scheduled_payouts_job
from app.jobs.worker import build_worker
from app.models import AuditEntry, LedgerEntry, Payout, User
from app.services.money.commissions import adjust_for_refunds
from app.services.money.ledger import balances
from app.services.money.sales import record_dispute
from app.services.payouts.payouts import (
    PayoutRefused,
    complete_payout,
    payable_amount,
    request_payout,
    start_processing,
)
from app.services.payouts.schedule import next_run, period_key, run_scheduled_payouts
from tests.factories import (
    make_chain,
    make_payout,
    make_payout_account,
    make_sale,
    make_user,
    set_program,
)
from tests.services_under_test import ROOT

pytestmark = pytest.mark.usefixtures("ledger_holds")

# 22:30 there is already the next day in UTC.
UTC_MINUS_2 = timezone(-timedelta(hours=2))


def _earner(amount: str = "600.00", method: str | None = "stripe", days_ago: int = 40) -> User:
    """An affiliate who earned 10 % of a sale of ``amount`` (payable after 30 days), with a
    ready ``method`` account (``None``: none)."""
    root, buyer = make_chain(2)
    make_sale(buyer, amount, days_ago=days_ago)
    if method:
        make_payout_account(root, method)
    return root


def _run(now: datetime | None = None, limit: int = 1000) -> int:
    """A whole run, batch by batch, as the job does it."""
    made, after = 0, ""
    while after is not None:
        batch = run_scheduled_payouts(now, after=after, limit=limit)
        db.session.commit()
        made, after = made + batch.created, batch.next_after
    return made


def _payouts() -> dict[str, tuple[Decimal, str, str]]:
    rows = db.session.execute(
        select(Payout.user_id, Payout.amount, Payout.payment_method, Payout.status)
    )
    return {user: (amount, method, status) for user, amount, method, status in rows}


# --- periods -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frequency", "at", "key"),
    [
        ("daily", datetime(2026, 11, 26, 0, 0, tzinfo=UTC), "2026-11-26"),
        ("daily", datetime(2026, 11, 26, 23, 59, 59, tzinfo=UTC), "2026-11-26"),
        # 22:30 at UTC-2 is already the next day in UTC.
        (
            "daily",
            datetime(2026, 11, 26, 22, 30, tzinfo=timezone(-timedelta(hours=2))),
            "2026-11-27",
        ),
        ("weekly", datetime(2026, 11, 26, tzinfo=UTC), "2026-W48"),
        ("weekly", datetime(2026, 11, 29, 23, 59, tzinfo=UTC), "2026-W48"),  # Sunday
        ("weekly", datetime(2026, 11, 30, tzinfo=UTC), "2026-W49"),  # Monday
        ("weekly", datetime(2027, 1, 1, tzinfo=UTC), "2026-W53"),  # ISO year, not the calendar's
        ("weekly", datetime(2024, 12, 30, tzinfo=UTC), "2025-W01"),
        ("weekly", datetime(2026, 1, 4, tzinfo=UTC), "2026-W01"),
        ("monthly", datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC), "2026-11"),
        ("monthly", datetime(2026, 12, 1, tzinfo=UTC), "2026-12"),
        ("monthly", datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "2026-12"),
        ("monthly", datetime(2027, 1, 1, tzinfo=UTC), "2027-01"),
        ("monthly", datetime(2028, 2, 29, tzinfo=UTC), "2028-02"),
    ],
)
def test_a_period_key_names_the_utc_day_iso_week_or_month(frequency, at, key):
    assert period_key(frequency, at) == key


@pytest.mark.parametrize(
    ("frequency", "at", "day"),
    [
        ("daily", datetime(2026, 12, 31, 13, tzinfo=UTC), date(2027, 1, 1)),
        ("weekly", datetime(2026, 11, 26, tzinfo=UTC), date(2026, 11, 30)),
        ("weekly", datetime(2026, 11, 30, tzinfo=UTC), date(2026, 12, 7)),
        ("weekly", datetime(2026, 12, 29, tzinfo=UTC), date(2027, 1, 4)),
        ("monthly", datetime(2026, 1, 31, tzinfo=UTC), date(2026, 2, 1)),
        ("monthly", datetime(2026, 12, 15, tzinfo=UTC), date(2027, 1, 1)),
    ],
)
def test_the_next_run_is_the_start_of_the_next_period(frequency, at, day):
    assert next_run(at, frequency) == day
    assert period_key(frequency, datetime.combine(day, datetime.min.time(), UTC)) != period_key(
        frequency, at
    )


def test_the_next_run_follows_the_programs_frequency():
    set_program(payout_frequency="daily")
    assert next_run(datetime(2026, 11, 26, 9, tzinfo=UTC)) == date(2026, 11, 27)


def test_an_unknown_frequency_is_an_error():
    with pytest.raises(ValueError, match="Unknown payout frequency"):
        period_key("hourly", datetime.now(UTC))


# --- who is paid, how much ---------------------------------------------------------------------


def test_only_eligible_affiliates_are_paid_all_that_is_payable():
    stripe = _earner()
    lemon = _earner("700.00", "lemon_squeezy")
    both = _earner("800.00", "lemon_squeezy")
    make_payout_account(both, "stripe")  # both ready: Stripe first
    unready_stripe = _earner("800.00", "lemon_squeezy")
    make_payout_account(unready_stripe, "stripe", ready=False)  # falls back to Lemon Squeezy
    suspended = _earner()
    suspended.is_suspended = True
    # Not paid either: no account, an account Stripe cannot pay, below the minimum, and money
    # still in the hold period.
    _earner(method=None)
    make_payout_account(_earner(method=None), ready=False)
    _earner("499.00")
    _earner(days_ago=10)
    open_payout = _earner("1200.00")
    make_payout(open_payout, "50.00")  # pending: 70.00 left, but one payout at a time
    db.session.commit()
    root, buyer = make_chain(2)  # 50.00 available, 20.00 of it under an open dispute
    sale = make_sale(buyer, "300.00", days_ago=40, provider="stripe", external_id="pi_d")
    make_sale(buyer, "300.00", days_ago=40)
    record_dispute("stripe", "pi_d", Decimal("100.00"))
    adjust_for_refunds(sale)
    make_payout_account(root)
    db.session.commit()
    expected_payable = {u.id: payable_amount(u.id) for u in (stripe, lemon, both, unready_stripe)}
    assert payable_amount(root.id) == Decimal("30.00")  # below the minimum

    assert _run() == 4
    paid = _payouts()
    assert paid.pop(open_payout.id)[0] == Decimal("50.00")
    assert paid == {
        stripe.id: (Decimal("60.00"), "stripe", "pending"),
        lemon.id: (Decimal("70.00"), "lemon_squeezy", "pending"),
        both.id: (Decimal("80.00"), "stripe", "pending"),
        unready_stripe.id: (Decimal("80.00"), "lemon_squeezy", "pending"),
    }
    assert {u: amount for u, (amount, _, _) in paid.items()} == expected_payable
    for user in (stripe, lemon, both, unready_stripe):
        assert balances(user.id).available == 0
    scheduled = db.session.scalars(select(Payout).where(Payout.period.is_not(None))).all()
    assert {p.period for p in scheduled} == {period_key("monthly", datetime.now(UTC))}
    assert {p.requested_by for p in scheduled} == {None}
    audited = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "payout.scheduled")
    ).all()
    assert sorted(a.subject_id for a in audited) == sorted(p.id for p in scheduled)
    assert {a.details["period"] for a in audited} == {scheduled[0].period}


def test_a_disputed_commission_is_not_paid_out():
    root, buyer = make_chain(2)
    sale = make_sale(buyer, "600.00", days_ago=40, provider="stripe", external_id="pi_x")
    make_sale(buyer, "500.00", days_ago=40)
    record_dispute("stripe", "pi_x", Decimal("300.00"))
    adjust_for_refunds(sale)
    make_payout_account(root)
    db.session.commit()
    assert balances(root.id).available == Decimal("80.00")
    assert _run() == 1
    assert db.session.scalar(select(Payout.amount)) == Decimal("50.00")  # not the disputed 30


def test_nothing_is_paid_at_zero_even_without_a_minimum():
    set_program(min_payout_amount=0)
    nothing = make_user()
    make_payout_account(nothing)
    assert _run() == 0


def test_a_scheduled_payout_is_sent_once_its_transaction_commits(app):
    stripe = _earner()
    _earner(method="lemon_squeezy")  # settled by an admin
    assert run_scheduled_payouts().created == 2
    assert get_queue().count == 0
    db.session.commit()
    stripe_payout = db.session.scalar(select(Payout.id).where(Payout.user_id == stripe.id))
    (batch,) = get_queue().get_jobs()  # one job enqueues the batch's sends
    assert (batch.func, batch.args) == (enqueue_sends_job, ([stripe_payout],))
    _work_one(app)
    (send,) = get_queue().get_jobs()
    assert (send.func, send.args, send.retries_left) == (send_payout_job, (stripe_payout,), 5)


def _work_one(app) -> None:
    """Run the next queued job in an in-process worker."""
    app.config["RQ_WORKER_CLASS"] = "simple"
    try:
        build_worker(app, ["default"]).work(burst=True, max_jobs=1)
    finally:
        app.config["RQ_WORKER_CLASS"] = "fork"
    db.session.rollback()


def test_a_rolled_back_run_sends_nothing():
    _earner()
    run_scheduled_payouts()
    db.session.rollback()
    assert get_queue().count == 0 and _payouts() == {}


def test_with_approval_payouts_wait_for_one_or_two_admins_and_are_not_sent():
    set_program(payouts_need_approval=True, dual_approval_above=Decimal("65.00"))
    small, large = _earner("600.00"), _earner("700.00")
    assert _run() == 2
    rows = dict(db.session.execute(select(Payout.user_id, Payout.approvals_required)).all())
    assert rows == {small.id: 1, large.id: 2}
    assert {status for _, _, status in _payouts().values()} == {"awaiting_approval"}
    assert get_queue().count == 0


def test_without_approval_nothing_waits():
    _earner()
    _run()
    assert db.session.scalar(select(Payout.approvals_required)) == 0


# --- once per period -------------------------------------------------------------------------


def test_the_job_fired_twice_pays_once_per_period():
    users = [_earner() for _ in range(3)]
    assert run_scheduled_payouts_job() == 3
    assert run_scheduled_payouts_job() == 0
    assert len(_payouts()) == 3 and get_queue().count == 1  # one job enqueues the sends
    # Finished payouts free the users, yet the period's key stops a second one: more money
    # earned this period waits for the next.
    for user in users:
        payout = db.session.scalar(select(Payout).where(Payout.user_id == user.id))
        start_processing(payout)
        complete_payout(payout, f"tr_{payout.id}")
        make_sale(make_user(referrer=user), "600.00", days_ago=40)
    db.session.commit()
    assert _run() == 0
    next_period = datetime.now(UTC) + timedelta(days=32)
    assert _run(next_period) == 3
    assert {p for p in db.session.scalars(select(Payout.period))} == {
        period_key("monthly", datetime.now(UTC)),
        period_key("monthly", next_period),
    }


def test_batches_cover_everyone_once():
    users = [_earner() for _ in range(7)]
    make_user()  # no account: skipped between batches
    assert _run(limit=2) == 7
    assert set(_payouts()) == {u.id for u in users}


def test_the_scheduler_registration_enqueues_the_run_and_a_worker_makes_the_payouts(app):
    _earner()
    scheduler = CronScheduler(connection=get_redis())
    register(scheduler)
    (cron_job,) = scheduler.get_jobs()
    assert (cron_job.func, cron_job.interval) == (run_scheduled_payouts_job, 3600)
    assert [j.func for j in scheduler.enqueue_jobs()] == [run_scheduled_payouts_job]
    assert scheduler.enqueue_jobs() == []  # not again within the hour
    _work_one(app)
    assert len(_payouts()) == 1


def _together(app, calls: list) -> list[object]:
    """Each call in its own thread and app context, all released at once; what each
    returned (an exception is re-raised here)."""
    start = threading.Barrier(len(calls))

    def one(call):
        with app.app_context():
            try:
                start.wait()
                return call()
            finally:
                db.session.rollback()
                db.session.remove()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(one, calls))


def test_concurrent_runs_pay_once_per_period_without_deadlock(app):
    users = [_earner() for _ in range(24)]
    # Small batches: the runs interleave, each taking its batches' locks in id order.
    made = _together(app, [lambda: _run(limit=5) for _ in range(4)])
    assert sum(made) == 24
    assert len(_payouts()) == 24 and set(_payouts()) == {u.id for u in users}
    assert db.session.scalar(select(func.count()).where(LedgerEntry.kind == "payout")) == 24


def _request(user_id: str, amount: str | None):
    def call() -> str:
        try:
            request_payout(db.session.get(User, user_id), amount and Decimal(amount), "stripe")
            db.session.commit()
            return "requested"
        except PayoutRefused:
            return "refused"

    return call


def test_runs_concurrent_with_requests_never_reserve_more_than_the_balance(app):
    users = [_earner("1000.00") for _ in range(12)]  # 100.00 each
    calls = [lambda: _run(limit=4) for _ in range(2)]
    calls += [_request(u.id, None if n % 2 else "60.00") for n, u in enumerate(users)]
    answers = _together(app, calls)
    for user in users:
        payouts = db.session.scalars(select(Payout).where(Payout.user_id == user.id)).all()
        assert len(payouts) == 1  # the request's or the schedule's, never both
        assert sum(p.amount for p in payouts) <= Decimal("100.00")
        assert balances(user.id).available == Decimal("100.00") - payouts[0].amount
    requested = answers[2:].count("requested")
    assert requested + sum(answers[:2]) == 12


def test_a_run_waits_for_a_payout_being_made_and_pays_only_what_is_left(app):
    """The amount is read under the user's ledger lock: a payout requested and completed
    while the run starts (committed after it read nothing yet) is never paid twice."""
    set_program(min_payout_amount=Decimal("10.00"))
    user = _earner("1000.00")  # 100.00
    held, release = threading.Event(), threading.Event()

    def request_and_complete() -> None:
        with app.app_context():
            payout = request_payout(db.session.get(User, user.id), Decimal("60.00"), "stripe")
            start_processing(payout)
            complete_payout(payout, "tr_first")  # final: the open-payout index is no help
            db.session.flush()
            held.set()
            release.wait(10)
            db.session.commit()
            db.session.remove()

    def scheduled_run() -> None:
        with app.app_context():
            _run()
            db.session.remove()

    first = threading.Thread(target=request_and_complete)
    first.start()
    assert held.wait(10)
    run = threading.Thread(target=scheduled_run)
    run.start()
    run.join(0.5)
    assert run.is_alive()  # waiting for the user's ledger lock
    release.set()
    first.join(10)
    run.join(10)
    amounts = sorted(db.session.scalars(select(Payout.amount)))
    assert amounts == [Decimal("40.00"), Decimal("60.00")]
    assert balances(user.id).available == 0


def test_the_scheduler_process_enqueues_its_interval_jobs_when_it_starts(app):
    """The scheduled payouts and the reports' refresh both run once at start."""
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
    }
    scheduler = subprocess.Popen([sys.executable, "scheduler.py"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 30
        while get_queue().count < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        scheduler.terminate()
        assert scheduler.wait(timeout=30) == 0
    jobs = {job.func for job in get_queue().get_jobs()}
    assert jobs == {run_scheduled_payouts_job, refresh_reports_job}
