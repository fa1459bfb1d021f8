"""Commission moderation: who may see it, filters and keyset pages, cancelling with and
without HTMX, bad input."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, Commission
from app.services.money.commissions import settle_sales
from tests.conftest import csrf_token, log_in
from tests.factories import make_chain, make_payout, make_sale, make_user

pytestmark = pytest.mark.usefixtures("ledger_holds")

HX = {"HX-Request": "true"}


def _commission(sale_id: str) -> Commission:
    db.session.rollback()
    return db.session.scalars(select(Commission).where(Commission.sale_id == sale_id)).one()


def _post(client, path: str, headers=None, **data):
    token = csrf_token(client, "/admin/commissions")
    return client.post(path, data={"csrf_token": token, **data}, headers=headers or {})


def _cancels() -> int:
    db.session.rollback()
    query = select(AuditEntry.id).where(AuditEntry.action == "commission.cancelled")
    return len(db.session.scalars(query).all())


def test_commission_routes_are_a_404_for_non_admins(client):
    _, buyer = make_chain(2)
    commission = _commission(make_sale(buyer, "1000.00"))
    log_in(client, make_user().email)
    token = csrf_token(client, "/payouts")
    for headers in ({}, HX):
        assert client.get("/admin/commissions", headers=headers).status_code == 404
        path = f"/admin/commissions/{commission.id}/cancel"
        answer = client.post(path, data={"csrf_token": token, "reason": "x"}, headers=headers)
        assert answer.status_code == 404
        assert client.get(path, headers=headers).status_code == 404
    assert _commission(commission.sale_id).status == "pending"


def test_anonymous_visitors_are_sent_to_log_in(client):
    answer = client.get("/admin/commissions")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_cancel_needs_the_csrf_token(client, admin):
    _, buyer = make_chain(2)
    commission = _commission(make_sale(buyer, "1000.00"))
    for headers in ({}, HX):
        path = f"/admin/commissions/{commission.id}/cancel"
        assert client.post(path, data={"reason": "x"}, headers=headers).status_code == 400
    assert _commission(commission.sale_id).status == "pending" and _cancels() == 0


def test_filters_by_status_user_tier_and_date(client, admin):
    top, middle, buyer = make_chain(3)
    sale_id = make_sale(buyer, "1000.00")
    tier1 = db.session.scalars(select(Commission).where(Commission.user_id == middle.id)).one()
    tier2 = db.session.scalars(select(Commission).where(Commission.user_id == top.id)).one()
    page = client.get("/admin/commissions").get_data(as_text=True)
    assert f'id="commission-{tier1.id}"' in page and f'id="commission-{tier2.id}"' in page
    answer = client.get(f"/admin/commissions?user={top.username}", headers=HX)
    body = answer.get_data(as_text=True)
    assert "HX-Request" in answer.headers["Vary"] and "<html" not in body
    assert f'id="commission-{tier2.id}"' in body and f'id="commission-{tier1.id}"' not in body
    body = client.get("/admin/commissions?tier=1").get_data(as_text=True)
    assert f'id="commission-{tier1.id}"' in body and f'id="commission-{tier2.id}"' not in body
    body = client.get("/admin/commissions?status=paid").get_data(as_text=True)
    assert "No commissions match." in body
    body = client.get("/admin/commissions?until=2001-01-01").get_data(as_text=True)
    assert "No commissions match." in body
    assert sale_id


def test_statuses_read_as_the_affiliate_and_the_receipt_read_them(client, admin):
    """A pending commission past its hold is "available" in the admin's list, its filter and
    its receipt, as on the affiliate's list and dashboard; one in hold says until when."""
    _, buyer = make_chain(2)
    old = _commission(make_sale(buyer, "1000.00", days_ago=400))
    new = _commission(make_sale(buyer, "500.00"))
    assert old.status == new.status == "pending"
    page = client.get("/admin/commissions").get_data(as_text=True)
    old_row = page.split(f'id="commission-{old.id}"')[1].split("</tr>")[0]
    new_row = page.split(f'id="commission-{new.id}"')[1].split("</tr>")[0]
    assert ">available<" in old_row and "pending" not in old_row
    assert f">in hold until {new.payable_at:%Y-%m-%d}<" in new_row
    receipt = client.get(f"/admin/commissions/{old.id}").get_data(as_text=True)
    assert ">available<" in receipt
    for headers in ({}, HX):
        body = client.get("/admin/commissions?status=available", headers=headers)
        text = body.get_data(as_text=True)
        assert f'id="commission-{old.id}"' in text and f'id="commission-{new.id}"' not in text
        body = client.get("/admin/commissions?status=in_hold", headers=headers)
        text = body.get_data(as_text=True)
        assert f'id="commission-{new.id}"' in text and f'id="commission-{old.id}"' not in text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("user=nobody-here", "No user has this username or email."),
        ("since=2026-05-02&until=2026-05-01", "The end date is before the start date."),
        ("tier=0", "A tier from 1 to 100."),
        ("status=bogus", "Not a valid choice"),
    ],
)
def test_bad_filters_answer_422_with_the_message(client, admin, query, message):
    for headers in ({}, HX):
        answer = client.get(f"/admin/commissions?{query}", headers=headers)
        assert answer.status_code == 422 and message in answer.get_data(as_text=True)


