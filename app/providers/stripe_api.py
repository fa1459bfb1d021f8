"""The one place the app gets a Stripe API client: the official SDK, configured from the app's
settings. Tests and the demo point ``STRIPE_API_BASE`` at the fake Stripe server
(``app/providers/fake_stripe``); the SDK itself is never patched."""

from __future__ import annotations

import stripe
from flask import current_app


class StripeNotConfigured(RuntimeError):
    """No ``STRIPE_SECRET_KEY``: nothing may be sent to Stripe."""


def stripe_client() -> stripe.StripeClient:
    """A client for ``STRIPE_API_BASE`` with ``STRIPE_SECRET_KEY``.

    Guarantees: no retries inside the SDK (``max_network_retries=0``: our jobs retry, with
    their own idempotency keys and backoff, so one call is one request), and every request
    gives up after ``STRIPE_TIMEOUT`` seconds (connect and read) with
    ``stripe.APIConnectionError``. Raises ``StripeNotConfigured`` without a secret key."""
    config = current_app.config
    if not config["STRIPE_SECRET_KEY"]:
        raise StripeNotConfigured("STRIPE_SECRET_KEY is not set")
    return stripe.StripeClient(
        config["STRIPE_SECRET_KEY"],
        base_addresses={"api": config["STRIPE_API_BASE"]},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=config["STRIPE_TIMEOUT"]),
    )


def stripe_test_mode() -> bool:
    """Whether Stripe calls use a test-mode key (``sk_test_…``: Stripe's test mode, or the
    fake Stripe that ``bin/run`` starts without a key): pages say so, no real money moves."""
    return current_app.config["STRIPE_SECRET_KEY"].startswith("sk_test_")
