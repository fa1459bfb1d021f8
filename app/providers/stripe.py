"""Stripe: signature checked by the official SDK (default 300 s tolerance), events mapped to
sales keyed by PaymentIntent id, so that refunds and disputes (which name the PaymentIntent)
find their sale whatever the order of delivery."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import stripe

from app.providers import (
    CustomerReport,
    DisputeReport,
    RefundReport,
    Report,
    SignatureError,
    VerifiedEvent,
    from_minor_units,
    parse_body,
)
from app.services.sales import SaleReport

PROVIDER = "stripe"


def verify(raw_body: bytes, signature: str | None, secret: str) -> VerifiedEvent:
    if not signature or not secret or not signature.isascii():
        raise SignatureError("missing or malformed Stripe-Signature header, or no secret")
    try:
        # The SDK's check (the same construct_event runs), without building a StripeObject:
        # we store and read the plain JSON.
        stripe.WebhookSignature.verify_header(
            raw_body, signature, secret, stripe.Webhook.DEFAULT_TOLERANCE
        )
    except (stripe.SignatureVerificationError, ValueError, TypeError) as exc:  # e.g. not UTF-8
        raise SignatureError(str(exc)) from exc
    body, payload = parse_body(raw_body)
    if not isinstance(payload.get("id"), str) or not isinstance(payload.get("type"), str):
        raise SignatureError("signed, but not a Stripe event")
    return VerifiedEvent(payload["id"][:255], payload["type"], payload, body)


def _payment_key(obj: dict) -> str:
    """The PaymentIntent id, which refunds and disputes name too. Invoices carry it as
    ``payment_intent`` (API versions before 2025-03-31) or in ``payments.data``."""
    payment_intent = obj.get("payment_intent")
    if payment_intent is None and isinstance(obj.get("payments"), dict):
        payments = obj["payments"].get("data") or [{}]
        payment_intent = (payments[0].get("payment") or {}).get("payment_intent")
    if isinstance(payment_intent, dict):
        payment_intent = payment_intent.get("id")
    return payment_intent or obj["id"]


def _at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def reports(payload: dict) -> list[Report]:
    kind = payload.get("type")
    obj = payload.get("data", {}).get("object", {})
    if kind == "checkout.session.completed":
        return _checkout(payload, obj)
    if kind == "invoice.paid" and obj.get("amount_paid"):
        currency = obj["currency"].upper()
        return [
            SaleReport(
                provider=PROVIDER,
                external_id=_payment_key(obj),
                amount=from_minor_units(obj["amount_paid"], currency),
                currency=currency,
                occurred_at=_at(
                    (obj.get("status_transitions") or {}).get("paid_at") or payload["created"]
                ),
                buyer_id=(obj.get("metadata") or {}).get("user_id"),
                customer_id=obj.get("customer"),
                subscription_id=obj.get("subscription"),
            )
        ]
    if kind == "charge.refunded":
        currency = obj["currency"].upper()
        refunded = from_minor_units(obj["amount_refunded"], currency)
        return [RefundReport(PROVIDER, _payment_key(obj), refunded)]
    if kind in ("charge.dispute.created", "charge.dispute.closed"):
        disputed = from_minor_units(obj["amount"], obj["currency"].upper())
        if kind == "charge.dispute.created":
            return [DisputeReport(PROVIDER, _payment_key(obj), disputed)]
        # Won, or an inquiry never escalated: nothing is taken; lost: the amount is gone.
        if obj.get("status") in ("won", "warning_closed"):
            disputed = Decimal(0)
        return [DisputeReport(PROVIDER, _payment_key(obj), disputed, is_closed=True)]
    return []


def _checkout(payload: dict, obj: dict) -> list[Report]:
    buyer = obj.get("client_reference_id")
    found: list[Report] = []
    if buyer and obj.get("customer"):
        found.append(CustomerReport(PROVIDER, obj["customer"], buyer))
    # Subscriptions are sales per paid invoice (invoice.paid), the first one included.
    if obj.get("mode") == "payment" and obj.get("payment_status") == "paid":
        currency = obj["currency"].upper()
        found.append(
            SaleReport(
                provider=PROVIDER,
                external_id=_payment_key(obj),
                amount=from_minor_units(obj["amount_total"], currency),
                currency=currency,
                occurred_at=_at(obj.get("created") or payload["created"]),
                buyer_id=buyer,
                customer_id=obj.get("customer"),
            )
        )
    return found
