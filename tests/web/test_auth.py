"""Registering, logging in and out, and changing the password, through the web."""

from __future__ import annotations

import html
import re

from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Referral, User
from app.services.accounts.accounts import NOT_CREATED
from app.services.accounts.passwords import verify_password
from tests.conftest import csrf_token, log_in, registration_form
from tests.factories import PASSWORD, make_user

HX = {"HX-Request": "true"}


def _users() -> int:
    return db.session.scalar(select(func.count()).select_from(User))


def test_register_through_a_shared_link_without_javascript(client):
    referrer = make_user(username="sharer")
    client.get(f"/r/{referrer.referral_code}")
    page = client.get("/register").get_data(as_text=True)
    assert f'value="{referrer.referral_code}"' in page  # prefilled from the cookie
    response = client.post(
        "/register", data=registration_form(client, referral_code=referrer.referral_code)
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"
    user = db.session.scalars(select(User).where(User.username == "newbie")).one()
    assert user.referred_by == referrer.id
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert "Hello, newbie" in dashboard


def test_htmx_registration_errors_swap_the_form_with_422(client):
    response = client.post(
        "/register",
        data=registration_form(client, email="not-an-email", confirm="different"),
        headers=HX,
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert html.lstrip().startswith("<form")
    assert "valid email address" in html and "passwords differ" in html
    assert 'aria-invalid="true"' in html
    assert _users() == 0


def test_plain_post_with_errors_is_a_full_page_422(client):
    response = client.post(
        "/register", data=registration_form(client, password="short", confirm="short")
    )
    assert response.status_code == 422
    assert "<!doctype html>" in response.get_data(as_text=True)
    assert "at least 10" in response.get_data(as_text=True)


def test_htmx_registration_success_redirects_the_page(client):
    response = client.post("/register", data=registration_form(client), headers=HX)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/dashboard"


def test_unknown_code_is_a_clear_error(client):
    response = client.post("/register", data=registration_form(client, referral_code="ZZZZZZZZ"))
    assert response.status_code == 422
    assert "don&#39;t know this referral code" in response.get_data(as_text=True)
    assert _users() == 0


def _errors(html: str) -> list[str]:
    return re.findall(r'class="(?:form|field)-error"[^>]*>([^<]*)<', html)


def test_a_rejected_registration_does_not_tell_whether_the_email_has_an_account(client):
    make_user(username="taken", email="owner@example.com")
    for mistakes in ({"username": "taken"}, {"referral_code": "ZZZZZZZZ"}):
        registered = client.post(
            "/register", data=registration_form(client, email="OWNER@example.com", **mistakes)
        )
        unknown = client.post(
            "/register", data=registration_form(client, email="nobody@example.com", **mistakes)
        )
        assert registered.status_code == unknown.status_code == 422
        assert _errors(registered.get_data(as_text=True)) == _errors(unknown.get_data(as_text=True))
    assert _users() == 1


def test_a_taken_email_gets_a_neutral_answer(client):
    make_user(email="owner@example.com")
    response = client.post(
        "/register", data=registration_form(client, email="Owner@Example.com"), headers=HX
    )
    assert response.status_code == 422
    assert _errors(response.get_data(as_text=True)) == [html.escape(NOT_CREATED, quote=True)]
    assert _users() == 1


def test_registration_is_limited_per_ip(app):
    statuses = []
    for n in range(11):
        client = app.test_client()  # a new visitor each time, from the same IP
        statuses.append(
            client.post(
                "/register",
                data=registration_form(client, username=f"visitor{n}", email=f"v{n}@example.com"),
            ).status_code
        )
    assert statuses == [302] * 10 + [429]
    assert _users() == 10


def test_register_without_csrf_token_is_refused(client):
    data = registration_form(client)
    del data["csrf_token"]
    assert client.post("/register", data=data).status_code == 400
    assert _users() == 0


def test_login_starts_a_fresh_session_and_logout_ends_it(client):
    make_user(email="me@example.com")
    with client.session_transaction() as session:
        session["planted"] = "by-an-attacker"
    response = client.post(
        "/login",
        data={
            "csrf_token": csrf_token(client, "/login"),
            "email": "ME@example.com",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"]
    logout = client.post("/logout", data={"csrf_token": csrf_token(client, "/dashboard")})
    assert logout.status_code == 302
    assert client.get("/dashboard").status_code == 302  # back to the login page


def test_remember_me_sets_a_remember_cookie(client):
    make_user(email="me@example.com")
    client.post(
        "/login",
        data={
            "csrf_token": csrf_token(client, "/login"),
            "email": "me@example.com",
            "password": PASSWORD,
            "remember": "y",
        },
    )
    assert client.get_cookie("remember_token") is not None


def test_same_error_for_unknown_email_and_wrong_password(client):
    make_user(email="me@example.com")
    token = csrf_token(client, "/login")
    wrong_password = client.post(
        "/login",
        data={"csrf_token": token, "email": "me@example.com", "password": "nope-nope-nope"},
    )
    unknown = client.post(
        "/login",
        data={"csrf_token": token, "email": "who@example.com", "password": "nope-nope-nope"},
    )
    assert wrong_password.status_code == unknown.status_code == 422
    message = "That email and password don&#39;t match an account."
    assert message in wrong_password.get_data(as_text=True)
    assert message in unknown.get_data(as_text=True)


def test_login_next_only_to_local_paths(client):
    make_user(email="me@example.com")
    token = csrf_token(client, "/login")
    response = client.post(
        "/login?next=https://evil.example/",
        data={"csrf_token": token, "email": "me@example.com", "password": PASSWORD},
    )
    assert response.headers["Location"] == "/dashboard"


def test_repeated_failed_logins_are_rate_limited_and_audited(client):
    make_user(email="me@example.com")
    token = csrf_token(client, "/login")
    data = {"csrf_token": token, "email": "me@example.com", "password": "wrong-password"}
    statuses = [client.post("/login", data=data).status_code for _ in range(6)]
    assert statuses == [422] * 5 + [429]
    blocked = client.post("/login", data={**data, "password": PASSWORD})
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)
    assert db.session.scalar(
        select(func.count()).where(AuditEntry.action == "auth.login_rate_limited")
    )


def test_successful_logins_do_not_count_towards_the_limit(client):
    make_user(email="me@example.com")
    for _ in range(7):
        data = {
            "csrf_token": csrf_token(client, "/login"),
            "email": "me@example.com",
            "password": PASSWORD,
        }
        assert client.post("/login", data=data).status_code == 302
        client.post("/logout", data={"csrf_token": csrf_token(client, "/dashboard")})


def test_password_change(client):
    user = make_user(email="me@example.com")
    log_in(client, "me@example.com")
    token = csrf_token(client, "/account/password")
    bad = client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": "wrong",
            "new_password": "x" * 12,
            "confirm": "x" * 12,
        },
    )
    assert bad.status_code == 422 and "not your current password" in bad.get_data(as_text=True)
    good = client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": PASSWORD,
            "new_password": "a-brand-new-secret",
            "confirm": "a-brand-new-secret",
        },
    )
    assert good.status_code == 302
    db.session.refresh(user)
    assert verify_password(user.password_hash, "a-brand-new-secret")
    assert db.session.scalar(
        select(func.count()).where(AuditEntry.action == "user.password_changed")
    )


