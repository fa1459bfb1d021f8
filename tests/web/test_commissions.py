"""My commissions: filters, keyset pages, the streamed CSV, the chart; admin sales."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.jobs.queueing import get_queue
from app.models import AuditEntry, Commission, ReferralFlag, Sale
from tests.conftest import csrf_token, log_in
from tests.factories import make_chain, make_sale, make_user
from tests.signing import run_jobs

HX = {"HX-Request": "true"}
_ROW = re.compile(r'data-commission="([^"]+)"')
_MORE = re.compile(r'class="show-more"><td colspan="8">\s*<a href="([^"]+)"')


def test_commissions_need_a_login(client):
    assert client.get("/commissions").status_code == 302
    assert client.get("/commissions.csv").status_code == 302


def test_commissions_page_pages_by_keyset_without_gaps(client):
    root, buyer = make_chain(2)
    for _ in range(60):
        make_sale(buyer, "10.00")
    log_in(client, root.email)
    html = client.get("/commissions").get_data(as_text=True)
    assert "<svg" in html and "Earnings by month and tier" in html
    seen = _ROW.findall(html)
    more = _MORE.search(html).group(1).replace("&amp;", "&")
    assert "before=" in more
    fragment = client.get(more, headers=HX)
    assert "HX-Request" in fragment.headers["Vary"]
    seen += _ROW.findall(fragment.get_data(as_text=True))
    assert len(seen) == len(set(seen)) == 60
    assert set(seen) == set(db.session.scalars(select(Commission.id)))


def test_filters_by_status_tier_and_date(client):
    a, _b, buyer = make_chain(3)
    make_sale(buyer, "100.00")
    log_in(client, a.email)
    assert len(_ROW.findall(client.get("/commissions?tier=2").get_data(as_text=True))) == 1
    assert _ROW.findall(client.get("/commissions?tier=1").get_data(as_text=True)) == []
    assert _ROW.findall(client.get("/commissions?status=paid").get_data(as_text=True)) == []
    assert (
        _ROW.findall(
            client.get("/commissions?since=2000-01-01&until=2000-12-31").get_data(as_text=True)
        )
        == []
    )


@pytest.mark.parametrize(
    "query", ["tier=abc", "status=approved", "since=yesterday", "since=2026-02-01&until=2026-01-01"]
)
def test_bad_filters_are_422_with_a_message(client, query):
    user = make_user()
    log_in(client, user.email)
    for headers in ({}, HX):
        response = client.get(f"/commissions?{query}", headers=headers)
        assert response.status_code == 422
        assert 'class="form-error"' in response.get_data(as_text=True)
    csv_answer = client.get(f"/commissions.csv?{query}")  # the page says why, no file
    assert csv_answer.status_code == 422 and csv_answer.mimetype == "text/html"
    assert 'class="form-error"' in csv_answer.get_data(as_text=True)
    assert client.get("/commissions?before=garbage").status_code == 400


def test_csv_export_streams_every_matching_row_and_defuses_formulas(client):
    root = make_user()
    buyer = make_user(referrer=root, username="-cmd")
    make_sale(buyer, "33.33")
    make_sale(buyer, "10.00")
    log_in(client, root.email)
    response = client.get("/commissions.csv")
    assert response.was_streamed
    assert response.headers["Content-Disposition"] == 'attachment; filename="commissions.csv"'
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert sorted(r["amount"] for r in rows) == ["1.00", "3.33"]
    assert {r["buyer"] for r in rows} == {"'-cmd"}


def test_other_users_commissions_are_not_shown(client):
    _root, buyer = make_chain(2)
    make_sale(buyer)
    stranger = make_user()
    log_in(client, stranger.email)
    assert _ROW.findall(client.get("/commissions").get_data(as_text=True)) == []
    assert client.get("/commissions.csv").get_data(as_text=True).count("\n") == 1


def _record_sale(client, buyer: str, amount: str = "40.00", token: str = "tok-1"):  # noqa: S107
    data = {
        "csrf_token": csrf_token(client, "/admin/sales/new"),
        "token": token,
        "buyer": buyer,
        "amount": amount,
        "currency": "USD",
        "occurred_on": "2026-11-20",
        "note": "paid by bank transfer",
    }
    return client.post("/admin/sales/new", data=data, headers=HX)


def test_admin_records_a_sale_by_hand_once_audited_and_accrued_by_the_worker(app, client):
    admin = make_user(is_admin=True)
    _root, buyer = make_chain(2)
    log_in(client, admin.email)
    assert _record_sale(client, buyer.username).headers["HX-Redirect"] == "/admin/sales"
    _record_sale(client, buyer.email)  # a double submit of the same form
    assert db.session.scalar(select(func.count()).select_from(Sale)) == 1
    assert db.session.scalar(select(AuditEntry.action)) == "sale.recorded"
    run_jobs(app)
    assert db.session.scalar(select(Commission.amount)) == Decimal("4.00")


@pytest.mark.parametrize(
    ("buyer", "amount", "message"),
    [
        ("nobody", "10", "No user has this username or email."),
        ("", "10", "Name the buyer."),
        ("x", "-5", "Between 0.01 and 1,000,000."),
        ("x", "abc", "Not a valid decimal value."),
    ],
)
def test_admin_sale_form_refuses_bad_input_with_422(client, buyer, amount, message):
    admin = make_user(is_admin=True)
    make_user(username="x")
    log_in(client, admin.email)
    response = _record_sale(client, buyer, amount)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Sale)) == 0
    assert get_queue().count == 0


def test_admin_attributes_an_unattributed_sale_which_then_accrues(app, client):
    admin = make_user(is_admin=True)
    root, buyer = make_chain(2)
    sale_id = make_sale(None, "50.00")
    log_in(client, admin.email)
    page = client.get("/admin/sales").get_data(as_text=True)
    assert f"/admin/sales/{sale_id}/attribute" in page
    token = csrf_token(client, "/admin/sales")
    client.post(
        f"/admin/sales/{sale_id}/attribute", data={"csrf_token": token, "buyer": buyer.username}
    )
    second = client.post(
        f"/admin/sales/{sale_id}/attribute", data={"csrf_token": token, "buyer": root.username}
    )
    assert second.status_code == 302
    run_jobs(app)
    assert db.session.get(Sale, sale_id).buyer_id == buyer.id
    assert db.session.scalar(select(Commission.user_id)) == root.id


def test_sales_pages_are_admin_only(client):
    user = make_user()
    log_in(client, user.email)
    assert client.get("/admin/sales").status_code == 404
    assert client.get("/admin/sales/new", headers=HX).status_code == 404


def test_admin_clears_a_flag_from_the_flags_page(client):
    admin = make_user(is_admin=True)
    root, buyer = make_chain(2)
    db.session.add(ReferralFlag(referred_user_id=buyer.id, referrer_id=root.id, reason="same_ip"))
    db.session.commit()
    make_sale(buyer, "100.00")
    log_in(client, admin.email)
    page = client.get("/admin/flags").get_data(as_text=True)
    flag_id = db.session.scalar(select(ReferralFlag.id))
    assert buyer.username in page and f"/admin/flags/{flag_id}" in page
    token = csrf_token(client, "/admin/flags")
    assert client.post(f"/admin/flags/{flag_id}", data={"decision": "cleared"}).status_code == 400
    bad = client.post(f"/admin/flags/{flag_id}", data={"csrf_token": token, "decision": "maybe"})
    assert bad.status_code == 302 and db.session.scalar(select(ReferralFlag.status)) == "open"
    client.post(f"/admin/flags/{flag_id}", data={"csrf_token": token, "decision": "cleared"})
    assert db.session.scalar(select(Commission.status)) == "pending"
    assert db.session.scalar(select(AuditEntry.action).where(AuditEntry.action == "flag.cleared"))
    assert (
        client.post(
            "/admin/flags/nope", data={"csrf_token": token, "decision": "cleared"}
        ).status_code
        == 404
    )


def test_dates_out_of_range_are_422_not_a_crash(client):
    log_in(client, make_user().email)
    assert client.get("/commissions?until=9999-12-31").status_code == 422
    assert client.get("/commissions?since=0001-01-01", headers=HX).status_code == 422
