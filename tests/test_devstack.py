"""bin/run's fake Stripe: a real process the official SDK reaches by configuration."""

from __future__ import annotations

from app.devstack import start_fake_stripe
from app.providers.stripe_api import stripe_client, stripe_test_mode


def test_bin_run_starts_the_fake_stripe_in_test_mode(app, monkeypatch):
    env: dict[str, str] = {}
    process = start_fake_stripe(env)
    try:
        assert env["STRIPE_SECRET_KEY"].startswith("sk_test_")
        assert env["STRIPE_API_BASE"].startswith("http://127.0.0.1:")
        monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", env["STRIPE_SECRET_KEY"])
        monkeypatch.setitem(app.config, "STRIPE_API_BASE", env["STRIPE_API_BASE"])
        balance = stripe_client().v1.balance.retrieve()
        assert balance.available[0].amount > 0
        assert stripe_test_mode()
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
