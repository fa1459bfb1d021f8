"""Signed provider webhooks: stored once, processed by workers, converging in any order."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from redis import Redis
from sqlalchemy import func, select, text

from app.extensions import db
from app.jobs import webhooks as webhook_jobs
from app.jobs.queueing import get_queue, get_redis
from app.models import Commission, CustomerLink, Sale, WebhookEvent
from app.services.money.webhooks import MAX_ATTEMPTS
from tests.factories import make_chain
from tests.ledger_checks import assert_ledger_invariant
from tests.signing import (
    lemon_event,
    lemon_headers,
    run_jobs,
    stripe_checkout,
    stripe_event,
    stripe_headers,
    stripe_invoice,
)


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _commissions() -> dict[int, Decimal]:
    rows = db.session.execute(select(Commission.tier, Commission.amount))
    return {tier: amount for tier, amount in rows}


def _post_stripe(client, body: bytes, **kwargs):
    return client.post("/webhooks/stripe", data=body, headers=stripe_headers(body, **kwargs))


def _post_lemon(client, body: bytes, **kwargs):
    return client.post("/webhooks/lemonsqueezy", data=body, headers=lemon_headers(body, **kwargs))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Stripe-Signature": "t=1,v1=deadbeef"},
        "wrong secret",
        "too old",
    ],
    ids=["missing", "garbage", "wrong-secret", "expired"],
)
def test_a_bad_stripe_signature_is_400_with_nothing_stored(client, headers):
    body = stripe_event("checkout.session.completed", stripe_checkout("u1", 1000, "pi_bad"))
    if headers == "wrong secret":
        headers = stripe_headers(body, secret="whsec_other")
    elif headers == "too old":
        headers = stripe_headers(body, at=1_600_000_000)  # beyond the 300 s tolerance
    response = client.post("/webhooks/stripe", data=body, headers=headers)
    assert response.status_code == 400
    assert _count(WebhookEvent) == 0 and _count(Sale) == 0
    assert get_queue().count == 0


def test_a_bad_lemon_signature_is_400_with_nothing_stored(client):
    body = lemon_event("order_created", "orders", "1", {"status": "paid", "total": 100})
    response = _post_lemon(client, body, secret="not-the-secret")
    assert response.status_code == 400
    assert client.post("/webhooks/lemonsqueezy", data=body).status_code == 400
    assert _count(WebhookEvent) == 0 and get_queue().count == 0


def test_only_the_webhooks_are_exempt_from_csrf(app):
    exempt = app.extensions["csrf"]._exempt_views
    # The unsubscribe link's signed token is its permission (RFC 8058: a mail client
    # POSTs it without cookies or a token).
    assert exempt == {"app.webhooks.routes.receive", "app.auth.mail_preferences.unsubscribe"}


def test_stripe_checkout_is_stored_then_accrued_by_a_worker(app, client):
    _, _, _, buyer = make_chain(4)
    body = stripe_event("checkout.session.completed", stripe_checkout(buyer.id, 20000, "pi_1"))
    response = _post_stripe(client, body)
    assert response.status_code == 200 and response.json == {"received": True, "duplicate": False}
    assert _count(WebhookEvent) == 1 and get_queue().count == 1
    assert _count(Commission) == 0  # the worker does it
    run_jobs(app)
    assert _commissions() == {1: Decimal("20.00"), 2: Decimal("10.00"), 3: Decimal("5.00")}
    assert db.session.scalar(select(WebhookEvent.processed_at)) is not None
    assert_ledger_invariant()


def test_the_same_event_five_times_accrues_once(app, client):
    _, buyer = make_chain(2)
    body = stripe_event("checkout.session.completed", stripe_checkout(buyer.id, 5000, "pi_5"))
    answers = [_post_stripe(client, body).json["duplicate"] for _ in range(5)]
    assert answers == [False, True, True, True, True]
    run_jobs(app)
    webhook_jobs.process_webhook_event(db.session.scalar(select(WebhookEvent.id)))
    assert _commissions() == {1: Decimal("5.00")}
    assert db.session.scalar(text("SELECT count(*) FROM ledger_entries")) == 1


def test_refund_before_sale_and_partial_refunds_twice_converge(app, client):
    _root, buyer = make_chain(2)
    refund = {"id": "ch_1", "payment_intent": "pi_r", "currency": "usd", "amount_refunded": 2500}
    _post_stripe(client, stripe_event("charge.refunded", refund))
    run_jobs(app)
    assert db.session.scalar(select(Sale.amount)) is None  # the refund waits for its sale
    _post_stripe(
        client, stripe_event("checkout.session.completed", stripe_checkout(buyer.id, 10000, "pi_r"))
    )
    run_jobs(app)
    assert _commissions() == {1: Decimal("7.50")}
    for _ in range(2):  # a second, larger partial refund, delivered twice
        _post_stripe(client, stripe_event("charge.refunded", {**refund, "amount_refunded": 4000}))
    run_jobs(app)
    assert _commissions() == {1: Decimal("6.00")}
    assert_ledger_invariant()


def test_invoice_paid_finds_the_buyer_through_the_checkout_customer(app, client):
    _, buyer = make_chain(2)
    checkout = stripe_checkout(buyer.id, 0, "pi_sub", mode="subscription", customer="cus_9")
    _post_stripe(client, stripe_event("checkout.session.completed", checkout))
    invoice = stripe_invoice(
        "in_1", 3000, customer="cus_9", subscription="sub_9", payment_intent="pi_inv1"
    )
    _post_stripe(client, stripe_event("invoice.paid", invoice))
    _post_stripe(
        client, stripe_event("invoice.paid", {**invoice, "id": "in_2", "payment_intent": "pi_inv2"})
    )
    run_jobs(app)
    assert db.session.scalar(select(CustomerLink.user_id)) == buyer.id
    assert sorted(db.session.scalars(select(Commission.amount))) == [Decimal("3.00")] * 2


def test_an_unknown_buyer_is_kept_as_an_unattributed_sale(app, client):
    _post_stripe(
        client, stripe_event("checkout.session.completed", stripe_checkout(None, 999, "pi_u"))
    )
    run_jobs(app)
    sale = db.session.scalars(select(Sale)).one()
    assert (sale.buyer_id, sale.amount) == (None, Decimal("9.99"))
    assert _count(Commission) == 0


def test_a_dispute_holds_back_the_commission_until_won(app, client):
    _, buyer = make_chain(2)
    _post_stripe(
        client, stripe_event("checkout.session.completed", stripe_checkout(buyer.id, 10000, "pi_d"))
    )
    dispute = {
        "id": "dp_1",
        "charge": "ch_d",
        "payment_intent": "pi_d",
        "amount": 10000,
        "currency": "usd",
    }
    _post_stripe(client, stripe_event("charge.dispute.created", dispute))
    run_jobs(app)
    assert _commissions() == {1: Decimal("0.00")}
    _post_stripe(client, stripe_event("charge.dispute.closed", {**dispute, "status": "won"}))
    run_jobs(app)
    assert _commissions() == {1: Decimal("10.00")}


def test_lemon_squeezy_orders_renewals_and_refunds(app, client):
    _, buyer = make_chain(2)
    order = {"status": "paid", "total": 4000, "tax": 0, "currency": "USD", "customer_id": 7}
    _post_lemon(client, lemon_event("order_created", "orders", "11", order, buyer.id))
    renewal = {
        "total": 2000,
        "tax": 0,
        "currency": "USD",
        "subscription_id": 5,
        "billing_reason": "renewal",
    }
    initial = {**renewal, "billing_reason": "initial"}
    _post_lemon(
        client,
        lemon_event(
            "subscription_payment_success", "subscription-invoices", "21", initial, buyer.id
        ),
    )
    _post_lemon(
        client,
        lemon_event(
            "subscription_payment_success", "subscription-invoices", "22", renewal, buyer.id
        ),
    )
    refund = {**order, "refunded_amount": 1000, "updated_at": "2026-11-25T10:00:00Z"}
    for _ in range(2):  # redelivered: same derived event id
        _post_lemon(client, lemon_event("order_refunded", "orders", "11", refund, buyer.id))
    assert _count(WebhookEvent) == 4
    run_jobs(app)
    assert sorted(db.session.scalars(select(Commission.amount))) == [
        Decimal("2.00"),
        Decimal("3.00"),
    ]
    assert_ledger_invariant()


def test_redis_down_keeps_the_event_and_the_sweeper_accrues_it_later(app, client):
    _, buyer = make_chain(2)
    redis = app.extensions["redis"]
    app.extensions["redis"] = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    try:
        body = stripe_event("checkout.session.completed", stripe_checkout(buyer.id, 1000, "pi_x"))
        assert _post_stripe(client, body).status_code == 200
    finally:
        app.extensions["redis"] = redis
    assert _count(WebhookEvent) == 1 and get_queue().count == 0
    assert webhook_jobs.sweep() is False  # too young: its drain may still be coming
    assert webhook_jobs.sweep(older_than=timedelta(0)) is True
    run_jobs(app)
    assert _commissions() == {1: Decimal("1.00")}


def test_a_failing_event_notes_its_error_and_stays_for_a_retry(app, client, monkeypatch):
    _, buyer = make_chain(2)
    _post_stripe(
        client, stripe_event("checkout.session.completed", stripe_checkout(buyer.id, 1000, "pi_f"))
    )

    def broken(*_args):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr("app.services.money.webhooks.settle_sales", broken)
    event_pk = db.session.scalar(select(WebhookEvent.id))
    assert webhook_jobs.process_webhook_event(event_pk) == "failed"
    event = db.session.get(WebhookEvent, event_pk)
    db.session.refresh(event)
    assert (event.processed_at, event.attempts) == (None, 1)
    assert "database hiccup" in event.last_error
    assert _count(Sale) == 0  # the attempt rolled back whole
    monkeypatch.undo()
    assert webhook_jobs.process_webhook_event(event_pk) == "processed"
    assert _commissions() == {1: Decimal("1.00")}


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", "{}".encode("utf-16"), b"{}"])
def test_a_signed_body_that_is_not_an_event_is_refused(client, body):
    assert _post_lemon(client, body).status_code == 400
    response = _post_stripe(client, body)
    assert response.status_code == 400
    assert json.loads(response.data)["error"].startswith("signature rejected")
    assert _count(WebhookEvent) == 0


def test_a_burst_of_events_requests_one_drain(client):
    _, buyer = make_chain(2)
    for n in range(10):
        _post_stripe(
            client,
            stripe_event("checkout.session.completed", stripe_checkout(buyer.id, 100, f"pi_b{n}")),
        )
    assert _count(WebhookEvent) == 10 and get_queue().count == 1


def test_two_drains_at_once_process_each_event_once(app, client):
    from concurrent.futures import ThreadPoolExecutor

    _, _, buyer = make_chain(3)
    for n in range(40):
        _post_stripe(
            client,
            stripe_event("checkout.session.completed", stripe_checkout(buyer.id, 1000, f"pi_c{n}")),
        )

    def drain() -> int:
        with app.app_context():
            return webhook_jobs.drain_webhook_events_job(batch_size=7)

    with ThreadPoolExecutor(max_workers=3) as pool:
        done = list(pool.map(lambda _: drain(), range(3)))
    assert sum(done) == 40
    assert _count(Commission) == 80
    assert db.session.scalar(text("SELECT count(*) FROM ledger_entries")) == 80


def test_one_malformed_event_does_not_block_the_batch_and_is_parked_at_once(app, client):
    _, buyer = make_chain(2)
    for n in range(3):
        _post_stripe(
            client,
            stripe_event("checkout.session.completed", stripe_checkout(buyer.id, 1000, f"pi_g{n}")),
        )
    bad = stripe_checkout(buyer.id, 1000, "pi_bad_one")
    del bad["currency"]  # a payload we cannot read
    _post_stripe(client, stripe_event("checkout.session.completed", bad))
    # No retry can change a malformed event: the drain succeeds, the event waits for a person.
    assert webhook_jobs.drain_webhook_events_job() == 3
    assert _count(Commission) == 3
    parked = db.session.execute(
        select(WebhookEvent.last_error, WebhookEvent.attempts).where(
            WebhookEvent.processed_at.is_(None)
        )
    ).all()
    assert parked == [
        ("MalformedEvent: currency must be a 3-letter currency code, got None", MAX_ATTEMPTS)
    ]


def test_a_failing_drain_retries_with_backoff_then_rests_in_the_failed_registry(
    app, client, monkeypatch
):
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry

    _, buyer = make_chain(2)
    _post_stripe(
        client, stripe_event("checkout.session.completed", stripe_checkout(buyer.id, 1000, "pi_r1"))
    )
    job = get_queue().jobs[0]
    assert job.retries_left == 5 and job.retry_intervals == [5, 30, 120, 600, 1800]

    def broken(*_args):
        raise RuntimeError("provider payload we cannot handle")

    monkeypatch.setattr("app.services.money.webhooks.settle_sales", broken)
    run_jobs(app)
    assert job.id in ScheduledJobRegistry(queue=get_queue())  # retried in 5 s
    job.refresh()
    job.retries_left = 0
    job.save()
    get_queue().enqueue_job(job)
    run_jobs(app)
    failed = FailedJobRegistry(queue=get_queue())
    assert job.id in failed
    assert (
        "1 events failed"
        in job.fetch(job.id, connection=get_queue().connection).latest_result().exc_string
    )
    assert db.session.scalar(select(WebhookEvent.last_error)).startswith(
        "RuntimeError: provider payload"
    )


def test_a_signed_event_with_a_nul_character_is_refused_not_a_crash(client):
    body = stripe_event("checkout.session.completed", stripe_checkout("u\x00x", 100, "pi_nul"))
    assert b"\\u0000" in body
    assert _post_stripe(client, body).status_code == 400
    assert _count(WebhookEvent) == 0


@pytest.mark.parametrize("provider", ["stripe", "lemonsqueezy"])
def test_a_non_ascii_signature_header_is_a_400(client, provider):
    header = "Stripe-Signature" if provider == "stripe" else "X-Signature"
    value = "t=1,v1=ab\xe9" if provider == "stripe" else "ab\xe9"
    response = client.post(f"/webhooks/{provider}", data=b"{}", headers={header: value})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        b'{"meta": {"event_name": "order_created"}, "data": {"attributes": []}}',
        b'{"meta": {"event_name": 7}, "data": {"attributes": {}}}',
        b'{"meta": {"event_name": "x"}, "data": {"attributes": {"a": "\\ud800"}}}',
    ],
    ids=["attributes-list", "name-not-text", "lone-surrogate"],
)
def test_signed_lemon_bodies_we_cannot_read_are_400(client, body):
    assert _post_lemon(client, body).status_code == 400
    assert _count(WebhookEvent) == 0


def test_an_unknown_buyer_id_makes_an_unattributed_sale_not_a_failing_event(app, client):
    for n, buyer in enumerate(["no-such-user", "x" * 80, 12345]):
        checkout = stripe_checkout(buyer, 1000, f"pi_unk{n}")
        _post_stripe(client, stripe_event("checkout.session.completed", checkout))
    run_jobs(app)
    assert (
        db.session.scalar(text("SELECT count(*) FROM webhook_events WHERE processed_at IS NULL"))
        == 0
    )
    assert set(db.session.scalars(select(Sale.buyer_id))) == {None}


def test_a_subscription_payment_before_its_checkout_is_attributed_when_the_checkout_arrives(
    app, client
):
    _, buyer = make_chain(2)
    invoice = stripe_invoice(
        "in_early",
        5000,
        customer="cus_early",
        subscription="sub_e",
        payments={"data": [{"payment": {"payment_intent": "pi_inv_early"}}]},
    )
    _post_stripe(client, stripe_event("invoice.paid", invoice))
    run_jobs(app)
    assert db.session.scalar(select(Sale.buyer_id)) is None
    checkout = stripe_checkout(buyer.id, 0, "pi_x", mode="subscription", customer="cus_early")
    _post_stripe(client, stripe_event("checkout.session.completed", checkout))
    run_jobs(app)
    sale = db.session.scalars(select(Sale)).one()
    assert (sale.external_id, sale.buyer_id) == ("pi_inv_early", buyer.id)
    assert _commissions() == {1: Decimal("5.00")}


def test_a_dispute_closed_before_its_created_event_stays_closed(app, client):
    _, buyer = make_chain(2)
    _post_stripe(
        client, stripe_event("checkout.session.completed", stripe_checkout(buyer.id, 10000, "pi_o"))
    )
    dispute = {"id": "dp_o", "payment_intent": "pi_o", "amount": 10000, "currency": "usd"}
    _post_stripe(client, stripe_event("charge.dispute.closed", {**dispute, "status": "won"}))
    _post_stripe(
        client, stripe_event("charge.dispute.created", {**dispute, "status": "needs_response"})
    )
    run_jobs(app)
    assert _commissions() == {1: Decimal("10.00")}
    lost = {**dispute, "id": "dp_l", "payment_intent": "pi_l"}
    _post_stripe(
        client, stripe_event("checkout.session.completed", stripe_checkout(buyer.id, 10000, "pi_l"))
    )
    _post_stripe(client, stripe_event("charge.dispute.closed", {**lost, "status": "lost"}))
    run_jobs(app)
    assert sorted(_commissions_all()) == [Decimal("0.00"), Decimal("10.00")]


def _commissions_all() -> list[Decimal]:
    return list(db.session.scalars(select(Commission.amount)))


def test_lemon_renewal_refunds_reduce_the_renewal_commission(app, client):
    _, buyer = make_chain(2)
    renewal = {
        "total": 2000,
        "tax": 0,
        "currency": "USD",
        "subscription_id": 5,
        "billing_reason": "renewal",
    }
    _post_lemon(
        client,
        lemon_event(
            "subscription_payment_success", "subscription-invoices", "31", renewal, buyer.id
        ),
    )
    refund = {**renewal, "refunded_amount": 2000}
    _post_lemon(
        client,
        lemon_event(
            "subscription_payment_refunded", "subscription-invoices", "31", refund, buyer.id
        ),
    )
    run_jobs(app)
    assert db.session.scalar(select(Commission.status)) == "cancelled"


def _nested(depth: int) -> bytes:
    """``{"a": {"a": … 1 …}}``: ``depth`` objects, one inside the other."""
    return b'{"a": ' * (depth - 1) + b'{"a": 1' + b"}" * depth


@pytest.mark.parametrize("depth", [65, 1_000, 100_000])
def test_a_signed_event_nested_too_deep_is_400_not_a_crash(client, depth):
    stripe_body = b'{"id": "evt_deep", "type": "x", "data": ' + _nested(depth - 1) + b"}"
    lemon_body = b'{"meta": {"event_name": "x"}, "data": {"attributes": ' + _nested(depth - 2)
    lemon_body += b"}}"
    for response in (_post_stripe(client, stripe_body), _post_lemon(client, lemon_body)):
        assert response.status_code == 400
        assert response.get_json()["error"].startswith("signature rejected: signed, but")
    assert _count(WebhookEvent) == 0


def test_a_signed_event_nested_64_deep_is_stored(client):
    body = b'{"id": "evt_64", "type": "x", "data": ' + _nested(63) + b"}"
    assert _post_stripe(client, body).status_code == 200
    assert _count(WebhookEvent) == 1


def test_a_drain_stops_after_its_budget_and_requests_the_next(app, client):
    _, buyer = make_chain(2)
    for n in range(3):
        checkout = stripe_checkout(buyer.id, 1000, f"pi_budget{n}")
        _post_stripe(client, stripe_event("checkout.session.completed", checkout))
    get_queue().empty()
    get_redis().delete(webhook_jobs.DRAIN_FLAG)
    assert webhook_jobs.drain_webhook_events_job(batch_size=1, budget=0) == 1
    assert get_queue().count == 1  # the next drain carries on
    run_jobs(app)
    assert _count(Commission) == 3


def test_a_drain_with_a_backlog_brings_another_worker_in(app, client):
    """A full batch means more may wait: the drain requests another (one queued at most),
    so a second worker drains beside it instead of waiting for its budget to run out."""
    _, buyer = make_chain(2)
    for n in range(5):
        checkout = stripe_checkout(buyer.id, 1000, f"pi_backlog{n}")
        _post_stripe(client, stripe_event("checkout.session.completed", checkout))
    get_queue().empty()
    get_redis().delete(webhook_jobs.DRAIN_FLAG)
    assert webhook_jobs.drain_webhook_events_job(batch_size=2) == 5
    assert get_queue().count == 1  # for the second worker; the flag keeps it to one
    assert get_redis().exists(webhook_jobs.DRAIN_FLAG)
