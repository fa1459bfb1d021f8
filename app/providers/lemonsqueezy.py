"""Lemon Squeezy: ``X-Signature`` is the hex HMAC-SHA256 of the raw body with the signing
secret. Events carry no id of their own; ours is the event name, the object and its update
time, stable across retries of one delivery and distinct for each change."""

from __future__ import annotations

import hashlib
import hmac

from app.providers import (
    MalformedEvent,
    RefundReport,
    Report,
    SignatureError,
    VerifiedEvent,
    currency_of,
    email_of,
    iso_time,
    minor_amount,
    parse_body,
)
from app.services.money.sales import SaleReport

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


def reports(payload: dict) -> list[Report]:
    """What the event says, in our terms. A sale or refund that does not state its amount,
    tax, currency and time exactly raises ``MalformedEvent`` (no currency is not USD)."""
    name = payload["meta"]["event_name"]
    buyer = (payload["meta"].get("custom_data") or {}).get("user_id")
    data = payload["data"]
    attrs = data["attributes"]
    sale = None
    if name == "order_created" and attrs.get("status") == "paid":
        sale = (f"order:{_object_id(data)}", None)
    # The first payment of a subscription is its order (order_created) already.
    elif name == "subscription_payment_success" and attrs.get("billing_reason") != "initial":
        sale = (f"invoice:{_object_id(data)}", _text(attrs.get("subscription_id")))
    if sale:
        currency = currency_of(attrs)
        amount = minor_amount(attrs, "total", currency)
        tax = minor_amount(attrs, "tax", currency)
        if tax > amount:
            raise MalformedEvent(f"the tax {tax} exceeds the total {amount}")
        return [
            SaleReport(
                provider=PROVIDER,
                external_id=sale[0],
                amount=amount,
                tax_amount=tax,
                currency=currency,
                occurred_at=iso_time(attrs, "created_at"),
                buyer_id=buyer,
                customer_id=_text(attrs.get("customer_id")),
                subscription_id=sale[1],
                payer_email=email_of(attrs, "user_email"),
            )
        ]
    if name in _REFUNDS:
        refunded = minor_amount(attrs, "refunded_amount", currency_of(attrs))
        return [RefundReport(PROVIDER, f"{_REFUNDS[name]}:{_object_id(data)}", refunded)]
    return []


# Refund events and the prefix of the sale they refund.
_REFUNDS = {"order_refunded": "order", "subscription_payment_refunded": "invoice"}


def _text(value: object) -> str | None:
    """An id as text; longer than any id Lemon Squeezy makes (and we store) is malformed."""
    if value is None:
        return None
    if len(text := str(value)) > 200:
        raise MalformedEvent(f"an id of {len(text)} characters is not a Lemon Squeezy id")
    return text


def _object_id(data: dict) -> str:
    value = data.get("id")
    if type(value) not in (str, int) or not str(value):
        raise MalformedEvent(f"data.id must name the object, got {value!r:.80}")
    return _text(value)
