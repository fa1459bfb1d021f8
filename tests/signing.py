"""Webhook bodies signed exactly as the providers sign them, and a way to run queued jobs.

Stripe: ``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.
Lemon Squeezy: ``X-Signature: <hex HMAC-SHA256 of the body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from datetime import UTC, datetime

STRIPE_SECRET = "whsec_test_secret"
STRIPE_CONNECT_SECRET = "whsec_test_connect_secret"
LEMON_SECRET = "lemon-test-secret"
_ids = itertools.count(1)


def stripe_headers(body: bytes, secret: str = STRIPE_SECRET, at: int | None = None) -> dict:
    timestamp = int(time.time()) if at is None else at
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={digest}", "Content-Type": "application/json"}


def lemon_headers(body: bytes, secret: str = LEMON_SECRET) -> dict:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Signature": digest, "Content-Type": "application/json"}


def stripe_event(
    kind: str,
    obj: dict,
    event_id: str | None = None,
    *,
    created: int | None = None,
    account: str | None = None,
) -> bytes:
    """An event; ``account`` makes it a Connect event about that connected account."""
    event = {
        "id": event_id or f"evt_{next(_ids)}",
        "object": "event",
        "type": kind,
        "created": int(time.time()) if created is None else created,
        "livemode": False,
        "api_version": "2024-06-20",
        "data": {"object": obj},
    }
    if account is not None:
        event["account"] = account
    return json.dumps(event).encode()


def connect_headers(body: bytes, secret: str = STRIPE_CONNECT_SECRET, at: int | None = None):
    """Signed as Stripe signs the Connect endpoint's events (its own secret)."""
    return stripe_headers(body, secret, at)


def connect_account(account_id: str, *, ready: bool, disabled_reason: str | None = None) -> dict:
    """A connected account as ``account.updated`` carries it: ready (payouts enabled,
    transfers active) or not, with Stripe's ``requirements.disabled_reason``."""
    if not ready and disabled_reason is None:
        disabled_reason = "requirements.past_due"
    return {
        "id": account_id,
        "object": "account",
        "type": "express",
        "payouts_enabled": ready,
        "charges_enabled": False,
        "details_submitted": True,
        "capabilities": {"transfers": "active" if ready else "inactive"},
        "requirements": {"currently_due": [], "disabled_reason": disabled_reason},
    }


def stripe_checkout(
    user_id: str | None, cents: int, payment_intent: str | None, *, tax: int = 0, **extra
) -> dict:
    """A completed Checkout Session; ``cents`` is the total paid, ``tax`` the part of it
    that is tax."""
    return {
        "id": f"cs_{payment_intent or next(_ids)}",
        "object": "checkout.session",
        "mode": "payment",
        "payment_status": "paid",
        "amount_subtotal": cents - tax,
        "amount_total": cents,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": tax},
        "currency": "usd",
        "client_reference_id": user_id,
        "payment_intent": payment_intent,
        "customer": extra.pop("customer", None),
        "customer_details": {"email": extra.pop("email", None)},
        "created": int(time.time()) - 3600,  # opened an hour before it was paid
        **extra,
    }


def stripe_invoice(invoice_id: str, cents: int, *, tax: int = 0, **extra) -> dict:
    """A paid invoice of ``cents`` (tax included), paid now."""
    return {
        "id": invoice_id,
        "object": "invoice",
        "amount_paid": cents,
        "total": cents,
        "total_excluding_tax": cents - tax,
        "currency": "usd",
        "status_transitions": {"paid_at": int(time.time())},
        **extra,
    }


def lemon_event(name: str, data_type: str, data_id: str, attributes: dict, user_id=None) -> bytes:
    attributes = {"updated_at": datetime.now(UTC).isoformat(), **attributes}
    attributes.setdefault("created_at", datetime.now(UTC).isoformat())
    event = {
        "meta": {"event_name": name, "custom_data": {"user_id": user_id} if user_id else None},
        "data": {"type": data_type, "id": data_id, "attributes": attributes},
    }
    return json.dumps(event).encode()


def run_jobs(app) -> None:
    """Run everything queued, in this process, until the queue is empty."""
    from app.jobs.worker import build_worker

    previous = app.config["RQ_WORKER_CLASS"]
    app.config["RQ_WORKER_CLASS"] = "simple"
    try:
        build_worker(app).work(burst=True)
    finally:
        app.config["RQ_WORKER_CLASS"] = previous
