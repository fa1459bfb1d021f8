"""Forgot your password: a mailed link that works once, for an hour, and says nothing about
which addresses have accounts."""

from __future__ import annotations

import re
import statistics
import time

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, OutboxMail, User
from app.services.accounts import password_reset
from app.services.accounts.passwords import verify_password
from app.services.accounts.tokens import EXPIRED, FORGED, OTHER_ACCOUNT, USED
from tests.conftest import csrf_token, log_in
from tests.factories import PASSWORD, make_user
from tests.signing import run_jobs

HX = {"HX-Request": "true"}
NEW_PASSWORD = "a-brand-new-passphrase"
_LINK = re.compile(r"http://localhost(/password/reset/[^\s\"<]+)")


def _ask(client, email: str, ip: str = "203.0.113.7", headers=None):
    data = {"csrf_token": csrf_token(client, "/password/forgot"), "email": email}
    return client.post(
        "/password/forgot", data=data, headers=headers, environ_base={"REMOTE_ADDR": ip}
    )


def _link_from_mail(app, inbox, user) -> str:
    run_jobs(app)
    [message] = inbox.to(user.email)
    text = message.get_body(("plain",)).get_content()
    path = _LINK.search(text).group(1)
    assert path in message.get_body(("html",)).get_content()
    return path


def _set_password(client, path: str, password: str = NEW_PASSWORD, headers=None):
    token = csrf_token(client, "/password/forgot")
    data = {"csrf_token": token, "new_password": password, "confirm": password}
    return client.post(path, data=data, headers=headers)


def _password_is(user: User, password: str) -> bool:
    db.session.rollback()
    return verify_password(db.session.get(User, user.id).password_hash, password)


