"""Forms show every error in one answer: the form's own checks and the database's together."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Sale, User
from app.services.accounts.passwords import verify_password
from tests.conftest import csrf_token, log_in, registration_form
from tests.factories import PASSWORD, make_user

HX = {"HX-Request": "true"}


def _errors(response) -> dict[str, str]:
    """The field errors of a form answer, by field id."""
    page = response.get_data(as_text=True)
    found = re.findall(r'class="field-error" id="([\w-]+)-error">([^<]*)<', page)
    return {name: html.unescape(message) for name, message in found}


def _register(client, **fields: str):
    return client.post("/register", data=registration_form(client, **fields), headers=HX)


def test_registration_shows_the_forms_and_the_databases_errors_together(client):
    make_user(username="taken")
    response = _register(
        client,
        username="Taken",
        email="not-an-email",
        password="short",
        confirm="other",
        referral_code="ZZZZZZZZ",
    )
    assert response.status_code == 422
    assert _errors(response) == {
        "username": "This username is taken. Try another.",
        "email": "Enter a valid email address, like name@example.com.",
        "password": "Use at least 10 characters.",
        "confirm": "The passwords differ.",
        "referral_code": "We don't know this referral code. Check it and try again.",
    }
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


def test_a_form_error_still_hides_whether_the_email_has_an_account(client):
    make_user(email="owner@example.com")
    registered = _register(client, email="owner@example.com", confirm="other")
    unknown = _register(client, email="nobody@example.com", confirm="other")
    assert _errors(registered) == _errors(unknown) == {"confirm": "The passwords differ."}
    assert "could not create an account" not in registered.get_data(as_text=True)


def test_every_registration_attempt_counts_against_the_limit(app):
    statuses = []
    for n in range(11):
        client = app.test_client()
        statuses.append(_register(client, username=f"v{n}", confirm="other").status_code)
    assert statuses == [422] * 10 + [429]


def test_password_change_shows_every_error_at_once(client):
    user = make_user(email="me@example.com")
    log_in(client, user.email)
    data = {
        "csrf_token": csrf_token(client, "/account/password"),
        "current_password": "not-my-password",
        "new_password": "short",
        "confirm": "different",
    }
    response = client.post("/account/password", data=data, headers=HX)
    assert response.status_code == 422
    assert _errors(response) == {
        "current_password": "That is not your current password.",
        "new_password": "Use at least 10 characters.",
        "confirm": "The passwords differ.",
    }
    db.session.refresh(user)
    assert verify_password(user.password_hash, PASSWORD)
    failed = select(func.count()).where(AuditEntry.action == "user.password_change_failed")
    assert db.session.scalar(failed) == 1


def test_admin_sale_form_names_the_unknown_buyer_with_the_other_errors(client):
    log_in(client, make_user(is_admin=True).email)
    data = {
        "csrf_token": csrf_token(client, "/admin/sales/new"),
        "token": "tok-1",
        "buyer": "nobody",
        "amount": "-5",
        "currency": "US",
        "occurred_on": datetime.now(UTC).date().isoformat(),
    }
    response = client.post("/admin/sales/new", data=data, headers=HX)
    assert response.status_code == 422
    assert _errors(response) == {
        "buyer": "No user has this username or email.",
        "amount": "Between 0.01 and 1,000,000.",
        "currency": "A 3-letter ISO code.",
    }
    assert db.session.scalar(select(func.count()).select_from(Sale)) == 0
