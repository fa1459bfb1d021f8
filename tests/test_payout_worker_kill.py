"""A worker killed (SIGKILL) after Stripe made the transfer but before the commit: the next
worker resumes the payout with the same idempotency key, and there is still one transfer."""

from __future__ import annotations

import os
import signal
import time
from decimal import Decimal

from app.extensions import db
from app.models import Payout
from tests.payout_sending import available, settled, stripe_payout, worker_process


def test_a_worker_killed_between_the_transfer_and_the_commit_sends_once(app, fake_stripe):
    payout_id = stripe_payout(fake_stripe).id  # its send job is queued
    # Stripe makes the transfer, then holds the answer: the worker is killed meanwhile.
    fake_stripe.faults.inject("delay_after_success", stall_seconds=60)
    worker = worker_process(app, fake_stripe)
    try:
        deadline = time.monotonic() + 60
        while not fake_stripe.transfers() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert fake_stripe.transfers(), "the worker never called Stripe"
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=15)
    killed = settled(fake_stripe, payout_id, "processing", transfers=1)  # the evidence
    assert killed.attempts == 1 and killed.first_attempted_at is not None

    # The next worker sweeps at start (its job was lost with the killed one) and resumes.
    assert worker_process(app, fake_stripe).wait(timeout=120) == 0
    payout = settled(fake_stripe, payout_id, "completed", transfers=1)
    assert payout.attempts == 1  # same attempt, same key: Stripe replayed the transfer
    assert fake_stripe.post_count("/v1/transfers") == 2
    assert available(payout) == Decimal(0)
    assert (
        db.session.get(Payout, payout_id).transaction_reference == fake_stripe.transfers()[0]["id"]
    )
