"""Attempt limits hold under parallel requests on real servers and from many addresses,
fail closed without Redis (and quickly when it stalls), and guard the password change; an
HTMX login keeps a non-ASCII ``next`` through gunicorn."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

import requests
from sqlalchemy import func, select

from app.extensions import db
from app.jobs.queueing import get_redis
from app.models import AuditEntry, WebhookEvent
from app.services.network.referral_links import safe_next
from tests.conftest import csrf_token, log_in
from tests.factories import PASSWORD, make_chain, make_user
from tests.gunicorn_server import gunicorn
from tests.signing import stripe_checkout, stripe_event, stripe_headers

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
            "terms_version": "1",
            "accept_terms": "y",
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
    assert _audited("user.password_rate_limited") == 1  # once per window, not per refusal


def _stalled_redis() -> socket.socket:
    """A port that accepts connections and never answers, like a Redis that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    return listener


def test_a_stalled_redis_costs_seconds_not_the_worker(app):
    make_user(email=EMAIL)
    _, buyer = make_chain(2)
    body = stripe_event("checkout.session.completed", stripe_checkout(buyer.id, 1000, "pi_st"))
    with (
        contextlib.closing(_stalled_redis()) as stalled,
        gunicorn(app, REDIS_URL=f"redis://127.0.0.1:{stalled.getsockname()[1]}/0") as served,
    ):
        browser, token = _browser(served.url)
        data = {"csrf_token": token, "email": EMAIL, "password": PASSWORD}
        # Within gunicorn's 30 s timeout, with a clear answer (the 15 s bound fails first).
        response = browser.post(f"{served.url}/login", data=data, timeout=15)
        assert response.status_code == 503
        response = requests.post(
            f"{served.url}/webhooks/stripe", data=body, headers=stripe_headers(body), timeout=15
        )
        assert response.status_code == 200  # stored; the sweeper requests the drain later
    assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == 1


def _wrong_login(client, email: str, address: str) -> int:
    data = {"csrf_token": csrf_token(client, "/login"), "email": email, "password": "no-no-no-no"}
    return client.post("/login", data=data, environ_base={"REMOTE_ADDR": address}).status_code


def test_one_account_is_not_guessed_without_limit_from_many_addresses(client):
    make_user(email=EMAIL)
    # One IPv6 subscriber rotating addresses inside its /64 is one client.
    rotating = [_wrong_login(client, EMAIL, f"2001:db8::{n:x}") for n in range(8)]
    assert rotating.count(422) == 5
    # Many IPv4 addresses, one guess each.
    spread = [_wrong_login(client, EMAIL, f"198.51.100.{n}") for n in range(25)]
    # The account's own limit (20 an hour, refused attempts included) holds.
    assert spread.count(422) == 20 - len(rotating)


def test_a_huge_email_is_refused_before_any_parsing_or_counting(client):
    huge = "a." * 240_000 + "@example.com"
    assert _wrong_login(client, huge, "192.0.2.1") == 422
    redis = get_redis()
    assert max((len(key) for key in redis.scan_iter("*")), default=0) < 1000


def test_refused_logins_write_one_audit_entry_per_window(client):
    make_user(email=EMAIL)
    statuses = [_wrong_login(client, EMAIL, "192.0.2.7") for _ in range(12)]
    assert statuses == [422] * 5 + [429] * 7
    audited = select(func.count()).where(AuditEntry.action == "auth.login_rate_limited")
    assert db.session.scalar(audited) == 1
