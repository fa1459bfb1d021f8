"""Sessions end when they should: on logout, on a password change, after their duration, and
when the user logs out their other devices."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry
from tests.conftest import csrf_token
from tests.factories import PASSWORD, make_user

EMAIL = "me@example.com"


def _log_in(client, remember: bool = True) -> None:
    data = {"csrf_token": csrf_token(client, "/login"), "email": EMAIL, "password": PASSWORD}
    if remember:
        data["remember"] = "y"
    assert client.post("/login", data=data).status_code == 302


def _signed_in(client) -> bool:
    return client.get("/dashboard").status_code == 200


def _cookies(client) -> dict[str, str]:
    return {name: client.get_cookie(name).value for name in ("session", "remember_token")}


def _replay(client, cookies: dict[str, str]) -> None:
    for name, value in cookies.items():
        client.set_cookie(name, value)


def test_captured_cookies_are_useless_after_logout(app, client):
    make_user(email=EMAIL)
    _log_in(client)
    captured = _cookies(client)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/dashboard")})
    thief = app.test_client()
    _replay(thief, captured)
    assert not _signed_in(thief)
    _replay(thief, {"remember_token": captured["remember_token"]})
    thief.delete_cookie("session")
    assert not _signed_in(thief)


def test_a_password_change_logs_out_other_devices(app):
    make_user(email=EMAIL)
    laptop, phone = app.test_client(), app.test_client()
    _log_in(laptop)
    _log_in(phone)
    changed = laptop.post(
        "/account/password",
        data={
            "csrf_token": csrf_token(laptop, "/account/password"),
            "current_password": PASSWORD,
            "new_password": "a-brand-new-secret",
            "confirm": "a-brand-new-secret",
        },
    )
    assert changed.status_code == 302
    assert not _signed_in(phone)
    assert _signed_in(laptop)
    laptop.delete_cookie("session")  # its remember-me cookie was renewed too
    assert _signed_in(laptop)


def test_a_remember_cookie_is_refused_after_its_duration(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "REMEMBER_COOKIE_DURATION", timedelta(seconds=2))
    make_user(email=EMAIL)
    _log_in(client)
    remember = client.get_cookie("remember_token").value
    client.delete_cookie("session")
    assert _signed_in(client)  # the remember-me cookie signs in again
    time.sleep(3)
    client.delete_cookie("session")
    client.set_cookie("remember_token", remember)  # the browser would have dropped it
    assert not _signed_in(client)


def test_log_out_other_devices(app):
    user = make_user(email=EMAIL)
    laptop, phone = app.test_client(), app.test_client()
    _log_in(laptop)
    _log_in(phone)
    page = laptop.get("/account").get_data(as_text=True)
    assert "Log out other devices" in page
    response = laptop.post(
        "/account/sessions/end-others", data={"csrf_token": csrf_token(laptop, "/account")}
    )
    assert response.status_code == 302
    assert not _signed_in(phone)
    assert _signed_in(laptop)
    laptop.delete_cookie("session")
    assert _signed_in(laptop)
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "user.sessions_ended")
    ).one()
    assert (entry.subject_id, entry.details["reason"]) == (user.id, "other_devices")


def test_log_out_other_devices_needs_the_csrf_token(app, client):
    make_user(email=EMAIL)
    _log_in(client)
    assert client.post("/account/sessions/end-others").status_code == 400
    assert _signed_in(client)
