"""The ``fake_stripe`` fixture: a fake Stripe server on loopback for one test, with the app's
Stripe settings pointed at it (and put back after)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import pytest

from app.providers.fake_stripe import FakeStripe

_SETTINGS = ("STRIPE_SECRET_KEY", "STRIPE_API_BASE", "STRIPE_TIMEOUT")


@pytest.fixture
def fake_stripe(app):
    """Yields the running ``FakeStripe`` (``.url``, ``.api_key``, ``.faults``, ``.transfers()``,
    …); ``stripe_client()`` talks to it. Stripe calls never leave loopback: asserted here."""
    fake = FakeStripe().start()
    saved = {name: app.config[name] for name in _SETTINGS}
    app.config.update(STRIPE_SECRET_KEY=fake.api_key, STRIPE_API_BASE=fake.url, STRIPE_TIMEOUT=5.0)
    assert ipaddress.ip_address(urlsplit(app.config["STRIPE_API_BASE"]).hostname).is_loopback
    try:
        yield fake
    finally:
        app.config.update(saved)
        fake.stop()
