"""The payouts page: balances and terms, the Lemon Squeezy payee details form, masking."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Payout, PayoutAccount, ReferralProgramSettings
from app.services.payouts.payout_accounts import payee_details
from tests.conftest import csrf_token, log_in
from tests.factories import make_payout, make_payout_account, make_sale, make_user

HX = {"HX-Request": "true"}
IBAN = "DE89 3704 0044 0532 0130 00"
SECRETS = ("Jane", "jane@example.com", "DE89", "3704", "0130")


def _payee_form(client, **overrides: str) -> dict[str, str]:
    data = {
        "csrf_token": csrf_token(client, "/payouts"),
        "name": "Jane Doe",
        "email": "jane@example.com",
        "iban": IBAN,
        "paypal_email": "",
    }
    data.update(overrides)
    return data


def _accounts() -> int:
    return db.session.scalar(select(func.count()).select_from(PayoutAccount))


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get("/payouts")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    # A POST is refused before the view, without a session's CSRF token (CSRFProtect).
    assert client.post("/payouts/payee", data={"name": "x"}).status_code == 400
    assert _accounts() == 0


def test_the_page_shows_balances_terms_and_the_stripe_setup(client):
    referrer = make_user()
    make_sale(make_user(referrer=referrer), "200.00", days_ago=40)
    make_sale(make_user(referrer=referrer), "100.00")
    settings = db.session.scalars(select(ReferralProgramSettings)).one()
    settings.min_payout_amount, settings.payout_frequency = Decimal("25.00"), "weekly"
    db.session.commit()
    log_in(client, referrer.email)
    html = client.get("/payouts").get_data(as_text=True)
    assert 'data-stat="available">20.00 USD<' in html
    assert 'data-stat="pending">10.00 USD<' in html
    assert 'data-stat="owed">0.00 USD<' in html
    assert 'data-term="minimum">25.00 USD<' in html
    assert 'data-term="frequency">Weekly<' in html
    assert "Stripe account" in html and "Set up payouts with Stripe" in html
    assert 'href="/payouts" aria-current="page">Payouts<' in html


def test_saving_without_javascript_redirects_and_shows_the_details_masked(client):
    user = make_user()
    log_in(client, user.email)
    response = client.post("/payouts/payee", data=_payee_form(client))
    assert response.status_code == 302 and response.headers["Location"] == "/payouts"
    html = client.get("/payouts").get_data(as_text=True)
    assert "Your payee details are saved." in html
    assert "J*** D***" in html and "j***@example.com" in html
    assert "DE** **** **** **** **30 00" in html
    for secret in SECRETS:  # never prefilled, not even in an input's value
        assert secret not in html
    assert payee_details(user.id).iban == IBAN.replace(" ", "")


def test_htmx_save_swaps_the_section_with_empty_fields_and_masked_hints(client):
    user = make_user()
    log_in(client, user.email)
    response = client.post("/payouts/payee", data=_payee_form(client), headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<section class="card" id="payee"')
    assert '<p class="flash flash-success" role="status">Your payee details are saved.</p>' in html
    assert "Saved: J*** D***. Leave empty to keep it." in html
    assert 'name="iban" type="text" value=""' in html
    for secret in SECRETS:
        assert secret not in html
    assert "HX-Request" in response.headers["Vary"]


def test_htmx_errors_answer_422_with_messages_and_change_nothing(client):
    log_in(client, make_user().email)
    bad = _payee_form(client, iban="DE89 3704 0044 0532 0130 01", email="jane@")
    response = client.post("/payouts/payee", data=bad, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert html.lstrip().startswith('<section class="card" id="payee"')
    assert "check digits do not match" in html and "valid email address" in html
    assert 'aria-invalid="true"' in html
    both = _payee_form(client, paypal_email="jane@paypal.example")
    response = client.post("/payouts/payee", data=both, headers=HX)
    assert response.status_code == 422 and "not both" in response.get_data(as_text=True)
    huge = _payee_form(client, iban="DE89" * 100_000)
    response = client.post("/payouts/payee", data=huge, headers=HX)
    assert response.status_code == 422 and "at most 48" in response.get_data(as_text=True)
    assert _accounts() == 0


def test_errors_without_javascript_answer_the_full_page_with_422(client):
    log_in(client, make_user().email)
    response = client.post("/payouts/payee", data=_payee_form(client, iban="XX00 1234"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<h1>Payouts</h1>" in html and "starts with a country code" in html
    assert _accounts() == 0


def test_saving_needs_the_csrf_token(client):
    log_in(client, make_user().email)
    for token in (None, "forged"):
        data = _payee_form(client)
        if token is None:
            del data["csrf_token"]
        else:
            data["csrf_token"] = token
        response = client.post("/payouts/payee", data=data, headers=HX)
        assert response.status_code == 400
    assert _accounts() == 0


def test_a_user_sees_only_their_own_details(app):
    jane, john = make_user(), make_user()
    jane_client, john_client = app.test_client(), app.test_client()
    log_in(jane_client, jane.email)
    log_in(john_client, john.email)
    jane_client.post("/payouts/payee", data=_payee_form(jane_client))
    john_page = john_client.get("/payouts").get_data(as_text=True)
    assert "J*** D***" not in john_page and "**30 00" not in john_page
    assert "No payee details yet" in john_page
    # John saving only a PayPal address does not complete his details with Jane's.
    data = _payee_form(john_client, name="", email="", iban="", paypal_email="john@pp.example")
    response = john_client.post("/payouts/payee", data=data)
    assert response.status_code == 422
    assert "Enter the payee&#39;s name." in response.get_data(as_text=True)
    assert payee_details(john.id) is None
    assert "J*** D***" in jane_client.get("/payouts").get_data(as_text=True)


def test_saving_audits_without_values_and_logs_none(client, caplog):
    caplog.set_level(logging.DEBUG)
    user = make_user()
    log_in(client, user.email)
    client.post("/payouts/payee", data=_payee_form(client), headers=HX)
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "payout_account.details_changed")
    ).one()
    assert entry.actor_id == user.id and entry.subject_type == "payout_account"
    assert entry.details == {"fields": ["name", "email", "iban"]} and entry.ip_hash
    for secret in SECRETS:
        assert secret not in caplog.text


def test_without_a_key_the_form_is_replaced_by_a_notice(app, client, monkeypatch):
    log_in(client, make_user().email)
    data = _payee_form(client)
    monkeypatch.setitem(app.config, "FERNET_KEYS", "")
    page = client.get("/payouts")
    assert page.status_code == 200
    assert "no encryption key" in page.get_data(as_text=True)
    response = client.post("/payouts/payee", data=data, headers=HX)
    assert response.status_code == 503
    assert "no encryption key" in response.get_data(as_text=True)
    assert _accounts() == 0


# --- payout requests and history -----------------------------------------------------------


def _request_form(client, **overrides: str) -> dict[str, str]:
    data = {"csrf_token": csrf_token(client, "/payouts"), "amount": "", "method": "stripe"}
    data.update(overrides)
    return data


def _earner_logged_in(client, *, account: bool = True):
    user = make_user()
    make_sale(make_user(referrer=user), "600.00", days_ago=40)  # 60.00 available
    if account:
        make_payout_account(user)
    log_in(client, user.email)
    return user


def _payout_rows() -> int:
    return db.session.scalar(select(func.count()).select_from(Payout))


def test_the_form_offers_ready_methods_and_the_history_lists_payouts_newest_first(client):
    user = _earner_logged_in(client)
    make_payout_account(user, "lemon_squeezy")
    older = make_payout(user, "50.00", complete=True)
    make_sale(make_user(referrer=user), "600.00", days_ago=40)
    newer = make_payout(user, "55.00", "lemon_squeezy")
    html = client.get("/payouts").get_data(as_text=True)
    assert "Leave empty for all that is available: 15.00 USD" in html
    assert '<option value="lemon_squeezy">Lemon Squeezy</option>' in html
    assert '<option value="stripe">Stripe</option>' in html
    assert html.index(f'data-payout="{newer.id}"') < html.index(f'data-payout="{older.id}"')
    assert '<span class="badge badge-completed">Paid</span>' in html
    assert '<span class="badge badge-pending">Pending</span>' in html
    assert "55.00 USD" in html and "Lemon Squeezy</td>" in html


def test_without_a_ready_account_the_form_is_replaced_by_a_notice(client):
    user = _earner_logged_in(client, account=False)
    make_payout_account(user, ready=False)
    html = client.get("/payouts").get_data(as_text=True)
    assert 'data-request="no-account"' in html and "Request payout" not in html
    assert "No payouts yet." in html


def test_requesting_without_javascript_redirects_to_the_page_with_the_payout(client):
    user = _earner_logged_in(client)
    response = client.post("/payouts/request", data=_request_form(client))
    assert response.status_code == 302 and response.headers["Location"] == "/payouts"
    html = client.get("/payouts").get_data(as_text=True)
    assert "Payout of 60.00 USD requested." in html
    assert 'data-stat="available">0.00 USD<' in html
    payout = db.session.scalars(select(Payout)).one()
    assert (payout.user_id, payout.amount, payout.status) == (user.id, Decimal("60"), "pending")
    assert f'data-payout="{payout.id}"' in html


def test_requesting_with_htmx_sends_the_whole_page_again(client):
    _earner_logged_in(client)
    response = client.post("/payouts/request", data=_request_form(client, amount="50"), headers=HX)
    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/payouts"
    assert db.session.scalars(select(Payout.amount)).one() == Decimal("50")


@pytest.mark.parametrize(
    ("amount", "method", "message"),
    [
        ("50.001", "stripe", "Use at most 2 decimals for USD."),
        ("-50", "stripe", "Enter an amount above zero."),
        ("NaN", "stripe", "Enter a number, like 49.90."),
        ("1e400", "stripe", "You can request at most 60.00 USD now."),
        ("9" * 5000, "stripe", "You can request at most 60.00 USD now."),
        ("60.01", "stripe", "You can request at most 60.00 USD now."),
        ("49.99", "stripe", "The minimum payout is 50.00 USD"),
        ("abc", "stripe", "Not a valid decimal value."),
        ("", "lemon_squeezy", "Lemon Squeezy payout account is not set up yet"),
        ("", "paypal", "Choose how to be paid"),
    ],
)
def test_bad_requests_answer_422_with_the_message_and_change_nothing(
    client, amount, method, message
):
    _earner_logged_in(client)
    data = _request_form(client, amount=amount, method=method)
    response = client.post("/payouts/request", data=data, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert html.lstrip().startswith('<section class="card" id="payout-request"')
    assert message in html and 'aria-invalid="true"' in html
    assert _payout_rows() == 0
    assert "HX-Request" in response.headers["Vary"]


def test_a_refusal_without_javascript_answers_the_full_page_with_422(client):
    user = _earner_logged_in(client)
    make_payout(user, "50.00")
    response = client.post("/payouts/request", data=_request_form(client, amount="10"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<h1>Payouts</h1>" in html and "already have a payout in progress" in html
    assert 'id="payee"' in html
    assert _payout_rows() == 1


def test_requesting_needs_the_csrf_token(client):
    _earner_logged_in(client)
    for token in (None, "forged"):
        data = _request_form(client)
        if token is None:
            del data["csrf_token"]
        else:
            data["csrf_token"] = token
        assert client.post("/payouts/request", data=data, headers=HX).status_code == 400
    assert _payout_rows() == 0
