"""Reversed transfers (``transfer.reversed`` on the platform endpoint, signed as Stripe signs
it): the payout's money comes back, its commissions are unpaid again, audited, once."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from app.extensions import db
from app.jobs.payouts import send_payout_job
from app.models import AuditEntry, Commission, LedgerEntry, Payout, WebhookEvent
from app.providers.stripe_api import stripe_client
from app.services.payouts.reversals import reverse_payout
from tests.factories import make_chain, make_payout, make_sale
from tests.ledger_checks import assert_ledger_invariant
from tests.payout_sending import available, settled, stripe_payout
from tests.signing import run_jobs, stripe_event, stripe_headers


def _sent(fake_stripe) -> Payout:
    payout = stripe_payout(fake_stripe)
    send_payout_job(payout.id)
    return settled(fake_stripe, payout.id, "completed", transfers=1)


def _reverse_at_stripe(app, client, transfer_id: str, cents: int | None = None) -> None:
    params = {} if cents is None else {"amount": cents}
    stripe_client().v1.transfers.reversals.create(transfer_id, params=params)
    transfer = stripe_client().v1.transfers.retrieve(transfer_id).to_dict()
    body = stripe_event("transfer.reversed", transfer)
    assert (
        client.post("/webhooks/stripe", data=body, headers=stripe_headers(body)).status_code == 200
    )
    run_jobs(app)


def _audited(action: str) -> list[dict]:
    return [
        e.details for e in db.session.scalars(select(AuditEntry).where(AuditEntry.action == action))
    ]


def test_a_reversed_transfer_returns_the_money_and_unpays_its_commissions(app, client, fake_stripe):
    payout = _sent(fake_stripe)
    _reverse_at_stripe(app, client, payout.transaction_reference)
    payout = settled(fake_stripe, payout.id, "reversed", transfers=1)
    assert payout.reversed_at is not None
    assert available(payout) == Decimal("60.00")  # at once
    commissions = db.session.scalars(select(Commission).where(Commission.user_id == payout.user_id))
    assert [(c.status, c.payout_id) for c in commissions] == [("pending", None)]
    assert _audited("payout.reversed") == [
        {"reference": payout.transaction_reference, "commissions": 1}
    ]


def test_a_reversal_applies_once(app, client, fake_stripe):
    payout = _sent(fake_stripe)
    _reverse_at_stripe(app, client, payout.transaction_reference)
    transfer = fake_stripe.transfers()[0]
    body = stripe_event("transfer.reversed", transfer)  # another event about it
    client.post("/webhooks/stripe", data=body, headers=stripe_headers(body))
    run_jobs(app)
    entries = db.session.scalars(
        select(LedgerEntry.kind).where(LedgerEntry.payout_id == payout.id)
    ).all()
    assert entries == ["payout", "payout_reversal"]
    assert len(_audited("payout.reversed")) == 1
    assert_ledger_invariant()


def test_a_partial_reversal_is_left_for_an_admin(app, client, fake_stripe):
    payout = _sent(fake_stripe)
    _reverse_at_stripe(app, client, payout.transaction_reference, cents=1000)
    payout = settled(fake_stripe, payout.id, "completed", transfers=1)
    assert available(payout) == Decimal(0)
    assert _audited("payout.partly_reversed") == [
        {"reference": payout.transaction_reference, "amount_reversed": "10.00"}
    ]


def test_a_reversal_of_an_unknown_transfer_is_stored_and_ignored(app, client, fake_stripe):
    transfer = {
        "id": "tr_unknown",
        "object": "transfer",
        "amount": 5000,
        "amount_reversed": 5000,
        "currency": "usd",
        "metadata": {},
        "reversed": True,
    }
    body = stripe_event("transfer.reversed", transfer)
    assert (
        client.post("/webhooks/stripe", data=body, headers=stripe_headers(body)).status_code == 200
    )
    run_jobs(app)
    db.session.rollback()
    (event,) = db.session.scalars(select(WebhookEvent)).all()
    assert event.processed_at is not None and event.last_error is None
    assert_ledger_invariant()


def test_commissions_matched_with_a_reversed_payouts_money_are_unpaid_too():
    """50 then 50 paid out: the first matched no commission of 100, the second matched it
    with the first's money too; reversing the first unpays it."""
    earner, buyer = make_chain(2)
    make_sale(buyer, "1000.00", days_ago=40)  # one commission of 100.00
    first = make_payout(earner, "50.00", complete=True)
    second = make_payout(earner, "50.00", complete=True)
    commission = db.session.scalars(select(Commission)).one()
    assert commission.payout_id == second.id
    assert reverse_payout(first, "tr_first") is True
    assert reverse_payout(first, "tr_first") is False
    db.session.commit()
    assert (commission.status, commission.payout_id) == ("pending", None)
    assert available(first) == Decimal("50.00")
    assert_ledger_invariant()
