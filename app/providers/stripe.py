"""Stripe: signature checked by the official SDK (default 300 s tolerance), events mapped to
sales keyed by every id of the payment they carry (PaymentIntent, charge, invoice, checkout
session), so that refunds and disputes find their sale whatever the order of delivery; and
``transfer.reversed``, a payout's transfer taken back."""

from __future__ import annotations

from decimal import Decimal

import stripe

from app.money import quantize
from app.providers import (
    CustomerReport,
    DisputeReport,
    MalformedEvent,
    RefundReport,
    Report,
    SignatureError,
    TransferReversalReport,
    VerifiedEvent,
    currency_of,
    email_of,
    minor_amount,
    parse_body,
    unix_time,
)
from app.services.money.sales import SaleReport

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


def _id(value: object) -> str | None:
    if isinstance(value, dict):  # an expanded object
        value = value.get("id")
    return value if isinstance(value, str) and 0 < len(value) <= 255 else None


def _payment_keys(obj: dict, *, own_id: bool = True) -> tuple[str, ...]:
    """Every id this object knows of its payment, the PaymentIntent first: a sale is found
    by any of them, so a refund naming only the charge or the invoice finds the sale its
    checkout recorded. Invoices carry the PaymentIntent as ``payment_intent`` (API versions
    before 2025-03-31) or in ``payments.data``; a dispute's own id names no payment."""
    intent = obj.get("payment_intent")
    found = [intent, intent.get("latest_charge") if isinstance(intent, dict) else None]
    payments = obj.get("payments")
    for entry in (payments.get("data") or []) if isinstance(payments, dict) else []:
        payment = entry.get("payment") if isinstance(entry, dict) else None
        if isinstance(payment, dict):
            found += [payment.get("payment_intent"), payment.get("charge")]
    found += [obj.get("invoice"), obj.get("charge"), obj.get("id") if own_id else None]
    keys = tuple(dict.fromkeys(key for key in map(_id, found) if key))
    if not keys:
        raise MalformedEvent("the event names no payment (no PaymentIntent, charge or invoice)")
    return keys


# Stripe's own minor units ("Supported currencies"): these are zero-decimal, these
# three-decimal, and every other currency two-decimal — ISK, HUF and TWD included, whatever
# ISO 4217 says.
_ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA"}
    | {"PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
_THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def minor_exponent(currency: str) -> int:
    """Decimal places of Stripe's integer amounts in ``currency`` (``"USD"`` → 2)."""
    currency = currency.upper()
    return 0 if currency in _ZERO_DECIMAL else 3 if currency in _THREE_DECIMAL else 2


def _amount(obj: dict, key: str, currency: str) -> Decimal:
    return minor_amount(obj, key, currency, minor_exponent(currency))


def _part(obj: dict, key: str) -> dict:
    value = obj.get(key)
    if not isinstance(value, dict):
        raise MalformedEvent(f"{key} must be an object, got {value!r:.80}")
    return value


def _tax(tax: Decimal, amount: Decimal) -> Decimal:
    if not 0 <= tax <= amount:
        raise MalformedEvent(f"the tax {tax} is not within the amount {amount}")
    return tax


def reports(payload: dict) -> list[Report]:
    """What the event says, in our terms. A sale, refund or dispute that does not state its
    amount, currency and time exactly raises ``MalformedEvent``."""
    kind = payload.get("type")
    obj = _part(_part(payload, "data"), "object")
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        return _checkout(payload, obj)
    if kind == "invoice.paid":
        return _invoice(obj)
    if kind == "charge.refunded":
        refunded = _amount(obj, "amount_refunded", currency_of(obj))
        keys = _payment_keys(obj)
        return [RefundReport(PROVIDER, keys[0], refunded, aliases=keys[1:])]
    if kind in ("charge.dispute.created", "charge.dispute.closed"):
        disputed = _amount(obj, "amount", currency_of(obj))
        keys = _payment_keys(obj, own_id=False)
        if kind == "charge.dispute.created":
            return [DisputeReport(PROVIDER, keys[0], disputed, aliases=keys[1:])]
        # Won, or an inquiry never escalated: nothing is taken; lost: the amount is gone.
        if obj.get("status") in ("won", "warning_closed"):
            disputed = Decimal(0)
        return [DisputeReport(PROVIDER, keys[0], disputed, is_closed=True, aliases=keys[1:])]
    if kind == "transfer.reversed":
        return [_transfer_reversal(obj)]
    return []


def _transfer_reversal(transfer: dict) -> TransferReversalReport:
    transfer_id = _id(transfer.get("id"))
    if transfer_id is None or not transfer_id.startswith("tr_"):
        raise MalformedEvent(f"a transfer needs a tr_ id, got {transfer.get('id')!r:.80}")
    currency = currency_of(transfer)
    payout_id = (transfer.get("metadata") or {}).get("payout_id")
    return TransferReversalReport(
        transfer_id=transfer_id,
        payout_id=payout_id if isinstance(payout_id, str) else None,
        amount=_amount(transfer, "amount", currency),
        amount_reversed=_amount(transfer, "amount_reversed", currency),
    )


def _invoice(obj: dict) -> list[Report]:
    """Each paid invoice with an amount is a sale, at its payment time. Its tax is
    ``total - total_excluding_tax`` (``tax`` in older API versions), the share of it that
    was paid when a balance covered part of the invoice."""
    currency = currency_of(obj)
    amount = _amount(obj, "amount_paid", currency)
    if not amount:
        return []
    total = _amount(obj, "total", currency)
    if obj.get("total_excluding_tax") is not None:
        tax = _tax(total - _amount(obj, "total_excluding_tax", currency), total)
    else:  # API versions before total_excluding_tax
        tax = _tax(_amount(obj, "tax", currency), total)
    if total != amount:
        tax = min(amount, quantize(tax * amount / total, currency)) if total else Decimal(0)
    keys = _payment_keys(obj)
    return [
        SaleReport(
            provider=PROVIDER,
            external_id=keys[0],
            aliases=keys[1:],
            amount=amount,
            tax_amount=tax,
            currency=currency,
            occurred_at=unix_time(_part(obj, "status_transitions"), "paid_at"),
            buyer_id=(obj.get("metadata") or {}).get("user_id"),
            customer_id=_id(obj.get("customer")),
            subscription_id=_id(obj.get("subscription")),
            payer_email=email_of(obj, "customer_email"),
        )
    ]


def _checkout(payload: dict, obj: dict) -> list[Report]:
    buyer = obj.get("client_reference_id")
    customer = _id(obj.get("customer"))
    found: list[Report] = []
    if buyer and customer:
        found.append(CustomerReport(PROVIDER, customer, buyer))
    # Subscriptions are sales per paid invoice (invoice.paid), the first one included.
    if obj.get("mode") == "payment" and obj.get("payment_status") == "paid":
        currency = currency_of(obj)
        amount = _amount(obj, "amount_total", currency)
        keys = _payment_keys(obj)
        found.append(
            SaleReport(
                provider=PROVIDER,
                external_id=keys[0],
                aliases=keys[1:],
                amount=amount,
                tax_amount=_tax(
                    _amount(_part(obj, "total_details"), "amount_tax", currency), amount
                ),
                currency=currency,
                # Paid when the session completed (the event), not when it was opened.
                occurred_at=unix_time(payload, "created"),
                buyer_id=buyer,
                customer_id=customer,
                payer_email=email_of(obj.get("customer_details") or {}, "email"),
            )
        )
    return found