def test_pages_continue_by_keyset(client, admin):
    _, buyer = make_chain(2)
    sale_ids = [make_sale(buyer, "1000.00", accrue=False) for _ in range(51)]
    settle_sales(sale_ids)
    db.session.commit()
    page = client.get("/admin/commissions?tier=1").get_data(as_text=True)
    assert page.count('data-commission="') == 50
    more = page.split('class="show-more"')[1].split('href="')[1].split('"')[0]
    assert "tier=1" in more
    rest = client.get(more.replace("&amp;", "&"), headers=HX).get_data(as_text=True)
    assert rest.count('data-commission="') == 1 and "show-more" not in rest
    assert client.get("/admin/commissions?before=junk").status_code == 400


def test_cancel_with_htmx_swaps_the_row(client, admin):
    _, buyer = make_chain(2)
    commission = _commission(make_sale(buyer, "1000.00"))
    path = f"/admin/commissions/{commission.id}/cancel"
    answer = _post(client, path, headers=HX, reason="test order")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert body.strip().startswith(f'<tr id="commission-{commission.id}"')
    assert "Cancelled." in body and "cancelled" in body and "<form" not in body
    assert _commission(commission.sale_id).status == "cancelled" and _cancels() == 1
    answer = _post(client, path, headers=HX, reason="again")
    assert answer.status_code == 422 and "cancelled already" in answer.get_data(as_text=True)
    assert _cancels() == 1


def test_cancel_after_payout_without_javascript_claws_back_and_redirects(client, admin):
    root, buyer = make_chain(2)
    sale_id = make_sale(buyer, "1000.00", days_ago=40)
    make_payout(root, "100.00", complete=True)
    commission = _commission(sale_id)
    answer = _post(client, f"/admin/commissions/{commission.id}/cancel", reason="fraud")
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/commissions"
    commission = _commission(sale_id)
    assert (commission.status, commission.clawed_back) == ("paid", Decimal("100.00"))
    assert "clawed back from the affiliate" in client.get("/admin/commissions").get_data(
        as_text=True
    )


@pytest.mark.parametrize(
    ("reason", "message"),
    [("", "Give a reason"), ("   ", "Give a reason"), ("x" * 501, "500 characters")],
)
def test_a_bad_reason_is_refused_with_422_and_nothing_changes(client, admin, reason, message):
    _, buyer = make_chain(2)
    commission = _commission(make_sale(buyer, "1000.00"))
    for headers in ({}, HX):
        path = f"/admin/commissions/{commission.id}/cancel"
        answer = _post(client, path, headers=headers, reason=reason)
        assert answer.status_code == 422 and message in answer.get_data(as_text=True)
    assert _commission(commission.sale_id).status == "pending" and _cancels() == 0


def test_an_unknown_commission_is_a_404(client, admin):
    assert _post(client, "/admin/commissions/nope/cancel", reason="x").status_code == 404
