"""Sending Stripe payouts: exactly one transfer per payout through every fault the fake
Stripe injects, over the official SDK (unpatched) and real PostgreSQL and Redis."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.jobs.payouts import send_payout_job
from app.jobs.queueing import get_queue
from app.jobs.webhooks import sweep
from app.models import Commission, Payout, PayoutAccount, User
from app.services.payouts.approvals import ActionRefused, reject
from app.services.payouts.payouts import DuplicateReference, complete_payout, start_processing
from app.services.payouts.transfers import (
    BALANCE_INSUFFICIENT,
    NO_ANSWER,
    RATE_LIMITED,
    STRIPE_ERROR,
    TransientStripeError,
    payouts_to_send,
)
from tests.factories import make_payout, make_user
from tests.payout_sending import available, settled, stripe_payout

TRANSFERS = "/v1/transfers"


def _send_failing(payout_id: str) -> None:
    with pytest.raises(TransientStripeError):
        send_payout_job(payout_id)


def test_a_payout_is_sent_as_one_transfer_naming_it(fake_stripe):
    payout = stripe_payout(fake_stripe)
    assert send_payout_job(payout.id) == "completed"
    payout = settled(fake_stripe, payout.id, "completed", transfers=1)
    (transfer,) = fake_stripe.transfers()
    assert transfer["amount"] == 6000 and transfer["currency"] == "usd"
    account = db.session.get(PayoutAccount, payout.payout_account_id)
    assert transfer["destination"] == account.stripe_account_id
    assert transfer["metadata"] == {"payout_id": payout.id, "user_id": payout.user_id}
    assert (payout.attempts, payout.waiting_reason) == (1, None)
    assert payout.first_attempted_at is not None
    paid = db.session.scalars(select(Commission).where(Commission.payout_id == payout.id)).all()
    assert [c.status for c in paid] == ["paid"]
    assert available(payout) == Decimal(0)


def test_running_the_job_again_sends_nothing_more(fake_stripe):
    payout = stripe_payout(fake_stripe)
    send_payout_job(payout.id)
    assert send_payout_job(payout.id) == "nothing"
    settled(fake_stripe, payout.id, "completed", transfers=1)
    assert fake_stripe.post_count(TRANSFERS) == 1


def test_no_answer_after_the_transfer_was_made_resumes_with_the_same_key(fake_stripe):
    payout = stripe_payout(fake_stripe)
    fake_stripe.faults.inject("timeout_after_success")
    _send_failing(payout.id)
    waiting = settled(fake_stripe, payout.id, "processing", transfers=1)
    assert (waiting.attempts, waiting.waiting_reason) == (1, NO_ANSWER)
    assert send_payout_job(payout.id) == "completed"  # Stripe replays the key's transfer
    payout = settled(fake_stripe, payout.id, "completed", transfers=1)
    assert fake_stripe.post_count(TRANSFERS) == 2 and payout.attempts == 1
    assert available(payout) == Decimal(0)


@pytest.mark.parametrize(
    ("fault", "reason"), [("rate_limited", RATE_LIMITED), ("server_error", STRIPE_ERROR)]
)
def test_a_429_or_a_500_waits_then_the_next_attempt_sends_once(fake_stripe, fault, reason):
    payout = stripe_payout(fake_stripe)
    fake_stripe.faults.inject(fault)
    _send_failing(payout.id)
    waiting = settled(fake_stripe, payout.id, "pending", transfers=0)
    assert (waiting.attempts, waiting.waiting_reason) == (1, reason)
    assert available(waiting) == Decimal(0)  # still reserved
    assert send_payout_job(payout.id) == "completed"
    payout = settled(fake_stripe, payout.id, "completed", transfers=1)
    assert (payout.attempts, payout.waiting_reason) == (2, None)


def test_a_short_platform_balance_leaves_the_payout_waiting_not_failed(fake_stripe):
    payout = stripe_payout(fake_stripe)
    fake_stripe.faults.inject("balance_insufficient")
    assert send_payout_job(payout.id) == "waiting"  # no quick retry: the sweeper tries later
    waiting = settled(fake_stripe, payout.id, "pending", transfers=0)
    assert waiting.waiting_reason == BALANCE_INSUFFICIENT
    assert available(waiting) == Decimal(0)
    assert payouts_to_send(timedelta(0)) == [payout.id]
    assert send_payout_job(payout.id) == "completed"
    settled(fake_stripe, payout.id, "completed", transfers=1)


def test_a_restricted_account_fails_the_payout_and_returns_the_reserve(fake_stripe):
    payout = stripe_payout(fake_stripe)
    fake_stripe.faults.inject("account_restricted")
    assert send_payout_job(payout.id) == "failed"
    failed = settled(fake_stripe, payout.id, "failed", transfers=0)
    assert failed.failure_reason.startswith("Stripe refused the account: ")
    assert available(failed) == Decimal("60.00")
    account = db.session.get(PayoutAccount, failed.payout_account_id)
    assert not account.is_ready  # read from Stripe again: the page says why


@pytest.mark.parametrize("state", ["restricted", "deauthorized"])
def test_readiness_is_checked_with_stripe_before_the_transfer(fake_stripe, state):
    payout = stripe_payout(fake_stripe)
    account = db.session.get(PayoutAccount, payout.payout_account_id)
    fake_stripe.set_account_state(account.stripe_account_id, state)
    assert send_payout_job(payout.id) == "failed"
    failed = settled(fake_stripe, payout.id, "failed", transfers=0)
    assert failed.failure_reason.startswith("The Stripe account cannot be paid: ")
    assert fake_stripe.post_count(TRANSFERS) == 0
    assert available(failed) == Decimal("60.00")


def test_a_retry_after_the_keys_were_pruned_adopts_the_transfer(fake_stripe):
    payout = stripe_payout(fake_stripe)
    fake_stripe.faults.inject("timeout_after_success")
    _send_failing(payout.id)
    # A day later Stripe has forgotten the key: the same key would make a second transfer.
    db.session.execute(
        update(Payout)
        .where(Payout.id == payout.id)
        .values(first_attempted_at=datetime.now(UTC) - timedelta(hours=25))
    )
    db.session.commit()
    fake_stripe.prune_idempotency_keys()
    assert send_payout_job(payout.id) == "completed"
    settled(fake_stripe, payout.id, "completed", transfers=1)
    assert fake_stripe.post_count(TRANSFERS) == 1  # found by its group, not sent again


def test_a_retry_from_pending_adopts_a_transfer_made_by_an_earlier_key(fake_stripe):
    """A 500 is indeterminate at Stripe (kept for its key): the next key looks first."""
    payout = stripe_payout(fake_stripe)
    fake_stripe.faults.inject("timeout_after_success")
    _send_failing(payout.id)
    db.session.execute(
        update(Payout).where(Payout.id == payout.id).values(status="pending", waiting_reason=None)
    )
    db.session.commit()
    assert send_payout_job(payout.id) == "completed"
    settled(fake_stripe, payout.id, "completed", transfers=1)
    assert fake_stripe.post_count(TRANSFERS) == 1


def test_a_transfer_id_is_the_reference_of_one_payout_only(fake_stripe):
    payout = stripe_payout(fake_stripe)
    send_payout_job(payout.id)
    sent = settled(fake_stripe, payout.id, "completed", transfers=1)
    other = make_payout(_other_earner(), method="stripe")
    start_processing(other)
    with pytest.raises(DuplicateReference):
        complete_payout(other, sent.transaction_reference)
    db.session.rollback()


def _other_earner():
    from tests.factories import make_chain, make_sale

    earner, buyer = make_chain(2)
    make_sale(buyer, "600.00", days_ago=40)
    return earner


def test_two_workers_at_once_make_one_transfer(app, fake_stripe):
    payout_id = stripe_payout(fake_stripe).id
    # The first worker's answer comes a second after the transfer: the second worker runs
    # meanwhile, finds the send lock taken and leaves the payout alone.
    fake_stripe.faults.inject("delay_after_success", stall_seconds=1.0)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        with app.app_context():
            barrier.wait()
            outcomes.append(send_payout_job(payout_id))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["completed", "nothing"]
    settled(fake_stripe, payout_id, "completed", transfers=1)
    assert fake_stripe.post_count(TRANSFERS) == 1


def test_lemon_squeezy_payouts_are_never_sent_by_a_worker(fake_stripe):
    payout = make_payout(_other_earner(), method="lemon_squeezy")
    assert get_queue().count == 0  # nothing requested for it
    assert send_payout_job(payout.id) == "nothing"
    assert db.session.get(Payout, payout.id).status == "pending"
    assert fake_stripe.post_count() == 0


def test_a_stripe_request_queues_its_send_after_the_commit(fake_stripe):
    payout = stripe_payout(fake_stripe)
    (job,) = get_queue().jobs
    assert (job.func, job.args) == (send_payout_job, (payout.id,))


def test_the_sweeper_sends_payouts_whose_job_was_lost(fake_stripe):
    payout = stripe_payout(fake_stripe)
    get_queue().empty()
    assert sweep() is False  # just requested: its job may still be queued
    assert sweep(payouts_after=timedelta(0)) is True
    (job,) = get_queue().jobs
    assert (job.func, job.args) == (send_payout_job, (payout.id,))


def test_an_admin_cannot_reject_a_payout_whose_transfer_stripe_made(fake_stripe):
    """Rejecting returns the reserve: after an attempt with no clear answer, Stripe is asked
    first, and a transfer it made completes the payout instead."""
    payout = stripe_payout(fake_stripe)
    admin = make_user(is_admin=True)
    fake_stripe.faults.inject("timeout_after_success")
    _send_failing(payout.id)
    db.session.execute(
        update(Payout).where(Payout.id == payout.id).values(status="pending", waiting_reason=None)
    )
    db.session.commit()
    with pytest.raises(ActionRefused, match="Stripe made this payout's transfer"):
        reject(payout, admin, "changed our mind")
    db.session.rollback()
    assert send_payout_job(payout.id) == "completed"
    settled(fake_stripe, payout.id, "completed", transfers=1)


def test_an_admin_rejects_a_retried_payout_once_stripe_confirms_no_transfer(fake_stripe):
    payout = stripe_payout(fake_stripe)
    admin = make_user(is_admin=True)
    fake_stripe.faults.inject("server_error")
    _send_failing(payout.id)
    fake_stripe.faults.inject("server_error", method="GET", path=TRANSFERS)
    with pytest.raises(ActionRefused, match="could not confirm"):
        reject(payout, admin, "changed our mind")
    db.session.rollback()
    reject(payout, admin, "changed our mind")
    db.session.commit()
    assert available(settled(fake_stripe, payout.id, "failed", transfers=0)) == Decimal("60.00")


def test_a_payout_of_an_affiliate_suspended_since_the_request_is_held_not_sent(fake_stripe):
    payout = stripe_payout(fake_stripe)
    db.session.execute(update(User).where(User.id == payout.user_id).values(is_suspended=True))
    db.session.commit()
    assert send_payout_job(payout.id) == "waiting"
    held = settled(fake_stripe, payout.id, "on_hold", transfers=0)
    assert "suspended" in held.waiting_reason
    assert fake_stripe.post_count(TRANSFERS) == 0
