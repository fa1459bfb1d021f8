"""The admin payout queue: who may see it, each action with and without HTMX, bad input, the
CSV download, the payout page and the treasury panel."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import AuditEntry, Payout, ReferralProgramSettings
from tests.conftest import csrf_token, log_in
from tests.factories import make_chain, make_payout, make_sale, make_user

pytestmark = pytest.mark.usefixtures("ledger_holds")

HX = {"HX-Request": "true"}
ACTIONS = ("approve", "hold", "release", "reject", "complete", "retry")


def _approval_on(**values: object) -> None:
    db.session.execute(update(ReferralProgramSettings).values(payouts_need_approval=True, **values))
    db.session.commit()


def _payout(amount: str = "100.00", method: str = "stripe") -> Payout:
    root, buyer = make_chain(2)
    make_sale(buyer, "2000.00", days_ago=40)
    return make_payout(root, amount, method)


def _post(client, path: str, headers=None, **data):
    token = csrf_token(client, "/admin/payouts")
    return client.post(path, data={"csrf_token": token, **data}, headers=headers or {})


def _status(payout_id: str) -> str:
    db.session.rollback()
    return db.session.get(Payout, payout_id).status


def test_every_payout_route_is_a_404_for_non_admins(client):
    payout = _payout()
    affiliate = make_user()
    log_in(client, affiliate.email)
    token = csrf_token(client, "/payouts")
    gets = ["/admin/payouts", "/admin/payouts/treasury", f"/admin/payouts/{payout.id}"]
    posts = [f"/admin/payouts/{payout.id}/{a}" for a in ACTIONS]
    posts += ["/admin/payouts/approve", "/admin/payouts/settlement.csv"]
    for headers in ({}, HX):
        for path in gets:
            assert client.get(path, headers=headers).status_code == 404, path
            assert client.post(path, data={"csrf_token": token}, headers=headers).status_code == 404
        for path in posts:
            data = {"csrf_token": token, "reason": "x", "reference": "x", "payout_ids": payout.id}
            assert client.post(path, data=data, headers=headers).status_code == 404, path
            assert client.get(path, headers=headers).status_code == 404, path
    assert _status(payout.id) == "pending"
    assert (
        db.session.scalar(
            select(AuditEntry.id).where(AuditEntry.action == "payout.settlement_exported")
        )
        is None
    )


def test_anonymous_visitors_are_sent_to_log_in(client):
    assert client.get("/admin/payouts").status_code == 302
    assert client.post("/admin/payouts/approve").status_code in (302, 400)


def test_actions_need_the_csrf_token(client, admin):
    _approval_on()
    payout = _payout()
    for headers in ({}, HX):
        answer = client.post(f"/admin/payouts/{payout.id}/approve", headers=headers)
        assert answer.status_code == 400
        answer = client.post("/admin/payouts/approve", data={"payout_ids": payout.id})
        assert answer.status_code == 400
    assert client.post("/admin/payouts/settlement.csv").status_code == 400
    assert _status(payout.id) == "awaiting_approval"


def test_the_queue_lists_and_filters_payouts(client, admin):
    stripe_payout = _payout("100.00")
    lemon = _payout("60.00", "lemon_squeezy")
    page = client.get("/admin/payouts").get_data(as_text=True)
    assert f'id="payout-{stripe_payout.id}"' in page and f'id="payout-{lemon.id}"' in page
    assert 'hx-get="/admin/payouts/treasury"' in page
    only = client.get("/admin/payouts?method=lemon_squeezy", headers=HX)
    body = only.get_data(as_text=True)
    assert "HX-Request" in only.headers["Vary"] and "<html" not in body
    assert f'id="payout-{lemon.id}"' in body and f'id="payout-{stripe_payout.id}"' not in body
    username = db.session.get(Payout, lemon.id).user.username
    body = client.get(f"/admin/payouts?user={username}&status=pending").get_data(as_text=True)
    assert f'id="payout-{lemon.id}"' in body and f'id="payout-{stripe_payout.id}"' not in body
    body = client.get("/admin/payouts?created_to=2001-01-01").get_data(as_text=True)
    assert "No payouts match these filters" in body


def test_bad_filters_answer_422_with_the_message(client, admin):
    answer = client.get("/admin/payouts?created_from=2026-05-02&created_to=2026-05-01")
    assert answer.status_code == 422
    assert "The end date is before the start date." in answer.get_data(as_text=True)
    assert client.get("/admin/payouts?created_from=yesterday", headers=HX).status_code == 422


def test_approve_with_htmx_swaps_the_row_and_without_redirects(client, admin):
    _approval_on()
    first, second = _payout(), _payout()
    answer = _post(client, f"/admin/payouts/{first.id}/approve", headers=HX)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and body.strip().startswith(f'<tr id="payout-{first.id}"')
    assert "Approved: it will be sent." in body and "pending" in body
    answer = _post(client, f"/admin/payouts/{second.id}/approve")
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/payouts"
    assert "Approved: it will be sent." in client.get("/admin/payouts").get_data(as_text=True)
    assert _status(first.id) == _status(second.id) == "pending"


def test_a_second_admin_sees_the_refusal_and_the_current_row(app, client, admin):
    _approval_on()
    payout = _payout()
    other = app.test_client()
    log_in(other, make_user(is_admin=True).email)
    _post(client, f"/admin/payouts/{payout.id}/approve", headers=HX)
    answer = _post(other, f"/admin/payouts/{payout.id}/approve", headers=HX)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "pending now, not awaiting approval" in body
    assert "Hold" in body  # the row as it is now: a pending payout can be held
    answer = _post(other, f"/admin/payouts/{payout.id}/approve")
    assert answer.status_code == 422 and "pending now" in answer.get_data(as_text=True)


def test_maker_checker_over_the_web_needs_two_admins(app, client, admin):
    _approval_on(dual_approval_above=Decimal("50.00"))
    payout = _payout()
    answer = _post(client, f"/admin/payouts/{payout.id}/approve", headers=HX)
    assert "a second admin must approve it" in answer.get_data(as_text=True)
    again = _post(client, f"/admin/payouts/{payout.id}/approve", headers=HX)
    assert again.status_code == 422 and "approved this payout already" in again.get_data(
        as_text=True
    )
    assert _status(payout.id) == "awaiting_approval"
    other = app.test_client()
    log_in(other, make_user(is_admin=True).email)
    assert _post(other, f"/admin/payouts/{payout.id}/approve", headers=HX).status_code == 200
    assert _status(payout.id) == "pending"


def test_hold_release_and_reject_with_their_reasons(client, admin):
    payout = _payout()
    answer = _post(client, f"/admin/payouts/{payout.id}/hold", headers=HX, reason="")
    assert answer.status_code == 422 and "Give a reason." in answer.get_data(as_text=True)
    assert _status(payout.id) == "pending"
    answer = _post(client, f"/admin/payouts/{payout.id}/hold", headers=HX, reason="x" * 501)
    assert answer.status_code == 422 and _status(payout.id) == "pending"
    assert _post(client, f"/admin/payouts/{payout.id}/hold", reason="check").status_code == 302
    assert _status(payout.id) == "on_hold"
    assert _post(client, f"/admin/payouts/{payout.id}/release", headers=HX).status_code == 200
    assert _status(payout.id) == "pending"
    answer = _post(client, f"/admin/payouts/{payout.id}/reject", headers=HX, reason="fraud")
    assert answer.status_code == 200 and _status(payout.id) == "failed"
    assert "fraud" in answer.get_data(as_text=True)


def test_lemon_squeezy_settlement_over_the_web(client, admin):
    first, second = _payout(method="lemon_squeezy"), _payout(method="lemon_squeezy")
    answer = _post(client, f"/admin/payouts/{first.id}/complete", headers=HX, reference="")
    assert answer.status_code == 422 and _status(first.id) == "pending"
    answer = _post(client, f"/admin/payouts/{first.id}/complete", headers=HX, reference="T-1")
    assert answer.status_code == 200 and _status(first.id) == "completed"
    answer = _post(client, f"/admin/payouts/{second.id}/complete", reference="T-1")
    assert answer.status_code == 422
    assert "already has the reference" in answer.get_data(as_text=True)
    assert _status(second.id) == "pending"
    answer = _post(client, f"/admin/payouts/{second.id}/reject", reason="IBAN bounced")
    assert answer.status_code == 302 and _status(second.id) == "failed"


def test_retry_over_the_web_creates_a_new_payout(client, admin):
    payout = _payout()
    _post(client, f"/admin/payouts/{payout.id}/reject", reason="declined")
    answer = _post(client, f"/admin/payouts/{payout.id}/retry", headers=HX)
    assert answer.status_code == 200 and "Retried as a new payout, pending" in answer.get_data(
        as_text=True
    )
    answer = _post(client, f"/admin/payouts/{payout.id}/retry", headers=HX)
    assert answer.status_code == 422 and "retried already" in answer.get_data(as_text=True)
    assert len(db.session.scalars(select(Payout)).all()) == 2


def test_bulk_approve_approves_each_or_lists_its_refusal(client, admin):
    _approval_on()
    first, second = _payout(), _payout()
    _post(client, f"/admin/payouts/{first.id}/approve")
    answer = _post(client, "/admin/payouts/approve", payout_ids=[first.id, second.id, "nope"])
    assert answer.status_code == 302
    page = client.get("/admin/payouts").get_data(as_text=True)
    assert "Approved 1 payout." in page
    assert f"Payout {first.id}: This payout is pending now" in page
    assert "Payout nope: no such payout." in page
    assert _status(second.id) == "pending"


def test_unknown_payouts_are_404(client, admin):
    assert client.get("/admin/payouts/nope").status_code == 404
    assert _post(client, "/admin/payouts/nope/approve", headers=HX).status_code == 404


def test_the_settlement_csv_download(client, admin):
    payout = _payout(method="lemon_squeezy")
    answer = _post(client, "/admin/payouts/settlement.csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.headers["Cache-Control"] == "no-store"
    assert "attachment" in answer.headers["Content-Disposition"]
    body = answer.get_data(as_text=True)
    assert payout.id in body and "jane@paypal.example" in body
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "payout.settlement_exported")
    ).one()
    assert entry.actor_id == admin.id and entry.details["payouts"] == [payout.id]


def test_the_payout_page_shows_account_masked_history_and_approvals(client, admin, app):
    _approval_on()
    payout = _payout(method="lemon_squeezy")
    other = app.test_client()
    approver = make_user(is_admin=True)
    log_in(other, approver.email)
    _post(other, f"/admin/payouts/{payout.id}/approve")
    page = client.get(f"/admin/payouts/{payout.id}").get_data(as_text=True)
    assert "J*** D***" in page and "j***@paypal.example" in page
    assert "jane@paypal.example" not in page
    assert "requested" in page and "approved" in page and approver.username in page
    assert f'id="payout-{payout.id}"' in page


def test_the_treasury_panel(client, admin, fake_stripe):
    _payout()
    fake_stripe.set_balance("usd", available=50_000, pending=1_000)
    body = client.get("/admin/payouts/treasury", headers=HX).get_data(as_text=True)
    assert "<html" not in body and "500.00 USD" in body and "10.00 USD" in body
    assert "100.00 USD" in body  # the open Stripe payout


def test_the_treasury_panel_without_stripe_is_a_note_not_an_error(client, admin):
    answer = client.get("/admin/payouts/treasury")
    assert answer.status_code == 200
    assert "Stripe is not configured" in answer.get_data(as_text=True)


def test_the_payout_page_shows_the_statement_of_a_paid_payout(client, admin):
    earner, buyer = make_chain(2)
    make_sale(buyer, "1000.00", days_ago=40)
    make_sale(buyer, "500.00", days_ago=35)
    payout = make_payout(earner, complete=True)
    page = client.get(f"/admin/payouts/{payout.id}").get_data(as_text=True)
    assert page.count('data-line="commission"') == 2
    assert 'data-total="commissions">150.00 USD' in page
    assert buyer.email not in page
