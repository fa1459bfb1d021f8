"""The Stripe Connect endpoint: signed with its own secret, stored apart from the platform's
events, processed by the same drain into the accounts' readiness, in any order of delivery."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.jobs.queueing import get_queue
from app.models import PayoutAccount, User, WebhookEvent
from app.services.money.webhooks import MAX_ATTEMPTS
from tests.conftest import log_in
from tests.factories import make_user
from tests.signing import (
    STRIPE_CONNECT_SECRET,
    STRIPE_SECRET,
    connect_account,
    connect_headers,
    run_jobs,
    stripe_event,
    stripe_headers,
)

ACCOUNT = "acct_1ConnectTest0001"


def _stripe_account(account_id: str = ACCOUNT, user: User | None = None, **values) -> PayoutAccount:
    """A user with a Stripe account, by default not ready, as onboarding leaves it."""
    fields = {"country": "DE", "restriction": "requirements.past_due", **values}
    user_id = (user or make_user()).id
    account = PayoutAccount(
        user_id=user_id, provider="stripe", stripe_account_id=account_id, **fields
    )
    db.session.add(account)
    db.session.commit()
    return account


def _post(client, body: bytes, **kwargs):
    return client.post(
        "/webhooks/stripe-connect", data=body, headers=connect_headers(body, **kwargs)
    )


def _updated(account_id: str = ACCOUNT, *, ready: bool, created: int | None = None, **kwargs):
    obj = connect_account(account_id, ready=ready, **kwargs)
    return stripe_event("account.updated", obj, created=created, account=account_id)


def _reloaded(account: PayoutAccount) -> PayoutAccount:
    db.session.expire_all()
    return db.session.get(PayoutAccount, account.id)


def _events() -> list[WebhookEvent]:
    db.session.expire_all()
    return db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()


def test_a_signed_account_updated_makes_the_account_ready(app, client):
    account = _stripe_account()
    response = _post(client, _updated(ready=True))
    assert response.status_code == 200 and response.json == {"received": True, "duplicate": False}
    assert not _reloaded(account).is_ready  # stored first, applied by a worker
    run_jobs(app)
    account = _reloaded(account)
    assert account.is_ready and account.restriction is None
    (event,) = _events()
    assert event.provider == "stripe_connect" and event.processed_at is not None


def test_readiness_follows_each_newer_event_and_keeps_stripes_reason(app, client):
    account = _stripe_account()
    now = int(time.time())
    _post(client, _updated(ready=True, created=now - 60))
    run_jobs(app)
    assert _reloaded(account).is_ready
    _post(client, _updated(ready=False, created=now, disabled_reason="rejected.fraud"))
    run_jobs(app)
    account = _reloaded(account)
    assert not account.is_ready and account.restriction == "rejected.fraud"
    assert not account.payouts_enabled and not account.transfers_active


def test_a_stale_event_delivered_late_is_ignored(app, client):
    account = _stripe_account()
    now = int(time.time())
    _post(client, _updated(ready=False, created=now, disabled_reason="requirements.past_due"))
    _post(client, _updated(ready=True, created=now - 120))  # older, delivered after
    run_jobs(app)
    account = _reloaded(account)
    assert not account.is_ready and account.restriction == "requirements.past_due"
    assert int(account.stripe_updated_at.timestamp()) == now
    assert all(event.processed_at and not event.last_error for event in _events())

    # In separate drains too: the newer one first, then the older one.
    _post(client, _updated(ready=True, created=now + 1))
    run_jobs(app)
    _post(client, _updated(ready=False, created=now - 30))
    run_jobs(app)
    assert _reloaded(account).is_ready


def test_a_redelivery_is_stored_once(app, client):
    account = _stripe_account()
    body = _updated(ready=True)
    assert _post(client, body).json["duplicate"] is False
    assert _post(client, body).json["duplicate"] is True
    run_jobs(app)
    assert len(_events()) == 1 and _reloaded(account).is_ready


def test_an_event_for_an_unknown_account_is_stored_ignored_and_logged(app, client, caplog):
    account = _stripe_account()
    caplog.set_level(logging.WARNING, logger="app.services.payouts.stripe_accounts")
    response = _post(client, _updated("acct_1NotOneOfOurs0001", ready=True))
    assert response.status_code == 200
    run_jobs(app)
    (event,) = _events()
    assert event.processed_at is not None and event.attempts == 1 and event.last_error is None
    assert "unknown account acct_1NotOneOfOurs0001 ignored" in caplog.text
    assert not _reloaded(account).is_ready


def test_a_deauthorization_restricts_the_account(app, client):
    account = _stripe_account(payouts_enabled=True, transfers_active=True, restriction=None)
    assert account.is_ready
    application = {"id": "ca_platform", "object": "application", "name": "Referral program"}
    body = stripe_event("account.application.deauthorized", application, account=ACCOUNT)
    assert _post(client, body).status_code == 200
    run_jobs(app)
    account = _reloaded(account)
    assert not account.is_ready and account.restriction == "deauthorized"
    assert not account.payouts_enabled and not account.transfers_active


def test_the_page_shows_a_restricted_account_with_its_reason(app, client):
    user = make_user()
    _stripe_account(user=user, restriction="deauthorized")
    log_in(client, user.email)
    html = client.get("/payouts").get_data(as_text=True)
    assert "Restricted:" in html and "disconnected from this program" in html
    assert "Continue setup" not in html and "Set up payouts with Stripe" not in html


@pytest.mark.parametrize(
    "headers",
    ["platform secret", "missing", "too old"],
)
def test_a_bad_signature_is_400_with_nothing_stored(client, headers):
    account = _stripe_account()
    body = _updated(ready=True)
    if headers == "platform secret":  # signed for the other endpoint
        headers = stripe_headers(body, secret=STRIPE_SECRET)
    elif headers == "missing":
        headers = {"Content-Type": "application/json"}
    else:
        headers = connect_headers(body, at=1_600_000_000)
    response = client.post("/webhooks/stripe-connect", data=body, headers=headers)
    assert response.status_code == 400
    assert _events() == [] and get_queue().count == 0
    assert not _reloaded(account).is_ready


def test_without_its_secret_every_connect_event_is_refused(app, client):
    body = _updated(ready=True)
    app.config["STRIPE_CONNECT_WEBHOOK_SECRET"] = ""
    try:
        assert _post(client, body).status_code == 400
    finally:
        app.config["STRIPE_CONNECT_WEBHOOK_SECRET"] = STRIPE_CONNECT_SECRET
    assert _events() == []


def test_a_connect_event_id_never_collides_with_a_platform_event(app, client):
    _stripe_account()
    body = _updated(ready=True)
    assert _post(client, body).json["duplicate"] is False
    response = client.post("/webhooks/stripe", data=body, headers=stripe_headers(body))
    assert response.json["duplicate"] is False  # the same id on the other endpoint
    run_jobs(app)
    assert sorted(event.provider for event in _events()) == ["stripe", "stripe_connect"]


def test_the_body_limit_holds_on_the_connect_endpoint(app, client):
    body = b"{" + b" " * app.config["WEBHOOK_MAX_CONTENT_LENGTH"] + b"}"
    assert _post(client, body).status_code == 413
    assert _events() == []


def test_a_malformed_account_event_is_parked_at_once(app, client):
    _stripe_account()
    obj = connect_account(ACCOUNT, ready=True)
    obj["payouts_enabled"] = "yes"
    _post(client, stripe_event("account.updated", obj, account=ACCOUNT))
    run_jobs(app)
    (event,) = _events()
    assert event.processed_at is None and event.attempts == MAX_ATTEMPTS
    assert event.last_error.startswith("MalformedEvent: an account needs payouts_enabled")
    assert db.session.scalar(select(func.count()).select_from(PayoutAccount)) == 1
