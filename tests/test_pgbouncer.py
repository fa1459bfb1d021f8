"""The app behind a real PgBouncer in transaction pooling mode (docs/operations.md): its main
flows work, past psycopg's prepare threshold, and leave nothing on the server connections
that the next client's transaction would meet."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from app import create_app
from app.config import sqlalchemy_url
from app.extensions import db
from app.models import Commission, Payout, User
from app.services.payouts.stripe_accounts import open_stripe_account, refresh_stripe_account
from tests.conftest import csrf_token, log_in, make_app
from tests.factories import PASSWORD, make_user, set_program
from tests.payout_sending import settled
from tests.pgbouncer import session_state_left
from tests.services_under_test import libpq_url, recreate_database, with_database
from tests.signing import run_jobs, stripe_checkout, stripe_event, stripe_headers

# More runs than psycopg's prepare threshold (5 runs of one statement on a connection).
REPEATS = 8


@pytest.fixture(scope="module")
def direct_url(server) -> str:
    return recreate_database(server[0], "refmlm_test_pgbouncer")


@pytest.fixture(scope="module")
def app(server, pgbouncer, direct_url):
    """The app with ``DATABASE_URL`` through PgBouncer and prepared statements off (PgBouncer
    1.18 cannot follow them), ``DIRECT_DATABASE_URL`` for migrations and backups."""
    pooled = with_database(pgbouncer, make_url(direct_url).database)
    app = make_app(
        sqlalchemy_url(pooled),
        server[1],
        DIRECT_DATABASE_URL=direct_url,
        DATABASE_PREPARED_STATEMENTS=False,
    )
    yield app
    with app.app_context():
        db.engine.dispose()


# Pages that want a query string to answer 200.
QUERIES = {"/admin/tiers/simulate": "?max_tier=2&days=30&rate_1=12&rate_2=5"}


def _admin_pages(app) -> list[str]:
    """Every admin page without arguments in its path, discovered from the URL map."""
    return sorted(
        rule.rule + QUERIES.get(rule.rule, "")
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/admin") and "GET" in rule.methods and not rule.arguments
    )


def test_the_main_flows_work_through_pgbouncer_and_leave_no_session_state(
    app, client, fake_stripe, pgbouncer, direct_url
):
    set_program(hold_days=0, refund_window_days=0)
    referrer = make_user(username="sharer")
    client.get(f"/r/{referrer.referral_code}")
    form = {"csrf_token": csrf_token(client, "/register"), "username": "newbie"}
    form |= {"email": "newbie@example.com", "password": PASSWORD, "confirm": PASSWORD}
    form |= {"referral_code": referrer.referral_code, "terms_version": "1", "accept_terms": "y"}
    assert client.post("/register", data=form).status_code == 302
    buyer = db.session.scalars(select(User).where(User.username == "newbie")).one()
    assert buyer.referred_by == referrer.id

    body = stripe_event("checkout.session.completed", stripe_checkout(buyer.id, 60000, "pi_pgb"))
    response = client.post("/webhooks/stripe", data=body, headers=stripe_headers(body))
    assert response.status_code == 200
    run_jobs(app)  # the drain job, as a worker runs it
    commission = db.session.scalars(select(Commission)).one()
    assert (commission.user_id, commission.amount) == (referrer.id, Decimal("60.00"))

    account = open_stripe_account(referrer, "US")
    db.session.commit()
    fake_stripe.set_account_state(account.stripe_account_id, "onboarded")
    refresh_stripe_account(account)
    db.session.commit()
    earner = app.test_client()
    log_in(earner, referrer.email)
    request = {"csrf_token": csrf_token(earner, "/payouts"), "amount": "", "method": "stripe"}
    assert earner.post("/payouts/request", data=request).status_code == 302
    run_jobs(app)  # the send job: a transfer at the fake Stripe
    settled(fake_stripe, db.session.scalars(select(Payout.id)).one(), "completed", transfers=1)

    admin = app.test_client()
    log_in(admin, make_user(is_admin=True).email)
    pages = [*_admin_pages(app), f"/admin/users/{referrer.id}"]
    answers = {page: admin.get(page).status_code for page in pages}
    assert {page: status for page, status in answers.items() if status != 200} == {}
    db.session.rollback()  # the test's own transaction ends: every server connection is idle
    assert session_state_left(pgbouncer, libpq_url(direct_url)) == {}


def test_a_statement_run_past_the_prepare_threshold_follows_the_server_connections(app):
    """One client connection, a transaction per run, each on the next server connection. With
    prepared statements on, the run after psycopg prepared the statement (on one server
    connection) fails on the next: 'prepared statement "_pg3_0" does not exist'."""
    user = make_user()
    query = select(User.id, func.pg_backend_pid()).where(User.id == user.id)
    # PgBouncer opens server connections only when clients need them at once: hold two
    # transactions together first, so there are two to take turns on whatever ran before
    # this test on its worker.
    with (
        db.engine.connect() as first,
        db.engine.connect() as second,
        first.begin(),
        second.begin(),
    ):
        first.execute(select(1))
        second.execute(select(1))
    servers = set()
    with db.engine.connect() as connection:
        for _ in range(REPEATS):
            with connection.begin():
                found, server = connection.execute(query).one()
            assert found == user.id
            servers.add(server)
    assert len(servers) > 1


def test_the_environment_turns_server_side_prepared_statements_off(app, monkeypatch):
    monkeypatch.setenv("DATABASE_PREPARED_STATEMENTS", "false")
    configured = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
        }
    )
    with configured.app_context():
        connection = db.engine.raw_connection()
        try:
            assert connection.driver_connection.prepare_threshold is None
        finally:
            connection.close()
            db.engine.dispose()


def test_backups_run_on_the_direct_url(app, runner, tmp_path, pgbouncer, direct_url):
    """pg_dump and pg_restore change session settings (pg_restore an empty search_path):
    through PgBouncer they would stay on the server connections, verify would count no tables
    in the restored copy, and the app's next transactions would meet pg_dump's settings."""
    make_user()
    made = runner.invoke(args=["backup", "--dir", str(tmp_path)])
    assert made.exit_code == 0, made.output
    verified = runner.invoke(args=["backup", "--dir", str(tmp_path), "verify"])
    assert verified.exit_code == 0, verified.output
    db.session.rollback()
    assert session_state_left(pgbouncer, libpq_url(direct_url)) == {}
