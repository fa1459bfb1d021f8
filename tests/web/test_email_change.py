"""Changing the email address: a link to the new address, a notice to the old one; the
address changes only when the link is opened, once."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, OutboxMail, User
from app.services.accounts import email_change
from app.services.accounts.accounts import EMAIL_TAKEN
from app.services.accounts.tokens import EXPIRED, FORGED, OTHER_ACCOUNT, USED
from tests.conftest import csrf_token, log_in
from tests.factories import PASSWORD, make_user
from tests.signing import run_jobs

HX = {"HX-Request": "true"}
NEW = "moved@example.org"
_LINK = re.compile(r"http://localhost(/account/email/confirm/[^\s\"<]+)")


def _ask(client, new_email: str = NEW, password: str = PASSWORD, headers=None):
    data = {
        "csrf_token": csrf_token(client, "/account"),
        "new_email": new_email,
        "current_password": password,
    }
    return client.post("/account/email", data=data, headers=headers)


def _confirm(client, path: str):
    return client.post(path, data={"csrf_token": csrf_token(client, "/account")})


def _email_of(user: User) -> str:
    db.session.rollback()
    return db.session.get(User, user.id).email


def _link(app, inbox) -> str:
    run_jobs(app)
    [message] = inbox.to(NEW)
    path = _LINK.search(message.get_body(("plain",)).get_content()).group(1)
    assert path in message.get_body(("html",)).get_content()
    return path


@pytest.fixture
def user(client):
    user = make_user(email="before@example.com")
    log_in(client, user.email)
    return user


def test_the_account_page_shows_everything(client, user):
    page = client.get("/account").get_data(as_text=True)
    assert user.username in page and user.email in page
    assert 'id="email-form"' in page
    assert 'href="/account/password"' in page
    assert "Log out other devices" in page


def test_the_new_address_confirms_and_the_old_one_is_told(app, client, user, smtp_server):
    response = _ask(client)
    assert response.status_code == 302
    assert _email_of(user) == "before@example.com"  # not yet
    path = _link(app, smtp_server)
    [notice] = smtp_server.to("before@example.com")
    assert NEW in notice.get_body(("plain",)).get_content()
    assert notice.get_body(("html",)) is not None

    assert NEW in client.get(path).get_data(as_text=True)  # asks to confirm, changes nothing
    assert _email_of(user) == "before@example.com"
    response = _confirm(client, path)
    assert response.status_code == 302
    assert _email_of(user) == NEW
    actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"user.email_change_requested", "user.email_changed"} <= actions

    again = _confirm(client, path)
    assert again.status_code == 422
    assert USED in again.get_data(as_text=True)
    assert client.get(path).status_code == 400


def test_a_taken_address_is_refused_and_nothing_is_sent(client, user):
    make_user(email="Taken@Example.com")
    response = _ask(client, "taken@example.com", headers=HX)
    assert response.status_code == 422
    assert EMAIL_TAKEN in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(OutboxMail)) == 0


def test_a_wrong_password_is_refused_audited_and_nothing_is_sent(client, user):
    response = _ask(client, password="not-my-password", headers=HX)
    assert response.status_code == 422
    assert "That is not your current password." in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(OutboxMail)) == 0
    assert (
        db.session.scalar(
            select(func.count()).where(AuditEntry.action == "user.email_change_failed")
        )
        == 1
    )


def test_confirmation_mails_to_other_addresses_are_limited(client, user):
    # Each request mails an address the user chose: the right password must not make it free.
    for n in range(5):
        assert _ask(client, f"someone{n}@example.org").status_code == 302
    answer = _ask(client, "someone5@example.org", headers=HX)
    assert answer.status_code == 429
    assert "Too many attempts" in answer.get_data(as_text=True)
    sent = select(func.count()).where(OutboxMail.kind == "email_change_confirm")
    assert db.session.scalar(sent) == 5


@pytest.mark.parametrize(
    ("new_email", "message"),
    [("", "Enter the new address."), ("not-an-address", "Enter a valid email address")],
)
def test_bad_input_is_a_clear_422(client, user, new_email, message):
    response = _ask(client, new_email, headers=HX)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_the_same_address_is_refused(client, user):
    response = _ask(client, "BEFORE@example.com")
    assert response.status_code == 422
    assert email_change.SAME_ADDRESS in response.get_data(as_text=True)


def test_a_wrong_password_and_the_same_address_are_told_in_one_answer(client, user):
    """Every error at once: the address's problem is not held back until the password is
    right (only "taken" is, so that a guess cannot find out who has an account)."""
    response = _ask(client, "BEFORE@example.com", password="not-my-password", headers=HX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "That is not your current password." in body and email_change.SAME_ADDRESS in body
    make_user(email="taken@example.com")
    body = _ask(client, "taken@example.com", password="not-my-password").get_data(as_text=True)
    assert "That is not your current password." in body and EMAIL_TAKEN not in body
    assert db.session.scalar(select(func.count()).select_from(OutboxMail)) == 0


def test_an_address_taken_before_the_link_is_opened_changes_nothing(app, client, user, smtp_server):
    _ask(client)
    path = _link(app, smtp_server)
    make_user(email=NEW)
    response = _confirm(client, path)
    assert response.status_code == 422
    assert EMAIL_TAKEN in response.get_data(as_text=True)
    assert _email_of(user) == "before@example.com"


def test_another_accounts_link_is_refused(app, client, user, smtp_server):
    _ask(client)
    path = _link(app, smtp_server)
    other = make_user()
    other_client = app.test_client()
    log_in(other_client, other.email)
    response = _confirm(other_client, path)
    assert response.status_code == 422
    assert OTHER_ACCOUNT in response.get_data(as_text=True)
    assert _email_of(user) == "before@example.com"
    assert _email_of(other) == other.email


def test_an_expired_or_forged_link_is_refused(app, client, user, smtp_server, monkeypatch):
    _ask(client)
    path = _link(app, smtp_server)
    forged = client.get("/account/email/confirm/forged")
    assert forged.status_code == 400
    assert FORGED in forged.get_data(as_text=True)
    monkeypatch.setattr(email_change, "CONFIRM_LINK_MAX_AGE", -1)
    response = _confirm(client, path)
    assert response.status_code == 422
    assert EXPIRED in response.get_data(as_text=True)
    assert _email_of(user) == "before@example.com"


def test_the_link_asks_a_visitor_to_log_in_first(app, client, user, smtp_server):
    _ask(client)
    path = _link(app, smtp_server)
    response = app.test_client().get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
