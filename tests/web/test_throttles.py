"""Attempt limits hold under parallel requests on real servers, fail closed without Redis,
and guard the password change; an HTMX login keeps a non-ASCII ``next`` through gunicorn."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

import requests
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry
from app.services.referral_links import safe_next
from tests.conftest import csrf_token, log_in
from tests.factories import PASSWORD, make_user
from tests.gunicorn_server import gunicorn

EMAIL = "me@example.com"
_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _browser(base: str, path: str = "/login") -> tuple[requests.Session, str]:
    """A session with the cookies and CSRF token a browser would have after loading ``path``."""
    browser = requests.Session()
    token = _TOKEN.search(browser.get(base + path, timeout=30).text).group(1)
    return browser, token


def test_parallel_wrong_passwords_are_evaluated_at_most_the_limit(app):
    make_user(email=EMAIL)
    attempts = 30
    with gunicorn(app, workers=2, threads=attempts // 2) as served:
        base = served.url
        browser, token = _browser(base)
        start = threading.Barrier(attempts)

        def guess(n: int) -> int:
            start.wait()
            data = {"csrf_token": token, "email": EMAIL, "password": f"wrong-guess-{n}"}
            return browser.post(f"{base}/login", data=data, timeout=60).status_code

        with ThreadPoolExecutor(attempts) as pool:
            statuses = list(pool.map(guess, range(attempts)))
    assert set(statuses) <= {422, 429}
    assert statuses.count(422) <= 5  # evaluated: the limit is 5 a minute per IP and email


def test_without_redis_sign_in_is_refused_with_a_clear_message_not_a_500(app):
    make_user(email=EMAIL)
    with gunicorn(app, REDIS_URL="redis://127.0.0.1:1/0") as served:
        base = served.url
        assert requests.get(f"{base}/", timeout=30).status_code == 200
        browser, token = _browser(base)
        for headers in ({}, {"HX-Request": "true"}):
            data = {"csrf_token": token, "email": EMAIL, "password": PASSWORD}
            response = browser.post(f"{base}/login", data=data, headers=headers, timeout=30)
            assert response.status_code == 503
            assert "Sign-in is temporarily unavailable" in response.text
        browser, token = _browser(base, "/register")
        data = {
            "csrf_token": token,
            "username": "newbie",
            "email": "newbie@example.com",
            "password": PASSWORD,
            "confirm": PASSWORD,
        }
        response = browser.post(f"{base}/register", data=data, timeout=30)
        assert response.status_code == 503
        assert "Registration is temporarily unavailable" in response.text


def test_htmx_login_with_a_non_ascii_next_keeps_the_session(app):
    make_user(email=EMAIL)
    target = "/network?q=jürgen✓"
    with gunicorn(app) as served:
        base = served.url
        browser, token = _browser(base)
        response = browser.post(
            f"{base}/login",
            params={"next": target},
            data={"csrf_token": token, "email": EMAIL, "password": PASSWORD},
            headers={"HX-Request": "true"},
            timeout=30,
        )
        assert response.status_code == 200
        location = response.headers["HX-Redirect"]
        assert location.isascii() and unquote(location) == target
        assert browser.get(f"{base}/dashboard", allow_redirects=False).status_code == 200


def test_next_refuses_what_a_browser_would_turn_into_another_site():
    assert safe_next("/network?q=jürgen") == "/network?q=jürgen"
    for target in ("/\t/evil.example", "/\n/evil.example", "/\\evil.example", "//evil.example"):
        assert safe_next(target) is None


def _change(client, current: str) -> int:
    data = {
        "csrf_token": csrf_token(client, "/account/password"),
        "current_password": current,
        "new_password": "a-brand-new-secret",
        "confirm": "a-brand-new-secret",
    }
    return client.post("/account/password", data=data).status_code


def _audited(action: str) -> int:
    return db.session.scalar(select(func.count()).where(AuditEntry.action == action))


def test_current_password_guesses_are_limited_and_audited(client):
    make_user(email=EMAIL)
    log_in(client, EMAIL)
    statuses = [_change(client, f"guess-{n}") for n in range(6)]
    assert statuses == [422] * 5 + [429]
    assert _change(client, PASSWORD) == 429  # even the right one, until the window ends
    assert _audited("user.password_change_failed") == 5
    assert _audited("user.password_rate_limited") == 2