def test_the_login_page_leads_to_the_form(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/password/forgot">Forgot your password?' in page


def test_a_reset_link_arrives_works_once_and_logs_in(app, client, smtp_server):
    user = make_user()
    response = _ask(client, user.email)
    assert response.status_code == 200
    assert str(escape(password_reset.SENT)) in response.get_data(as_text=True)
    path = _link_from_mail(app, smtp_server, user)

    assert "Choose a new password" in client.get(path).get_data(as_text=True)
    response = _set_password(client, path)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert _password_is(user, NEW_PASSWORD)
    log_in(client, user.email, NEW_PASSWORD)

    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    again = client.get(path)
    assert again.status_code == 400
    assert USED in again.get_data(as_text=True)
    response = _set_password(client, path, "yet-another-passphrase")
    assert response.status_code == 422
    assert USED in response.get_data(as_text=True)
    assert _password_is(user, NEW_PASSWORD)
    assert (
        db.session.scalar(select(func.count()).where(AuditEntry.action == "user.password_reset"))
        == 1
    )


def test_a_reset_ends_every_other_session(app, client, smtp_server):
    user = make_user()
    other_device = app.test_client()
    log_in(other_device, user.email)
    _ask(client, user.email)
    _set_password(client, _link_from_mail(app, smtp_server, user))
    response = other_device.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_known_and_unknown_addresses_get_the_same_answer_in_similar_time(app, client, smtp_server):
    user = make_user()
    known = _ask(client, user.email, ip="203.0.113.1")
    unknown = _ask(client, "nobody@example.com", ip="203.0.113.2")
    assert known.status_code == unknown.status_code == 200
    assert known.get_data() == unknown.get_data()
    assert known.headers.get("Set-Cookie") is None and unknown.headers.get("Set-Cookie") is None
    hx_known = _ask(client, user.email, ip="203.0.113.3", headers=HX)
    hx_unknown = _ask(client, "nobody@example.com", ip="203.0.113.4", headers=HX)
    assert hx_known.get_data() == hx_unknown.get_data()

    def timed(email: str, n: int) -> float:
        data = {"csrf_token": csrf_token(client, "/password/forgot"), "email": email}
        started = time.perf_counter()
        client.post("/password/forgot", data=data, environ_base={"REMOTE_ADDR": f"198.51.100.{n}"})
        return time.perf_counter() - started

    # Interleaved pairs (each known address once, under its per-address limit), so a busy
    # machine slows both sides alike; loose: neither median more than half again the other.
    others = [make_user() for _ in range(5)]
    known_times, unknown_times = [], []
    for n, other in enumerate(others):
        known_times.append(timed(other.email, n))
        unknown_times.append(timed(f"nobody{n}@example.com", 10 + n))
    assert statistics.median(known_times) < 1.5 * statistics.median(unknown_times) + 0.02
    assert statistics.median(unknown_times) < 1.5 * statistics.median(known_times) + 0.02

    run_jobs(app)
    assert len(smtp_server.messages) == 7  # the known addresses', none for the unknown ones
    assert db.session.scalar(select(func.count()).select_from(OutboxMail)) == 7


def test_an_expired_link_is_refused_and_changes_nothing(app, client, smtp_server, monkeypatch):
    user = make_user()
    _ask(client, user.email)
    path = _link_from_mail(app, smtp_server, user)
    monkeypatch.setattr(password_reset, "RESET_LINK_MAX_AGE", -1)  # every link is too old
    response = client.get(path)
    assert response.status_code == 400
    assert EXPIRED in response.get_data(as_text=True)
    response = _set_password(client, path)
    assert response.status_code == 422
    assert EXPIRED in response.get_data(as_text=True)
    assert _password_is(user, PASSWORD)


@pytest.mark.parametrize("path", ["/password/reset/forged", "/password/reset/a.b.c"])
def test_a_forged_link_is_refused(client, path):
    response = client.get(path)
    assert response.status_code == 400
    assert FORGED in response.get_data(as_text=True)


def test_a_tampered_link_is_refused_and_changes_nothing(app, client, smtp_server):
    user = make_user()
    _ask(client, user.email)
    path = _link_from_mail(app, smtp_server, user)
    tampered = path[:-2] + ("AA" if not path.endswith("AA") else "BB")
    response = _set_password(client, tampered, headers=HX)
    assert response.status_code == 422
    assert FORGED in response.get_data(as_text=True)
    assert _password_is(user, PASSWORD)


def test_another_accounts_link_is_refused_while_signed_in(app, client, smtp_server):
    owner, other = make_user(), make_user()
    _ask(client, owner.email)
    path = _link_from_mail(app, smtp_server, owner)
    log_in(client, other.email)
    response = _set_password(client, path)
    assert response.status_code == 422
    assert OTHER_ACCOUNT in response.get_data(as_text=True)
    assert _password_is(owner, PASSWORD)
    assert _password_is(other, PASSWORD)


def test_a_link_to_an_address_the_account_no_longer_has_is_refused(app, client, smtp_server):
    user = make_user()
    _ask(client, user.email)
    path = _link_from_mail(app, smtp_server, user)
    db.session.get(User, user.id).email = f"moved-{user.email}"  # as a confirmed change does
    db.session.commit()
    response = client.get(path)
    assert response.status_code == 400
    assert USED in response.get_data(as_text=True)
    response = _set_password(client, path)
    assert response.status_code == 422
    assert USED in response.get_data(as_text=True)
    assert _password_is(user, PASSWORD)


def test_a_weak_new_password_is_refused_and_the_link_still_works(app, client, smtp_server):
    user = make_user()
    _ask(client, user.email)
    path = _link_from_mail(app, smtp_server, user)
    response = _set_password(client, path, "short", headers=HX)
    assert response.status_code == 422
    assert "Use at least 10 characters." in response.get_data(as_text=True)
    assert _password_is(user, PASSWORD)
    assert _set_password(client, path).status_code == 302


def test_asking_is_rate_limited_per_address(client):
    for n in range(5):
        assert _ask(client, "target@example.com", ip=f"192.0.2.{n}").status_code == 200
    response = _ask(client, "target@example.com", ip="192.0.2.99")
    assert response.status_code == 429
    assert "Too many attempts" in response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) > 0  # as every other limited form says


def test_a_bad_address_is_a_clear_422(client):
    response = _ask(client, "", headers=HX)
    assert response.status_code == 422
    assert "Enter your email address." in response.get_data(as_text=True)
