"""A fake Stripe API server for tests and the demo (loopback only): the endpoints payouts
call, with Stripe's shapes, authentication, idempotency and injectable faults. The app
reaches it by configuration (``STRIPE_API_BASE``), never by patching the SDK."""

from app.providers.fake_stripe.server import DEFAULT_API_KEY, FakeStripe

__all__ = ["DEFAULT_API_KEY", "FakeStripe"]
