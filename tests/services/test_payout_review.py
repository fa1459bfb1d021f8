"""Defects found reviewing the payouts money path: each test failed before its fix."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import update

from app.extensions import db
from app.jobs.payouts import send_payout_job
from app.jobs.webhooks import drain_webhook_events_job
from app.models import Payout
from app.providers.stripe_api import stripe_client
from app.services.payouts.approvals import hold, release
from app.services.payouts.transfers import TransientStripeError, transfer_group
from tests.factories import make_user
from tests.payout_sending import available, settled, stripe_payout
from tests.signing import run_jobs, stripe_event, stripe_headers


def _reversed_event(app, client, transfer_id: str) -> None:
    stripe_client().v1.transfers.reversals.create(transfer_id)
    transfer = stripe_client().v1.transfers.retrieve(transfer_id).to_dict()
    body = stripe_event("transfer.reversed", transfer)
    assert (
        client.post("/webhooks/stripe", data=body, headers=stripe_headers(body)).status_code == 200
    )
    run_jobs(app)


def test_reversing_a_duplicate_transfer_leaves_the_payout_paid_by_another(app, client, fake_stripe):
    """A second transfer naming the payout (made by hand in the Dashboard, say) is reversed
    to recover it: the payout was paid by its own transfer, which still stands, so its
    money must not come back to the balance a second time."""
    payout = stripe_payout(fake_stripe)
    send_payout_job(payout.id)
    payout = settled(fake_stripe, payout.id, "completed", transfers=1)
    duplicate = stripe_client().v1.transfers.create(
        params={
            "amount": 6000,
            "currency": "usd",
            "destination": fake_stripe.transfers()[0]["destination"],
            "transfer_group": transfer_group(payout.id),
            "metadata": {"payout_id": payout.id},
        }
    )
    _reversed_event(app, client, duplicate.id)
    payout = settled(fake_stripe, payout.id, "completed", transfers=2)
    assert available(payout) == Decimal(0)


def test_a_reversal_of_a_held_payouts_transfer_waits_for_its_completion(app, client, fake_stripe):
    """A payout whose transfer was made but unconfirmed (an answer that says nothing, like
    a 500, sent it back to pending) is held by an admin; Stripe reverses the transfer
    meanwhile. Released, the payout adopts the transfer and completes: the reversal must
    then reverse it, not be dropped because the payout was on hold when it came."""
    payout = stripe_payout(fake_stripe)
    fake_stripe.faults.inject("timeout_after_success")
    with pytest.raises(TransientStripeError):
        send_payout_job(payout.id)
    db.session.execute(
        update(Payout).where(Payout.id == payout.id).values(status="pending", waiting_reason=None)
    )
    db.session.commit()
    admin = make_user(is_admin=True)
    hold(db.session.get(Payout, payout.id), admin, "checking the account")
    db.session.commit()
    _reversed_event(app, client, fake_stripe.transfers()[0]["id"])
    release(db.session.get(Payout, payout.id), admin)
    db.session.commit()
    run_jobs(app)  # the send adopts the transfer
    drain_webhook_events_job()  # the reversal's retry
    payout = settled(fake_stripe, payout.id, "reversed", transfers=1)
    assert available(payout) == Decimal("60.00")


def _finish_first_request(fake_stripe, payout) -> None:
    """The request that held the payout's first key finishes now, at Stripe."""
    stripe_client().v1.transfers.create(
        params={
            "amount": 6000,
            "currency": "usd",
            "destination": fake_stripe.accounts()[0]["id"],
            "transfer_group": transfer_group(payout.id),
            "metadata": {"payout_id": payout.id, "user_id": payout.user_id},
            "description": f"Payout {payout.id}",
        },
        options={"idempotency_key": f"payout-{payout.id}-1"},
    )


def test_a_key_still_in_use_at_stripe_is_resumed_not_abandoned(fake_stripe):
    """A 409 (another request with the key is still running at Stripe, e.g. a worker's call
    that timed out on our side) is no answer: moving to a new key would look for the
    transfer before the running request made it, then make a second one."""
    payout = stripe_payout(fake_stripe)
    fake_stripe.faults.inject("idempotency_key_in_use")
    with pytest.raises(TransientStripeError):
        send_payout_job(payout.id)
    send_payout_job(payout.id)  # the job's retry
    _finish_first_request(fake_stripe, payout)
    settled(fake_stripe, payout.id, "completed", transfers=1)


def test_a_429_to_a_resumed_key_keeps_that_key(fake_stripe):
    """No answer for the first key (its request still runs at Stripe), then a 429 to its
    resume: the 429 says nothing of the first request, so the next try uses that key again."""
    payout = stripe_payout(fake_stripe)
    for fault in ("idempotency_key_in_use", "rate_limited"):
        fake_stripe.faults.inject(fault)
        with pytest.raises(TransientStripeError):
            send_payout_job(payout.id)
    send_payout_job(payout.id)
    _finish_first_request(fake_stripe, payout)
    settled(fake_stripe, payout.id, "completed", transfers=1)
