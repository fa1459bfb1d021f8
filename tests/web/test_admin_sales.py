"""The admin's sale form: one sale and one audit entry per token, and no input makes a 500."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.jobs.queueing import get_queue
from app.models import AuditEntry, Sale, User
from app.services.money.sale_entry import record_manual_sale
from tests.conftest import csrf_token, log_in
from tests.factories import make_chain, make_user

HX = {"HX-Request": "true"}


def _post_sale(client, token: str, **fields: str):
    data = {
        "csrf_token": csrf_token(client, "/admin/sales/new"),
        "token": token,
        "buyer": "buyer",
        "amount": "40.00",
        "currency": "USD",
        "occurred_on": datetime.now(UTC).date().isoformat(),
        **fields,
    }
    return client.post("/admin/sales/new", data=data, headers=HX)


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def admin_client(client):
    log_in(client, make_user(is_admin=True).email)
    make_user(referrer=make_chain(1)[0], username="buyer")
    return client


def test_resubmits_of_one_token_audit_and_enqueue_only_the_sale_made(admin_client):
    for n in range(1, 51):
        response = _post_sale(admin_client, "tok-1", amount=f"{n}.00")
        assert response.headers["HX-Redirect"] == "/admin/sales"
    assert db.session.scalar(select(Sale.amount)) == Decimal("1.00")
    audited = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "sale.recorded"))
    assert [entry.details["amount"] for entry in audited] == ["1.00"]
    assert get_queue().count == 1
    page = admin_client.get("/admin/sales").get_data(as_text=True)
    assert "This sale was already recorded; nothing was changed." in page


def test_concurrent_submits_of_one_token_make_one_sale_and_one_audit_entry(app):
    admin_id = make_user(is_admin=True).id
    buyer_id = make_user(referrer=make_chain(1)[0]).id
    barrier = threading.Barrier(10)

    def submit(n: int) -> str | None:
        with app.app_context():
            barrier.wait()
            sale_id = record_manual_sale(
                db.session.get(User, admin_id),
                db.session.get(User, buyer_id),
                Decimal(f"{n + 1}.00"),
                "USD",
                datetime.now(UTC).date(),
                "tok-race",
            )
            db.session.commit()
            return sale_id

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(submit, range(10)))
    assert len([sale_id for sale_id in results if sale_id is not None]) == 1
    assert _count(Sale) == 1
    assert _count(AuditEntry) == 1
    assert get_queue().count == 1


@pytest.mark.parametrize(
    "amount", ["sNaN", "NaN", "Infinity", "-Infinity", "-inf", "snan", "1e999999", "1e-999999"]
)
def test_non_finite_or_huge_amounts_are_422_and_change_nothing(admin_client, amount):
    response = _post_sale(admin_client, "tok-nan", amount=amount)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "Enter a number, like 49.90." in body or "Between 0.01 and 1,000,000." in body
    assert (_count(Sale), _count(AuditEntry), get_queue().count) == (0, 0, 0)


@pytest.mark.parametrize("currency", ["USD\n", "usd\n", "US\nD", "USDX"])
def test_currency_must_be_exactly_three_letters(admin_client, currency):
    response = _post_sale(admin_client, "tok-cur", currency=currency)
    assert response.status_code == 422
    assert "A 3-letter ISO code." in response.get_data(as_text=True)
    assert _count(Sale) == 0


@pytest.mark.parametrize(
    ("occurred_on", "message"),
    [
        ("9999-12-31", "A sale date cannot be in the future."),
        ("1999-12-31", "A sale date cannot be before 2000."),
    ],
)
def test_sale_dates_outside_the_sale_bounds_are_422(admin_client, occurred_on, message):
    for headers in (HX, {}):
        response = admin_client.post(
            "/admin/sales/new",
            data={
                "csrf_token": csrf_token(admin_client, "/admin/sales/new"),
                "token": "tok-date",
                "buyer": "buyer",
                "amount": "10",
                "currency": "USD",
                "occurred_on": occurred_on,
            },
            headers=headers,
        )
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)
    assert (_count(Sale), _count(AuditEntry), get_queue().count) == (0, 0, 0)
