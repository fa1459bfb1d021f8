"""Defects a review of the money path found after the security fixes: each test is one."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Commission, ReferralFlag, Sale, WebhookEvent
from app.services.money.commissions import adjust_for_refunds, join_accruals, settle_sales
from app.services.money.sales import (
    SaleReport,
    record_dispute,
    record_refund,
    record_sale,
    unaccrued_sale_ids,
)
from app.services.money.webhooks import process_events
from app.services.payouts.payouts import PayoutRefused, fail_payout, request_payout
from tests.factories import make_chain, make_payout, make_payout_account, make_sale, set_program
from tests.ledger_checks import assert_ledger_invariant
from tests.signing import run_jobs, stripe_checkout, stripe_event, stripe_headers


def _stripe(client, kind: str, obj: dict) -> None:
    body = stripe_event(kind, obj)
    response = client.post("/webhooks/stripe", data=body, headers=stripe_headers(body))
    assert response.status_code == 200


# 1. Stripe's API units are not ISO 4217's for every currency: ISK stays two-decimal in
#    Stripe (100 = 1 krona), MGA is zero-decimal in Stripe (ISO says 2).
@pytest.mark.parametrize(
    ("currency", "stripe_amount", "expected"),
    [("ISK", 100000, Decimal("1000")), ("MGA", 5000, Decimal("5000"))],
)
def test_stripe_amounts_use_stripes_units(app, client, currency, stripe_amount, expected):
    set_program(currency=currency)
    _, buyer = make_chain(2)
    checkout = stripe_checkout(buyer.id, stripe_amount, "pi_cur", currency=currency.lower())
    _stripe(client, "checkout.session.completed", checkout)
    run_jobs(app)
    assert db.session.scalar(select(Sale.amount)) == expected


# 2. Async payment methods: the sale arrives as checkout.session.async_payment_succeeded.
def test_a_checkout_paid_asynchronously_is_a_sale(app, client):
    _, buyer = make_chain(2)
    checkout = stripe_checkout(buyer.id, 5000, "pi_async", payment_status="unpaid")
    _stripe(client, "checkout.session.completed", checkout)
    _stripe(
        client, "checkout.session.async_payment_succeeded", {**checkout, "payment_status": "paid"}
    )
    run_jobs(app)
    assert db.session.scalar(select(Sale.amount)) == Decimal("50.00")


# 3. Sales over max_recurring_payments are never marked accrued: the sweeper re-settles them
#    every minute forever, and (ORDER BY updated_at LIMIT 1000) they crowd out lost sales.
def test_sales_over_the_recurring_limit_are_not_swept_forever():
    set_program(max_recurring_payments=1)
    _, buyer = make_chain(2)
    for n, days_ago in ((1, 2), (2, 1)):
        make_sale(buyer, provider="stripe", external_id=f"in_{n}", subscription_id="sub_1",
                  days_ago=days_ago)  # fmt: skip
    assert db.session.scalar(select(func.count()).select_from(Commission)) == 1
    assert unaccrued_sale_ids(timedelta(0)) == []


# 3b. ... and such a sale, though it earns nobody anything, raises a self-purchase flag that
#     holds every later commission of the buyer.
def test_a_sale_over_the_recurring_limit_raises_no_self_purchase_flag():
    set_program(max_recurring_payments=1)
    root, buyer = make_chain(2)
    make_sale(buyer, provider="stripe", external_id="in_a", subscription_id="sub_2", days_ago=2)
    sale_id = record_sale(
        SaleReport("stripe", "in_b", Decimal("100"), "USD", datetime.now(UTC) - timedelta(days=1),
                   buyer_id=buyer.id, subscription_id="sub_2", payer_email=root.email.lower())
    )  # fmt: skip
    settle_sales([sale_id])
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(ReferralFlag)) == 0


# 4. MLM off: only tier 1 earns; a payment with the tier-2 upline's email holds tier 1's
#    commission although that upline earns nothing from it.
def test_self_purchase_by_an_upline_who_earns_nothing_holds_nothing():
    set_program(is_mlm_enabled=False)
    root, middle, buyer = make_chain(3)
    sale_id = record_sale(
        SaleReport("stripe", "pi_gp", Decimal("100"), "USD", datetime.now(UTC),
                   buyer_id=buyer.id, payer_email=root.email.lower())
    )  # fmt: skip
    settle_sales([sale_id])
    db.session.commit()
    commission = db.session.scalars(select(Commission)).one()
    assert commission.user_id == middle.id
    assert commission.status == "pending"


# 5. A dispute lost in part: the commission's remaining money is paid out (the ledger has it)
#    but the commission stays "pending" forever: payouts skip sales with disputed_amount > 0,
#    which a lost dispute keeps for good.
def test_a_partly_lost_dispute_commission_is_marked_paid_when_its_money_is_paid():
    set_program(min_payout_amount=0)
    root, buyer = make_chain(2)
    sale_id = make_sale(buyer, "100.00", provider="stripe", external_id="pi_pl", days_ago=40)
    record_dispute("stripe", "pi_pl", Decimal("50.00"), is_closed=True)
    adjust_for_refunds(sale_id)
    db.session.commit()
    payout = make_payout(root, complete=True)
    commission = db.session.scalars(select(Commission)).one()
    assert payout.amount == commission.amount == Decimal("5.00")
    assert (commission.status, commission.payout_id) == ("paid", payout.id)


# 5b. README: "Commissions of a sale under dispute are not paid out until the dispute closes."
def test_commissions_under_an_open_dispute_are_not_paid_out():
    set_program(min_payout_amount=0)
    root, buyer = make_chain(2)
    sale_id = make_sale(buyer, "100.00", provider="stripe", external_id="pi_od", days_ago=40)
    record_dispute("stripe", "pi_od", Decimal("50.00"))
    adjust_for_refunds(sale_id)
    db.session.commit()
    make_payout_account(root)
    with pytest.raises(PayoutRefused):  # today: pays the undisputed 5.00, commission "pending"
        request_payout(root, None, "stripe")


# 6. A payout that fails after its commission's sale was fully refunded leaves the commission
#    "pending" at 0.00 instead of cancelled.
def test_a_failed_payout_of_a_fully_refunded_sale_leaves_it_cancelled():
    set_program(min_payout_amount=0)
    root, buyer = make_chain(2)
    sale_id = make_sale(buyer, "100.00", provider="stripe", external_id="pi_fr", days_ago=40)
    payout = make_payout(root)
    record_refund("stripe", "pi_fr", Decimal("100.00"))
    adjust_for_refunds(sale_id)
    db.session.commit()
    fail_payout(payout, "account closed")
    db.session.commit()
    assert_ledger_invariant()
    commission = db.session.scalars(select(Commission)).one()
    assert (commission.status, commission.amount) == ("cancelled", Decimal("0"))


# 7. Lock order: a webhook batch locks sale rows (under the 'sales' advisory lock) and then
#    waits for 'accruals'; a settle job (admin attribution, sweeper) holds 'accruals' and
#    then updates the same sale row: PostgreSQL aborts one with a deadlock.
def test_a_settle_job_and_a_refund_batch_on_one_sale_do_not_deadlock(app, client):
    _, buyer = make_chain(2)
    sale_id = make_sale(buyer, provider="stripe", external_id="pi_dl", accrue=False)
    refund = {"id": "ch_dl", "payment_intent": "pi_dl", "currency": "usd", "amount_refunded": 1000}
    _stripe(client, "charge.refunded", refund)
    event_pk = db.session.scalar(select(WebhookEvent.id))
    job_has_accruals = threading.Event()
    errors: list[BaseException] = []

    def webhook_batch():  # the drain, while the job below is settling the same sale
        with app.app_context():
            try:
                job_has_accruals.wait(5)
                process_events([event_pk])
                db.session.commit()
            except Exception as exc:
                errors.append(exc)
                db.session.rollback()
            finally:
                db.session.remove()

    def settle_job():  # settle_sales_job([sale_id]) after an admin attributed the sale
        with app.app_context():
            try:
                join_accruals()
                job_has_accruals.set()
                time.sleep(0.5)  # the batch has started meanwhile
                settle_sales([sale_id])
                db.session.commit()
            except Exception as exc:
                errors.append(exc)
                db.session.rollback()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=webhook_batch), threading.Thread(target=settle_job)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [type(e).__name__ + str(e)[:120] for e in errors] == []


# 8. A refund-only row folded into its sale by a later event of the same batch is still in
#    the batch's touched list: adjust_for_refunds(deleted id) raises NoResultFound and the
#    whole batch is rolled back (then redone event by event).
def test_a_placeholder_folded_in_the_same_batch_does_not_fail_the_batch(app, client):
    _, buyer = make_chain(2)
    _stripe(client, "checkout.session.completed", stripe_checkout(buyer.id, 10000, "pi_f"))
    run_jobs(app)
    dispute = {"id": "dp_f", "charge": "ch_f", "payment_intent": None, "amount": 10000,
               "currency": "usd"}  # fmt: skip
    _stripe(client, "charge.dispute.created", dispute)  # keys (ch_f): a refund-only row
    refund = {"id": "ch_f", "payment_intent": "pi_f", "currency": "usd", "amount_refunded": 0}
    _stripe(client, "charge.refunded", refund)  # keys (pi_f, ch_f): folds it into the sale
    pks = list(
        db.session.scalars(select(WebhookEvent.id).where(WebhookEvent.processed_at.is_(None)))
    )
    assert len(pks) == 2
    process_events(pks)
    db.session.commit()
    assert db.session.scalar(select(Sale.disputed_amount)) == Decimal("100.00")


# 9. A non-object data.object is a malformed event, not an AttributeError.
def test_a_stripe_event_whose_object_is_not_an_object_is_malformed(app, client):
    from app.providers import MalformedEvent
    from app.providers import stripe as stripe_provider

    with pytest.raises(MalformedEvent):
        stripe_provider.reports({"type": "charge.refunded", "data": {"object": "ch_x"}})
