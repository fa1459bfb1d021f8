"""``refresh_stripe_account``: what the transfer code asks before every transfer, answered by
the fake Stripe through the official SDK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.extensions import db
from app.models import PayoutAccount
from app.services.payouts.stripe_accounts import (
    StripeUnavailable,
    open_stripe_account,
    refresh_stripe_account,
    stripe_status,
)
from tests.factories import make_user


def _opened(fake_stripe, state: str) -> PayoutAccount:
    user = make_user()
    account = open_stripe_account(user, "NL")
    db.session.commit()
    fake_stripe.set_account_state(account.stripe_account_id, state)
    return account


def test_an_onboarded_account_is_ready(fake_stripe):
    account = _opened(fake_stripe, "onboarded")
    assert refresh_stripe_account(account) is True
    db.session.commit()
    assert account.payouts_enabled and account.transfers_active and account.restriction is None
    assert stripe_status(account.user_id).state == "ready"


def test_a_restricted_account_is_not_ready_and_says_why(fake_stripe):
    account = _opened(fake_stripe, "onboarded")
    assert refresh_stripe_account(account) is True
    fake_stripe.set_account_state(account.stripe_account_id, "restricted")
    assert refresh_stripe_account(account) is False
    db.session.commit()
    db.session.expire_all()
    account = db.session.get(PayoutAccount, account.id)
    assert not account.payouts_enabled and not account.transfers_active
    assert account.restriction == "requirements.past_due"
    status = stripe_status(account.user_id)
    assert (status.state, status.message) == ("setup", "Stripe needs more information from you.")


def test_a_deauthorized_account_is_restricted(fake_stripe):
    """Stripe answers 403 account_invalid once the platform lost access (or for an account
    it does not know): not an error to retry, a restriction."""
    account = _opened(fake_stripe, "onboarded")
    refresh_stripe_account(account)
    fake_stripe.set_account_state(account.stripe_account_id, "deauthorized")
    assert refresh_stripe_account(account) is False
    assert account.restriction == "deauthorized" and not account.payouts_enabled
    assert stripe_status(account.user_id).state == "restricted"


def test_stripe_down_changes_nothing_and_raises(fake_stripe):
    account = _opened(fake_stripe, "onboarded")
    refresh_stripe_account(account)
    db.session.commit()
    stored_at = account.stripe_updated_at
    fake_stripe.set_account_state(account.stripe_account_id, "restricted")
    fake_stripe.faults.inject("rate_limited", method="GET", path="/v1/accounts/*")
    with pytest.raises(StripeUnavailable):
        refresh_stripe_account(account)
    assert account.is_ready and account.stripe_updated_at == stored_at


def test_a_newer_event_is_not_overwritten_by_an_older_retrieve(fake_stripe):
    """An event stated after the retrieve was sent wins, whichever is stored last."""
    account = _opened(fake_stripe, "onboarded")
    account.stripe_updated_at = datetime.now(UTC) + timedelta(minutes=1)
    account.restriction = "rejected.fraud"
    db.session.commit()
    assert refresh_stripe_account(account) is False
    assert account.restriction == "rejected.fraud"
