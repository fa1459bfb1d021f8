"""Money edge cases from the security review: malformed provider events are parked, sale
dates are bounded, every id of a payment finds its sale, tax stays out of the commission
base, lost disputes cancel, and a payment by an upline earner is held for review."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.jobs import webhooks as webhook_jobs
from app.models import Commission, ReferralFlag, ReferralProgramSettings, Sale, WebhookEvent
from app.services.money.commissions import adjust_for_refunds
from app.services.money.fraud import resolve_flag
from app.services.money.sales import record_refund
from app.services.money.webhooks import MAX_ATTEMPTS
from tests.conftest import log_in
from tests.factories import make_chain, make_sale, make_user
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


def _stripe(client, kind: str, obj: dict) -> None:
    body = stripe_event(kind, obj)
    response = client.post("/webhooks/stripe", data=body, headers=stripe_headers(body))
    assert response.status_code == 200


def _lemon(client, name: str, kind: str, object_id: str, attributes: dict, user_id=None) -> None:
    body = lemon_event(name, kind, object_id, attributes, user_id)
    response = client.post("/webhooks/lemonsqueezy", data=body, headers=lemon_headers(body))
    assert response.status_code == 200


def _drain_expecting_parked() -> list[str]:
    """Drain; malformed events do not fail the job, they are parked at once (no retry can
    change them). The errors left on them."""
    webhook_jobs.drain_webhook_events_job()
    left = db.session.execute(
        select(WebhookEvent.last_error, WebhookEvent.attempts).where(
            WebhookEvent.processed_at.is_(None)
        )
    ).all()
    assert all(attempts == MAX_ATTEMPTS for _, attempts in left)
    return [error for error, _ in left]


def _paid_sales() -> int:
    return db.session.scalar(select(func.count()).select_from(Sale).where(Sale.amount.is_not(None)))


# Item 7: far-future sale dates.


def test_a_far_future_invoice_is_parked_and_the_uplines_pages_stay_up(client):
    root, buyer = make_chain(2)
    invoice = stripe_invoice("in_far", 5000, metadata={"user_id": buyer.id})
    invoice["status_transitions"] = {"paid_at": 253402300799}  # 9999-12-31T23:59:59Z
    _stripe(client, "invoice.paid", invoice)
    errors = _drain_expecting_parked()
    assert len(errors) == 1 and errors[0].startswith("MalformedEvent: paid_at 9999-12-31")
    assert "cannot be in the future" in errors[0]
    assert _paid_sales() == 0
    log_in(client, root.email)
    assert client.get("/commissions").status_code == 200
    assert client.get("/commissions.csv").status_code == 200


def test_the_database_refuses_sale_and_payable_dates_out_of_range():
    _, buyer = make_chain(2)
    make_sale(buyer)
    for statement in (
        "UPDATE sales SET occurred_at = '9999-12-31T00:00:00Z'",
        "UPDATE sales SET occurred_at = '1999-12-31T00:00:00Z'",
        "UPDATE commissions SET payable_at = '9999-12-31T00:00:00Z'",
        "INSERT INTO sales (id, provider, external_id, amount, currency, occurred_at) "
        "VALUES ('s-far', 'manual', 'far', 1, 'USD', '3000-01-01T00:00:00Z')",
        "UPDATE referral_program_settings SET commission_base = 'gross'",
        "UPDATE sales SET tax_amount = amount + 1",
    ):
        with pytest.raises(IntegrityError):
            db.session.execute(text(statement))
            db.session.flush()
        db.session.rollback()


# Item 14: lenient parsing.


def _checkout_with(**changes) -> dict:
    checkout = stripe_checkout(None, 5000, "pi_m")
    for key, value in changes.items():
        if value is _MISSING:
            del checkout[key]
        else:
            checkout[key] = value
    return checkout


_MISSING = object()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"amount_total": 5000.9}, "amount_total must be a whole number"),
        ({"amount_total": True}, "amount_total must be a whole number"),
        ({"amount_total": "5000"}, "amount_total must be a whole number"),
        ({"amount_total": -1}, "amount_total must be a whole number"),
        ({"amount_total": 10**20}, "amount_total must be a whole number"),
        ({"amount_total": _MISSING}, "amount_total must be a whole number"),
        ({"currency": "USD "}, "currency must be a 3-letter currency code"),
        ({"currency": "usd\n"}, "currency must be a 3-letter currency code"),
        ({"currency": "ÜSD"}, "currency must be a 3-letter currency code"),
        ({"currency": _MISSING}, "currency must be a 3-letter currency code"),
        ({"total_details": None}, "total_details must be an object"),
        ({"total_details": {"amount_tax": 6000}}, "the tax 60.00 is not within the amount"),
        ({"payment_intent": None, "id": None}, "names no payment"),
    ],
)
def test_a_malformed_stripe_checkout_is_parked_with_a_clear_error(client, changes, message):
    _stripe(client, "checkout.session.completed", _checkout_with(**changes))
    errors = _drain_expecting_parked()
    assert len(errors) == 1 and errors[0].startswith("MalformedEvent: ") and message in errors[0]
    assert db.session.scalar(select(func.count()).select_from(Sale)) == 0


@pytest.mark.parametrize(
    ("kind", "obj", "message"),
    [
        (
            "charge.refunded",
            {"id": "ch_m", "payment_intent": "pi_m", "currency": "usd", "amount_refunded": 1.5},
            "amount_refunded must be a whole number",
        ),
        (
            "charge.dispute.created",
            {"charge": "ch_m", "payment_intent": "pi_m", "amount": 100},
            "currency must be a 3-letter currency code",
        ),
        (
            "invoice.paid",
            {**stripe_invoice("in_m", 100), "status_transitions": {"paid_at": "1760000000"}},
            "paid_at must be Unix seconds",
        ),
        (
            "invoice.paid",
            {**stripe_invoice("in_m", 100), "status_transitions": {"paid_at": 0}},
            "cannot be before 2000",
        ),
    ],
)
def test_malformed_stripe_refunds_disputes_and_invoices_are_parked(client, kind, obj, message):
    _stripe(client, kind, obj)
    errors = _drain_expecting_parked()
    assert len(errors) == 1 and errors[0].startswith("MalformedEvent: ") and message in errors[0]
    assert db.session.scalar(select(func.count()).select_from(Sale)) == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"currency": None}, "currency must be a 3-letter currency code"),
        ({"total": "4000"}, "total must be a whole number"),
        ({"tax": None}, "tax must be a whole number"),
        ({"created_at": "2026-13-01T00:00:00Z"}, "created_at must be an ISO 8601 time"),
        ({"created_at": "2026-01-01T00:00:00"}, "has no time zone"),
        ({"created_at": "9999-12-31T00:00:00Z"}, "cannot be in the future"),
    ],
)
def test_a_malformed_lemon_order_is_parked_with_a_clear_error(client, changes, message):
    _, buyer = make_chain(2)
    order = {"status": "paid", "total": 4000, "tax": 0, "currency": "USD", **changes}
    if order["currency"] is None:
        del order["currency"]  # no currency is not USD
    _lemon(client, "order_created", "orders", "41", order, buyer.id)
    errors = _drain_expecting_parked()
    assert len(errors) == 1 and errors[0].startswith("MalformedEvent: ") and message in errors[0]
    assert db.session.scalar(select(func.count()).select_from(Sale)) == 0


# Item 16: every id of one payment finds its sale.


def _checkout_without_intent(buyer_id: str) -> dict:
    return stripe_checkout(buyer_id, 10000, None, id="cs_noint", invoice="in_noint")


def _charge_refunded() -> dict:
    return {
        "id": "ch_noint",
        "object": "charge",
        "payment_intent": None,
        "invoice": "in_noint",
        "currency": "usd",
        "amount_refunded": 10000,
    }


@pytest.mark.parametrize("refund_first", [False, True], ids=["sale-first", "refund-first"])
def test_a_refund_finds_a_sale_paid_without_a_payment_intent(app, client, refund_first):
    _, buyer = make_chain(2)
    events = [
        ("checkout.session.completed", _checkout_without_intent(buyer.id)),
        ("charge.refunded", _charge_refunded()),
    ]
    for kind, obj in reversed(events) if refund_first else events:
        _stripe(client, kind, obj)
        run_jobs(app)
    sale = db.session.scalars(select(Sale)).one()
    assert (sale.amount, sale.refunded_amount) == (Decimal("100.00"), Decimal("100.00"))
    assert db.session.scalar(select(Commission.status)) == "cancelled"
    keys = db.session.scalars(text("SELECT key FROM sale_keys ORDER BY key"))
    assert list(keys) == ["ch_noint", "cs_noint", "in_noint"]
    assert_ledger_invariant()


def test_a_refund_seen_under_another_id_first_is_folded_into_the_sale(app, client):
    _, buyer = make_chain(2)
    # Two refund reports that share no id create two refund-only rows; the sale names both.
    _stripe(client, "charge.refunded", {**_charge_refunded(), "invoice": None})
    refund = {**_charge_refunded(), "id": "ch_other", "amount_refunded": 2500}
    _stripe(client, "charge.refunded", {**refund, "invoice": "in_noint"})
    run_jobs(app)
    assert db.session.scalar(select(func.count()).select_from(Sale)) == 2
    checkout = _checkout_without_intent(buyer.id)
    checkout["payment_intent"] = {"id": "pi_exp", "latest_charge": "ch_noint"}
    _stripe(client, "checkout.session.completed", checkout)
    run_jobs(app)
    sale = db.session.scalars(select(Sale)).one()
    assert (sale.amount, sale.refunded_amount) == (Decimal("100.00"), Decimal("100.00"))
    assert db.session.scalar(select(Commission.status)) == "cancelled"


# Item 17: a dispute lost for the full amount.


def test_a_dispute_lost_for_the_full_amount_cancels_the_commissions(app, client):
    _, _, buyer = make_chain(3)
    _stripe(client, "checkout.session.completed", stripe_checkout(buyer.id, 10000, "pi_lost"))
    dispute = {"id": "dp_lost", "payment_intent": "pi_lost", "amount": 10000, "currency": "usd"}
    _stripe(client, "charge.dispute.created", dispute)
    run_jobs(app)
    assert set(db.session.scalars(select(Commission.status))) == {"pending"}  # may be won
    _stripe(client, "charge.dispute.closed", {**dispute, "status": "lost"})
    run_jobs(app)
    assert set(db.session.scalars(select(Commission.status))) == {"cancelled"}
    assert_ledger_invariant()


# Item 18: tax and the hold start.


def _tier_one() -> Commission:
    return db.session.scalars(select(Commission).where(Commission.tier == 1)).one()


def test_commissions_are_on_the_amount_net_of_tax_and_refunds_reduce_it_in_proportion(app, client):
    _, buyer = make_chain(2)
    checkout = stripe_checkout(buyer.id, 12000, "pi_tax", tax=2000)
    _stripe(client, "checkout.session.completed", checkout)
    run_jobs(app)
    commission = _tier_one()
    assert (commission.base_amount, commission.amount) == (Decimal("100.00"), Decimal("10.00"))
    assert commission.base_includes_tax is False
    refund = {"id": "ch_tax", "payment_intent": "pi_tax", "currency": "usd"}
    _stripe(client, "charge.refunded", {**refund, "amount_refunded": 3000})  # a quarter
    run_jobs(app)
    db.session.refresh(commission)
    assert commission.amount == Decimal("7.50")
    assert_ledger_invariant()


def test_the_program_can_pay_on_the_total_including_tax(app, client):
    db.session.execute(update(ReferralProgramSettings).values(commission_base="including_tax"))
    db.session.commit()
    _, buyer = make_chain(2)
    _stripe(
        client, "checkout.session.completed", stripe_checkout(buyer.id, 12000, "pi_i", tax=2000)
    )
    invoice = stripe_invoice("in_tax", 3300, tax=300, metadata={"user_id": buyer.id})
    _stripe(client, "invoice.paid", {**invoice, "payment_intent": "pi_inv_tax"})
    run_jobs(app)
    assert sorted(db.session.scalars(select(Commission.amount))) == [
        Decimal("3.30"),
        Decimal("12.00"),
    ]
    assert set(db.session.scalars(select(Commission.base_includes_tax))) == {True}


def test_invoices_and_lemon_squeezy_sales_leave_their_tax_out(app, client):
    _, buyer = make_chain(2)
    invoice = stripe_invoice("in_tx", 3300, tax=300, metadata={"user_id": buyer.id})
    _stripe(client, "invoice.paid", {**invoice, "payment_intent": "pi_inv_tx"})
    order = {"status": "paid", "total": 5000, "tax": 1000, "currency": "USD"}
    _lemon(client, "order_created", "orders", "51", order, buyer.id)
    run_jobs(app)
    assert sorted(db.session.scalars(select(Commission.amount))) == [
        Decimal("3.00"),
        Decimal("4.00"),
    ]


def test_the_hold_starts_when_the_checkout_was_paid_not_when_it_was_opened(app, client):
    _, buyer = make_chain(2)
    opened = int(time.time()) - 40 * 86400  # a session left open for 40 days, then paid
    checkout = stripe_checkout(buyer.id, 1000, "pi_late", created=opened)
    _stripe(client, "checkout.session.completed", checkout)
    run_jobs(app)
    paid = datetime.now(UTC)
    assert _tier_one().payable_at > paid + timedelta(days=29)


# Item 19: the net sale on the commissions page and in the CSV.


def test_the_commissions_page_and_csv_show_the_sale_net_of_refunds(client):
    root, buyer = make_chain(2)
    sale_id = make_sale(buyer, "100.00", provider="stripe", external_id="pi_net")
    record_refund("stripe", "pi_net", Decimal("40.00"))
    adjust_for_refunds(sale_id)
    db.session.commit()
    log_in(client, root.email)
    page = client.get("/commissions").get_data(as_text=True)
    assert "60.00 USD" in page and "100.00 USD" not in page
    rows = list(csv.DictReader(io.StringIO(client.get("/commissions.csv").get_data(as_text=True))))
    assert [(r["sale_amount_net"], r["sale_amount_net_tax"], r["amount"]) for r in rows] == [
        ("60.00", "excluded", "6.00")
    ]


# Item 15: a payment by an upline earner.


def test_a_payment_with_an_upline_earners_email_is_held_for_review(app, client):
    root, middle, buyer = make_chain(3)
    admin = make_user(is_admin=True)
    checkout = stripe_checkout(buyer.id, 10000, "pi_self", email=f" {root.email.upper()} ")
    _stripe(client, "checkout.session.completed", checkout)
    run_jobs(app)
    flag = db.session.scalars(select(ReferralFlag)).one()
    sale = db.session.scalars(select(Sale)).one()
    assert (flag.reason, flag.status, flag.referrer_id, flag.sale_id) == (
        "self_purchase",
        "open",
        root.id,
        sale.id,
    )
    assert sale.payer_email == root.email.lower()
    assert set(db.session.scalars(select(Commission.status))) == {"held"}
    resolve_flag(flag, "cleared", admin)
    db.session.commit()
    assert set(db.session.scalars(select(Commission.status))) == {"pending"}
    assert middle.id in set(db.session.scalars(select(Commission.user_id)))
    assert_ledger_invariant()


def test_a_payment_by_an_upline_earners_customer_is_held_and_a_strangers_is_not(app, client):
    root, buyer = make_chain(2)
    mine = stripe_checkout(root.id, 0, "pi_own", mode="subscription", customer="cus_root")
    _stripe(client, "checkout.session.completed", mine)  # root's own customer
    _stripe(
        client,
        "checkout.session.completed",
        stripe_checkout(buyer.id, 5000, "pi_as_buyer", customer="cus_root"),
    )
    stranger = stripe_checkout(buyer.id, 5000, "pi_fine", email="someone.else@example.org")
    _stripe(client, "checkout.session.completed", stranger)
    lemon = {"status": "paid", "total": 5000, "tax": 0, "currency": "USD"}
    _lemon(client, "order_created", "orders", "61", {**lemon, "user_email": root.email}, buyer.id)
    run_jobs(app)
    held = db.session.execute(
        select(Sale.external_id, Commission.status).join(Commission, Commission.sale_id == Sale.id)
    ).all()
    assert sorted(held) == [
        ("order:61", "held"),
        ("pi_as_buyer", "held"),
        ("pi_fine", "pending"),  # a self-purchase flag holds its own sale only
    ]
    flags = db.session.scalars(select(ReferralFlag.detail).order_by(ReferralFlag.detail))
    assert list(flags) == [
        "paid by the earner's customer account",
        "paid with the earner's email address",
    ]


def test_a_strangers_payment_earns_as_usual(app, client):
    _, buyer = make_chain(2)
    checkout = stripe_checkout(buyer.id, 5000, "pi_ok", email="someone.else@example.org")
    _stripe(client, "checkout.session.completed", checkout)
    run_jobs(app)
    assert db.session.scalar(select(Commission.status)) == "pending"
    assert db.session.scalar(select(func.count()).select_from(ReferralFlag)) == 0


def test_clearing_a_self_purchase_flag_leaves_what_a_sign_up_flag_holds(app, client):
    root, buyer = make_chain(2)
    admin = make_user(is_admin=True)
    signup_flag = ReferralFlag(
        referred_user_id=buyer.id, referrer_id=root.id, reason="same_ip", detail="test"
    )
    db.session.add(signup_flag)
    db.session.commit()
    _stripe(client, "checkout.session.completed", stripe_checkout(buyer.id, 5000, "pi_s1"))
    own = stripe_checkout(buyer.id, 5000, "pi_s2", email=root.email)
    _stripe(client, "checkout.session.completed", own)
    run_jobs(app)
    self_purchase = db.session.scalars(
        select(ReferralFlag).where(ReferralFlag.reason == "self_purchase")
    ).one()
    resolve_flag(self_purchase, "cleared", admin)
    db.session.commit()
    statuses = db.session.execute(
        select(Sale.external_id, Commission.status).join(Commission, Commission.sale_id == Sale.id)
    ).all()
    assert sorted(statuses) == [("pi_s1", "held"), ("pi_s2", "held")]  # the sign-up flag's
    resolve_flag(signup_flag, "cleared", admin)
    db.session.commit()
    assert set(db.session.scalars(select(Commission.status))) == {"pending"}
    assert_ledger_invariant()
