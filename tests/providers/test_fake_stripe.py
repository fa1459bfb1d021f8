"""The fake Stripe server, driven only through the official SDK client the app configures
(``stripe_client()``), so each behaviour is what the payouts code will see."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import requests
import stripe
from flask import current_app

from app.providers.stripe_api import StripeNotConfigured, stripe_client


def _account(fake, state: str = "onboarded") -> str:
    account = stripe_client().v1.accounts.create(
        params={
            "type": "express",
            "country": "DE",
            "email": "alice@example.com",
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"user_id": "u1"},
        }
    )
    fake.set_account_state(account.id, state)
    return account.id


def _transfer(destination: str, amount: int = 1500, group: str = "payout_p1", key=None):
    return stripe_client().v1.transfers.create(
        params={
            "amount": amount,
            "currency": "usd",
            "destination": destination,
            "transfer_group": group,
            "metadata": {"payout_id": group.removeprefix("payout_")},
        },
        options={"idempotency_key": key} if key else {},
    )


def test_onboarding_link_makes_the_account_ready(fake_stripe):
    client = stripe_client()
    account = client.v1.accounts.create(
        params={
            "type": "express",
            "country": "DE",
            "email": "alice@example.com",
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"user_id": "u1"},
        }
    )
    assert account.id.startswith("acct_") and account.object == "account"
    assert account.payouts_enabled is False and account.capabilities.transfers == "inactive"
    assert account.country == "DE" and account.metadata.user_id == "u1"

    link = client.v1.account_links.create(
        params={
            "account": account.id,
            "refresh_url": "http://localhost/payouts/onboard/refresh",
            "return_url": "http://localhost/payouts/onboard/return",
            "type": "account_onboarding",
        }
    )
    assert link.object == "account_link" and link.url.startswith(fake_stripe.url + "/fake/")
    visit = requests.get(link.url, allow_redirects=False, timeout=5)
    assert visit.status_code == 302
    assert visit.headers["Location"] == "http://localhost/payouts/onboard/return"

    ready = client.v1.accounts.retrieve(account.id)
    assert ready.payouts_enabled is True and ready.capabilities.transfers == "active"
    assert ready.details_submitted is True and ready.requirements.disabled_reason is None
    # Links are single-use: a second visit goes to the refresh URL.
    again = requests.get(link.url, allow_redirects=False, timeout=5)
    assert again.headers["Location"] == "http://localhost/payouts/onboard/refresh"


def test_same_idempotency_key_twice_makes_one_transfer(fake_stripe):
    destination = _account(fake_stripe)
    first = _transfer(destination, key="payout-p1-attempt-1")
    second = _transfer(destination, key="payout-p1-attempt-1")

    assert first.id == second.id and first.id.startswith("tr_")
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(fake_stripe.transfers(destination=destination)) == 1
    assert fake_stripe.post_count("/v1/transfers") == 2
    assert fake_stripe.available("usd") == 100_000_000 - 1500


def test_same_idempotency_key_with_other_parameters_is_refused(fake_stripe):
    destination = _account(fake_stripe)
    _transfer(destination, amount=1500, key="k1")
    with pytest.raises(stripe.IdempotencyError) as error:
        _transfer(destination, amount=1600, key="k1")
    assert error.value.http_status == 400
    assert error.value.json_body["error"]["type"] == "idempotency_error"
    assert len(fake_stripe.transfers()) == 1


def test_concurrent_requests_with_one_key_make_one_transfer(fake_stripe):
    destination = _account(fake_stripe)
    app = current_app._get_current_object()
    ids = []

    def send():
        with app.app_context():
            ids.append(_transfer(destination, key="same-key").id)

    threads = [threading.Thread(target=send) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1 and len(ids) == 16
    assert len(fake_stripe.transfers()) == 1


def test_rate_limited_for_the_next_n_requests_then_the_same_key_succeeds(fake_stripe):
    destination = _account(fake_stripe)
    fake_stripe.faults.inject("rate_limited", times=2)
    for _ in range(2):
        with pytest.raises(stripe.RateLimitError) as error:
            _transfer(destination, key="k1")
        assert error.value.http_status == 429
    assert fake_stripe.transfers() == []
    # A 429 is refused before the endpoint runs: nothing is kept for the key.
    assert _transfer(destination, key="k1").amount == 1500
    assert len(fake_stripe.transfers()) == 1


def test_server_error_makes_nothing_and_is_replayed_for_its_key(fake_stripe):
    destination = _account(fake_stripe)
    fake_stripe.faults.inject("server_error")
    with pytest.raises(stripe.APIError) as error:
        _transfer(destination, key="k1")
    assert error.value.http_status == 500
    assert error.value.json_body["error"]["type"] == "api_error"
    # As Stripe does, the 500 is kept for the key: a retry needs a new key.
    with pytest.raises(stripe.APIError):
        _transfer(destination, key="k1")
    assert fake_stripe.transfers() == []
    assert _transfer(destination, key="k2").amount == 1500


def test_balance_insufficient_makes_no_transfer(fake_stripe):
    destination = _account(fake_stripe)
    fake_stripe.faults.inject("balance_insufficient")
    with pytest.raises(stripe.InvalidRequestError) as error:
        _transfer(destination, key="k1")
    assert error.value.code == "balance_insufficient" and error.value.http_status == 400
    assert fake_stripe.transfers() == [] and fake_stripe.available("usd") == 100_000_000
    # The endpoint ran, so its answer is kept for the key (as Stripe): retry with a new key.
    with pytest.raises(stripe.InvalidRequestError, match="insufficient available funds"):
        _transfer(destination, key="k1")
    assert fake_stripe.transfers() == []

    fake_stripe.set_balance("usd", available=1000, pending=5000)
    with pytest.raises(stripe.InvalidRequestError) as error:
        _transfer(destination, amount=1001)
    assert error.value.code == "balance_insufficient"
    _transfer(destination, amount=1000)
    balance = stripe_client().v1.balance.retrieve()
    assert [(b.currency, b.amount) for b in balance.available] == [("usd", 0)]
    assert [(b.currency, b.amount) for b in balance.pending] == [("usd", 5000)]


def test_account_restricted_refuses_the_transfer_and_shows_on_the_account(fake_stripe):
    destination = _account(fake_stripe)
    fake_stripe.faults.inject("account_restricted")
    with pytest.raises(stripe.InvalidRequestError) as error:
        _transfer(destination)
    assert error.value.code == "insufficient_capabilities_for_transfer"
    assert error.value.param == "destination"
    account = stripe_client().v1.accounts.retrieve(destination)
    assert account.payouts_enabled is False and account.capabilities.transfers == "inactive"
    assert fake_stripe.transfers() == []


def test_deauthorized_account_is_out_of_reach(fake_stripe):
    destination = _account(fake_stripe)
    fake_stripe.set_account_state(destination, "deauthorized")
    with pytest.raises(stripe.PermissionError) as error:
        stripe_client().v1.accounts.retrieve(destination)
    assert error.value.error.code == "account_invalid"
    with pytest.raises(stripe.InvalidRequestError) as error:
        _transfer(destination)
    assert error.value.code == "account_invalid"
    assert fake_stripe.transfers() == []


def test_timeout_after_success_made_the_transfer(fake_stripe):
    destination = _account(fake_stripe)
    fake_stripe.faults.inject("timeout_after_success")
    with pytest.raises(stripe.APIConnectionError):
        _transfer(destination, group="payout_p7", key="k1")

    found = stripe_client().v1.transfers.list(params={"transfer_group": "payout_p7"})
    assert [t.metadata.payout_id for t in found.data] == ["p7"]
    # The answer was kept for the key: the retry gets the same transfer.
    assert _transfer(destination, group="payout_p7", key="k1").id == found.data[0].id
    assert len(fake_stripe.transfers(transfer_group="payout_p7")) == 1


def test_timeout_after_success_can_stall_past_the_client_timeout(fake_stripe):
    destination = _account(fake_stripe)
    current_app.config["STRIPE_TIMEOUT"] = 0.5
    fake_stripe.faults.inject("timeout_after_success", stall_seconds=3)
    started = time.monotonic()
    with pytest.raises(stripe.APIConnectionError) as error:
        _transfer(destination)
    assert time.monotonic() - started < 2.5
    assert "Timeout" in str(error.value)
    assert len(fake_stripe.transfers()) == 1


def test_pruned_idempotency_keys_make_a_second_transfer(fake_stripe):
    destination = _account(fake_stripe)
    first = _transfer(destination, key="k1")
    fake_stripe.prune_idempotency_keys()  # 24 hours later, as far as Stripe's keys go
    second = _transfer(destination, key="k1")
    assert second.id != first.id

    fake_stripe.faults.inject("prune_idempotency_keys")  # the same, for the next request
    third = _transfer(destination, key="k1")
    assert third.id not in {first.id, second.id}
    assert len(fake_stripe.transfers(transfer_group="payout_p1")) == 3


def test_reversal_returns_money_to_the_balance(fake_stripe):
    destination = _account(fake_stripe)
    transfer = _transfer(destination, amount=2000)
    assert fake_stripe.available("usd") == 100_000_000 - 2000
    client = stripe_client()

    reversal = client.v1.transfers.reversals.create(transfer.id, params={"amount": 500})
    assert reversal.id.startswith("trr_") and reversal.object == "transfer_reversal"
    assert reversal.transfer == transfer.id and reversal.amount == 500
    whole = client.v1.transfers.reversals.create(transfer.id)
    assert whole.amount == 1500

    again = client.v1.transfers.retrieve(transfer.id)
    assert again.amount_reversed == 2000 and again.reversed is True
    assert again.reversals.total_count == 2
    assert fake_stripe.available("usd") == 100_000_000
    with pytest.raises(stripe.InvalidRequestError) as error:
        client.v1.transfers.reversals.create(transfer.id, params={"amount": 1})
    assert error.value.param == "amount"


def test_an_api_key_is_required(fake_stripe, app):
    response = requests.get(fake_stripe.url + "/v1/balance", timeout=5)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"

    app.config["STRIPE_SECRET_KEY"] = "sk_test_not_this_one"
    with pytest.raises(stripe.AuthenticationError) as error:
        stripe_client().v1.balance.retrieve()
    assert error.value.http_status == 401

    app.config["STRIPE_SECRET_KEY"] = ""
    with pytest.raises(StripeNotConfigured):
        stripe_client()
    assert fake_stripe.post_count() == 0


def test_unknown_parameters_are_refused_and_not_kept_for_the_key(fake_stripe):
    destination = _account(fake_stripe)
    client = stripe_client()
    with pytest.raises(stripe.InvalidRequestError) as error:
        client.v1.transfers.create(
            params={"amount": 1, "currency": "usd", "destination": destination, "amout": 2},
            options={"idempotency_key": "k1"},
        )
    assert error.value.code == "parameter_unknown" and error.value.param == "amout"
    with pytest.raises(stripe.InvalidRequestError) as error:
        client.v1.transfers.create(
            params={"amount": 0, "currency": "usd", "destination": destination},
            options={"idempotency_key": "k1"},
        )
    assert error.value.code == "parameter_invalid_integer"
    assert _transfer(destination, key="k1").amount == 1500


def test_transfer_list_filters_and_pages(fake_stripe):
    alice, bob = _account(fake_stripe), _account(fake_stripe)
    made = [
        _transfer(alice, group="payout_a1"),
        _transfer(bob, group="payout_b1"),
        _transfer(alice, group="payout_a2"),
        _transfer(alice, group="payout_a2"),
        _transfer(bob, group="payout_b2"),
    ]
    client = stripe_client()
    newest_first = [t.id for t in reversed(made)]

    by_alice = client.v1.transfers.list(params={"destination": alice})
    assert [t.id for t in by_alice.data] == [made[3].id, made[2].id, made[0].id]
    by_group = client.v1.transfers.list(
        params={"transfer_group": "payout_a2", "destination": alice}
    )
    assert [t.id for t in by_group.data] == [made[3].id, made[2].id]

    page = client.v1.transfers.list(params={"limit": 2})
    assert [t.id for t in page.data] == newest_first[:2] and page.has_more is True
    rest = client.v1.transfers.list(params={"limit": 2, "starting_after": page.data[-1].id})
    assert [t.id for t in rest.data] == newest_first[2:4]
    assert [t.id for t in page.auto_paging_iter()] == newest_first
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.list(params={"limit": 101})


def test_a_separate_process_is_controlled_over_http(app):
    saved = {name: app.config[name] for name in ("STRIPE_SECRET_KEY", "STRIPE_API_BASE")}
    process = subprocess.Popen(
        [sys.executable, "-m", "app.providers.fake_stripe", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = process.stdout.readline().split(" on ")[1].strip()
        assert url.startswith("http://127.0.0.1:")
        app.config.update(STRIPE_SECRET_KEY="sk_test_fake_stripe", STRIPE_API_BASE=url)
        auth = {"Authorization": "Bearer sk_test_fake_stripe"}
        fault = {"kind": "rate_limited", "method": "GET", "path": "/v1/balance"}
        control = requests.post(url + "/fake/faults", json=fault, headers=auth, timeout=5)
        assert control.status_code == 200
        with pytest.raises(stripe.RateLimitError):
            stripe_client().v1.balance.retrieve()
        assert stripe_client().v1.balance.retrieve().available[0].amount == 100_000_000
        bad = requests.post(url + "/fake/faults", json={"kind": "nope"}, headers=auth, timeout=5)
        assert bad.status_code == 400
        assert requests.post(url + "/fake/faults", json={}, timeout=5).status_code == 401
    finally:
        app.config.update(saved)
        process.terminate()
        assert process.wait(timeout=10) == 0
