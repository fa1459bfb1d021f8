"""Commission receipts: the chain from the buyer to the earner, the terms, every ledger
entry, refunds and clawbacks, the payout; for admins any, for affiliates their own (without
the buyer's email)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Commission
from app.services.money.commissions import adjust_for_refunds
from app.services.money.sales import record_refund
from tests.conftest import csrf_token, log_in
from tests.factories import make_chain, make_payout, make_sale, make_user

pytestmark = pytest.mark.usefixtures("ledger_holds")

HX = {"HX-Request": "true"}


def _paid_and_partly_refunded():
    """Tier 3 earns 2.5 % of 4000.00 (100.00), is paid out, then a quarter is refunded."""
    top, middle, referrer, buyer = make_chain(4)
    sale_id = make_sale(buyer, "4000.00", days_ago=40, provider="stripe", external_id="pi_42")
    payout = make_payout(top, "100.00", complete=True)
    record_refund("stripe", "pi_42", Decimal("1000.00"))
    adjust_for_refunds(sale_id)
    db.session.commit()
    commission = db.session.scalars(
        select(Commission).where(Commission.sale_id == sale_id, Commission.tier == 3)
    ).one()
    return (top, middle, referrer, buyer), commission, payout


def _path(page: str) -> list[str]:
    path = page.split('id="tier-path">')[1].split("</ol>")[0]
    return [item.split(">", 1)[1].split("</li>")[0] for item in path.split("<li ")[1:]]


def test_an_admin_receipt_shows_the_whole_chain(client):
    (top, middle, referrer, buyer), commission, payout = _paid_and_partly_refunded()
    log_in(client, make_user(is_admin=True).email)
    answer = client.get(f"/admin/commissions/{commission.id}")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "Stripe <code>pi_42</code>" in page and buyer.email in page
    assert _path(page) == [
        f"{buyer.username} (buyer)",
        f"tier 1: {referrer.username}",
        f"tier 2: {middle.username}",
        f"tier 3: {top.username}",
    ]
    assert "Tier 3 at 2.5 % of 4,000.00 USD (excluding tax) = 100.00 USD." in page
    hold = commission.payable_at.strftime("%Y-%m-%d")
    assert f'data-receipt="hold">{hold}<' in page
    kinds = page.split('id="entries-title"')[1]
    assert kinds.index('data-entry="accrual"') < kinds.index('data-entry="clawback"')
    assert 'data-receipt="refunds">Refunded 1,000.00 USD.' in page
    assert 'data-receipt="clawed-back">Clawed back after payment: 25.00 USD.' in page
    assert f'href="/admin/payouts/{payout.id}"' in page
    listing = client.get(f"/admin/commissions?user={top.username}").get_data(as_text=True)
    assert f'href="/admin/commissions/{commission.id}"' in listing


def test_an_affiliate_sees_their_receipt_without_the_buyers_email(client):
    (top, _, _, buyer), commission, payout = _paid_and_partly_refunded()
    log_in(client, top.email)
    page = client.get(f"/commissions/{commission.id}").get_data(as_text=True)
    assert buyer.username in page and buyer.email not in page
    assert f'href="/payouts/{payout.id}"' in page and "/admin/" not in page.split("<main")[-1]
    answer = client.get(f"/commissions/{commission.id}", headers=HX)
    body = answer.get_data(as_text=True)
    assert "HX-Request" in answer.headers["Vary"] and "<html" not in body and "pi_42" in body
    listing = client.get("/commissions").get_data(as_text=True)
    assert f'href="/commissions/{commission.id}"' in listing


def test_another_users_commission_is_a_404(client):
    _, commission, _ = _paid_and_partly_refunded()
    log_in(client, make_user().email)
    for headers in ({}, HX):
        assert client.get(f"/commissions/{commission.id}", headers=headers).status_code == 404
        assert client.get("/commissions/nope", headers=headers).status_code == 404
        answer = client.get(f"/admin/commissions/{commission.id}", headers=headers)
        assert answer.status_code == 404


def test_a_cancel_refused_without_javascript_shows_the_receipt_with_422(client):
    _, buyer = make_chain(2)
    make_sale(buyer, "1000.00")
    commission = db.session.scalars(select(Commission)).one()
    log_in(client, make_user(is_admin=True).email)
    token = csrf_token(client, f"/admin/commissions/{commission.id}")
    path = f"/admin/commissions/{commission.id}/cancel"
    answer = client.post(path, data={"csrf_token": token, "reason": ""})
    body = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "Give a reason" in body and 'id="receipt"' in body
    answer = client.post(path, data={"csrf_token": token, "reason": "test"})
    assert answer.status_code == 302
    page = client.get(f"/admin/commissions/{commission.id}").get_data(as_text=True)
    assert 'data-receipt="cancelled"' in page and ": test" in page
    assert [e for e in ('data-entry="accrual"', 'data-entry="reversal"') if e in page] == [
        'data-entry="accrual"',
        'data-entry="reversal"',
    ]
