"""Payment providers behind one small interface.

Each provider module offers ``verify(raw_body, signature_header, secret) -> VerifiedEvent``
(raising ``SignatureError`` for anything not signed with the secret) and
``reports(payload) -> list[Report]``: what the event says about sales, in our terms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from app.money import minor_units
from app.services.sales import SaleReport


class SignatureError(ValueError):
    """The body was not signed by the provider with our secret (or the header is missing)."""


@dataclass(frozen=True)
class VerifiedEvent:
    event_id: str
    event_type: str
    payload: dict
    body: str  # the signed body as received (stored as is)


# Provider events nest about 10 levels deep; far deeper JSON is refused rather than walked
# (Python's parser and encoder recurse once per level and fail near 1,000).
MAX_JSON_DEPTH = 64


def _json_depth(value: object, limit: int) -> int:
    """How deep ``value`` nests objects and arrays (a scalar is 0), counted without recursion;
    stops counting once past ``limit``."""
    deepest, stack = 0, [(value, 1)]
    while stack and deepest <= limit:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item)
    return deepest


def parse_body(raw_body: bytes) -> tuple[str, dict]:
    """The body as text and as a JSON object nested at most ``MAX_JSON_DEPTH`` levels;
    anything else is refused like a bad signature (never a crash)."""
    try:
        body = raw_body.decode("utf-8")
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SignatureError(f"signed, but not a JSON event: {exc}") from exc
    if not isinstance(payload, dict):
        raise SignatureError("signed, but not a JSON object")
    if _json_depth(payload, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise SignatureError(f"signed, but nested deeper than {MAX_JSON_DEPTH} levels")
    if "\\u0000" in body:  # JSONB cannot hold a NUL character
        raise SignatureError("signed, but holds a NUL character, which cannot be stored")
    try:  # nor a lone surrogate (\\ud800 alone is valid JSON, not valid text)
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SignatureError("signed, but holds text that cannot be stored") from exc
    return body, payload


@dataclass(frozen=True)
class RefundReport:
    provider: str
    external_id: str
    refunded_total: Decimal  # cumulative


@dataclass(frozen=True)
class DisputeReport:
    provider: str
    external_id: str
    disputed: Decimal  # counted as refunded: the disputed amount, 0 once won
    is_closed: bool = False  # a closed dispute's outcome is final


@dataclass(frozen=True)
class CustomerReport:
    provider: str
    customer_id: str
    user_id: str


Report = SaleReport | RefundReport | DisputeReport | CustomerReport


def from_minor_units(value: int | str, currency: str) -> Decimal:
    """Providers send integers in the currency's minor unit (cents, yen, fils)."""
    return Decimal(int(value)).scaleb(-minor_units(currency))
