"""Lemon Squeezy: ``X-Signature`` is the hex HMAC-SHA256 of the raw body with the signing
secret. Events carry no id of their own; ours is the event name, the object and its update
time, stable across retries of one delivery and distinct for each change."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from app.providers import (
    RefundReport,
    Report,
    SignatureError,
    VerifiedEvent,
    from_minor_units,
    parse_body,
)
from app.services.sales import SaleReport

PROVIDER = "lemon_squeezy"


def sign(raw_body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()


def verify(raw_body: bytes, signature: str | None, secret: str) -> VerifiedEvent:
    if not signature or not secret or not signature.isascii():
        raise SignatureError("missing or malformed X-Signature header, or no secret")
    if not hmac.compare_digest(sign(raw_body, secret), signature.strip()):
        raise SignatureError("X-Signature does not match the body")
    body, payload = parse_body(raw_body)
    meta, data = payload.get("meta"), payload.get("data")
    name = meta.get("event_name") if isinstance(meta, dict) else None
    attributes = data.get("attributes") if isinstance(data, dict) else None
    if not isinstance(name, str) or not isinstance(attributes, dict):
        raise SignatureError("signed, but not a Lemon Squeezy event")
    event_id = f"{name}:{data.get('type')}:{data.get('id')}:{attributes.get('updated_at')}"
    return VerifiedEvent(event_id[:255], name, payload, body)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def reports(payload: dict) -> list[Report]:
    name = payload["meta"]["event_name"]
    buyer = (payload["meta"].get("custom_data") or {}).get("user_id")
    data = payload["data"]
    attrs = data["attributes"]
    currency = (attrs.get("currency") or "USD").upper()
    customer = _text(attrs.get("customer_id"))
    sale = None
    if name == "order_created" and attrs.get("status") == "paid":
        sale = (f"order:{data['id']}", None)
    # The first payment of a subscription is its order (order_created) already.
    elif name == "subscription_payment_success" and attrs.get("billing_reason") != "initial":
        sale = (f"invoice:{data['id']}", _text(attrs.get("subscription_id")))
    if sale:
        return [
            SaleReport(
                provider=PROVIDER,
                external_id=sale[0],
                amount=from_minor_units(attrs["total"], currency),
                currency=currency,
                occurred_at=_at(attrs["created_at"]),
                buyer_id=buyer,
                customer_id=customer,
                subscription_id=sale[1],
            )
        ]
    if name in _REFUNDS:
        refunded = from_minor_units(attrs.get("refunded_amount") or 0, currency)
        return [RefundReport(PROVIDER, f"{_REFUNDS[name]}:{data['id']}", refunded)]
    return []


# Refund events and the prefix of the sale they refund.
_REFUNDS = {"order_refunded": "order", "subscription_payment_refunded": "invoice"}


def _text(value: object) -> str | None:
    return None if value is None else str(value)