def test_a_registration_writes_the_chain_in_one_transaction(client):
    root = make_user()
    middle = make_user(referrer=root)
    client.post("/register", data=registration_form(client, referral_code=middle.referral_code))
    new = db.session.scalars(select(User).where(User.username == "newbie")).one()
    tiers = db.session.execute(
        select(Referral.tier, Referral.referrer_id).where(Referral.referred_user_id == new.id)
    ).all()
    assert sorted(tiers) == [(1, middle.id), (2, root.id)]


def test_logging_out_from_an_expired_page_never_shows_an_error(client):
    # The session is gone (expired, or cleared): the visitor is logged out already.
    answer = client.post("/logout", data={"csrf_token": "from-a-session-that-ended"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    assert "You are logged out." in client.get("/").get_data(as_text=True)
    # Signed in, with a form from an older session: asked again with a fresh form, and
    # nothing is done until then (another site cannot log anyone out).
    make_user(email="me@example.com")
    log_in(client, "me@example.com")
    answer = client.post("/logout", data={"csrf_token": "from-a-session-that-ended"})
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "Log out?" in body
    assert client.get("/dashboard").status_code == 200
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)
    assert client.post("/logout", data={"csrf_token": fresh}).status_code == 302
    assert client.get("/dashboard").status_code == 302
    # Any other form with an expired token keeps the usual answer.
    refused = client.post("/login", data={"csrf_token": "stale", "email": "a@b.c"})
    assert refused.status_code == 400 and "This form has expired" in refused.get_data(as_text=True)
