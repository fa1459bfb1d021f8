"""Fixtures: real PostgreSQL and Redis, a migrated test database, a clean slate per test."""

from __future__ import annotations

import contextvars
import os
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import text

from app import create_app
from app.extensions import db, limiter
from app.jobs.queueing import get_redis
from app.services.program.program import seed_program_defaults
from tests.factories import PASSWORD, make_user
from tests.fake_stripe import fake_stripe  # noqa: F401 - a fixture for every test
from tests.ledger_checks import assert_ledger_invariant
from tests.pgbouncer import pgbouncer  # noqa: F401 - a fixture for every test
from tests.replica import replica, replica_server  # noqa: F401 - fixtures for every test
from tests.services_under_test import recreate_database, redis_url_for_tests, server_urls
from tests.signing import LEMON_SECRET, STRIPE_CONNECT_SECRET, STRIPE_SECRET
from tests.smtp_server import smtp_server, starttls_server  # noqa: F401 - fixtures for every test

# A fixed key for payee details in tests (never used anywhere else).
TEST_FERNET_KEY = "Qy9ZCUD4jI847kS6_Azq-pWVAoG42su6pnsAE9fNH20="


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


class IsolatedClient(FlaskClient):
    """Each request gets its own app context (and so its own ``g`` and db session), as in
    production, instead of reusing the test's own context."""

    def open(self, *args, **kwargs):
        return contextvars.Context().run(self._open_and_drain, *args, **kwargs)

    def _open_and_drain(self, *args, **kwargs):
        # A streamed body is read, and the response closed, in the request's own Context:
        # its generator holds the request and app contexts (and the db session) until then.
        response = super().open(*args, **kwargs)
        response.was_streamed = response.is_streamed
        if response.is_streamed:
            response.make_sequence()
            response.close()
        return response


@pytest.fixture(scope="session")
def server() -> tuple[str, str]:
    return server_urls()


def make_app(database_url: str, redis_server: str, **config: object) -> Flask:
    """A test app on ``database_url`` and the suite's own database of ``redis_server``
    (``config`` added), its database migrated to head."""
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url_for_tests(redis_server),
            "SECRET_KEY": "test-secret",
            "PUBLIC_BASE_URL": "http://localhost",
            "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
            "STRIPE_CONNECT_WEBHOOK_SECRET": STRIPE_CONNECT_SECRET,
            "LEMONSQUEEZY_WEBHOOK_SECRET": LEMON_SECRET,
            # Never the real Stripe from tests, whatever the environment holds: the
            # fake_stripe fixture sets both for the tests that call Stripe.
            "STRIPE_SECRET_KEY": "",
            "STRIPE_API_BASE": "http://127.0.0.1:9",
            "FERNET_KEYS": TEST_FERNET_KEY,
            **config,
        }
    )
    app.test_client_class = IsolatedClient
    with app.app_context():
        upgrade()
        db.session.remove()
    return app


@pytest.fixture(scope="session")
def app(server):
    database_server, redis_server = server
    database_url = recreate_database(database_server, f"refmlm_test_{_worker_suffix()}")
    return make_app(database_url, redis_server)


_TABLES = (
    "outbox",
    "webhook_events",
    "webhook_events_archive",
    "referral_clicks_archive",
    "audit_log",
    "referral_clicks",
    "referral_flags",
    "commissions",
    "payouts",
    "payout_accounts",
    "referrals",
    "users",
    "program_terms",
    "mlm_tiers",
    "referral_program_settings",
)


def reset_database() -> None:
    """Empty every table and re-seed the program defaults (also between Hypothesis examples)."""
    db.session.rollback()
    db.session.execute(text(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY CASCADE"))
    seed_program_defaults()
    db.session.commit()


@pytest.fixture(autouse=True)
def ctx(app):
    """Each test starts from the seeded state, in its own app context, with an empty Redis."""
    with app.app_context():
        reset_database()
        get_redis().flushdb()
        limiter.reset()  # its storage is bound by the last create_app, wherever that points
        yield
        db.session.remove()


@pytest.fixture
def ledger_holds():
    """After the test, the ledger invariant holds (README, "The ledger")."""
    yield
    db.session.rollback()
    assert_ledger_invariant()


@pytest.fixture
def admin(client):
    """An admin, logged in on ``client``."""
    user = make_user(is_admin=True)
    log_in(client, user.email)
    return user


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


_CSRF = re.compile(r'"X-CSRFToken": "([^"]+)"|name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client, path: str = "/") -> str:
    """The CSRF token a browser would have after loading ``path``."""
    html = client.get(path).get_data(as_text=True)
    match = _CSRF.search(html)
    assert match, f"no CSRF token on {path}"
    return match.group(1) or match.group(2)


def registration_form(client, **overrides: str) -> dict[str, str]:
    """What the registration form posts for "newbie" (terms accepted), with ``overrides``."""
    return {
        "csrf_token": csrf_token(client, "/register"),
        "username": "newbie",
        "email": "newbie@example.com",
        "password": PASSWORD,
        "confirm": PASSWORD,
        "referral_code": "",
        "terms_version": "1",
        "accept_terms": "y",
        **overrides,
    }


def log_in(client, email: str, password: str = PASSWORD) -> None:
    data = {"csrf_token": csrf_token(client, "/login"), "email": email, "password": password}
    assert client.post("/login", data=data).status_code == 302
