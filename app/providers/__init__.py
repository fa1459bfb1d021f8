"""Payment providers behind one small interface.

Each provider module offers ``verify(raw_body, signature_header, secret) -> VerifiedEvent``
(raising ``SignatureError`` for anything not signed with the secret) and
``reports(payload) -> list[Report]``: what the event says about sales, in our terms.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import ModuleType

from app.money import minor_units
from app.services.money.sales import SaleReport, sale_date_problem


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


class MalformedEvent(ValueError):
    """A signed event that does not say what it must (a missing or inexact amount, currency
    or date): processing it fails with this message, which stays on the event for a person.
    We never guess what the provider meant."""


def read_reports(provider: ModuleType, payload: dict) -> list[Report]:
    """``provider.reports(payload)``; a payload not shaped as the provider sends it (a
    string where an object belongs, a missing key) is a ``MalformedEvent`` like any other
    unreadable event: parked with a clear error, never retried."""
    try:
        return provider.reports(payload)
    except MalformedEvent:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise MalformedEvent(
            f"not shaped as the provider sends it: {type(exc).__name__}: {exc}"
        ) from exc


@dataclass(frozen=True)
class RefundReport:
    provider: str
    external_id: str
    refunded_total: Decimal  # cumulative
    aliases: tuple[str, ...] = field(default=())  # other ids of the same payment


@dataclass(frozen=True)
class DisputeReport:
    provider: str
    external_id: str
    disputed: Decimal  # counted as refunded: the disputed amount, 0 once won
    is_closed: bool = False  # a closed dispute's outcome is final
    aliases: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class CustomerReport:
    provider: str
    customer_id: str
    user_id: str


@dataclass(frozen=True)
class AccountReport:
    """What Stripe stated about a connected account at ``stated_at``: whether it can receive
    payouts, and why not (Stripe's ``requirements.disabled_reason``, or ``deauthorized``)."""

    account_id: str
    stated_at: datetime
    payouts_enabled: bool
    transfers_active: bool
    restriction: str | None


@dataclass(frozen=True)
class TransferReversalReport:
    """Stripe took (part of) a transfer to a connected account back: the payout it paid is
    named by the transfer id (its reference) and ``metadata.payout_id``."""

    transfer_id: str
    payout_id: str | None
    amount: Decimal
    amount_reversed: Decimal

    @property
    def is_full(self) -> bool:
        return self.amount_reversed >= self.amount


Report = (
    SaleReport
    | RefundReport
    | DisputeReport
    | CustomerReport
    | AccountReport
    | TransferReversalReport
)


# Far above any real payment, far below what NUMERIC(19,4) holds: anything larger is a
# mistake or a forgery.
MAX_MINOR_AMOUNT = 10**13
_CURRENCY = re.compile(r"[A-Za-z]{3}")
MAX_EMAIL_LENGTH = 320


def currency_of(obj: dict, key: str = "currency") -> str:
    """``obj[key]`` as an upper-case ISO code: exactly three ASCII letters, nothing around
    them (a padded code would be stored as one currency and flagged as another)."""
    value = obj.get(key)
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise MalformedEvent(f"{key} must be a 3-letter currency code, got {value!r}")
    return value.upper()


def minor_amount(obj: dict, key: str, currency: str, exponent: int | None = None) -> Decimal:
    """``obj[key]``, an exact integer count of minor units (not a bool, float or text),
    between 0 and ``MAX_MINOR_AMOUNT``, as a ``Decimal`` in the currency's major unit.
    A minor unit is 10**-exponent of it: the ISO 4217 exponent unless the provider says
    otherwise."""
    value = obj.get(key)
    if type(value) is not int or not 0 <= value <= MAX_MINOR_AMOUNT:
        raise MalformedEvent(f"{key} must be a whole number of minor units, got {value!r}")
    return Decimal(value).scaleb(-(minor_units(currency) if exponent is None else exponent))


def sale_time(value: datetime, key: str) -> datetime:
    """A payment time, refused when a sale cannot have happened then (``sale_date_problem``)."""
    if problem := sale_date_problem(value):
        raise MalformedEvent(f"{key} {value.isoformat()}: {problem}")
    return value


def unix_time(obj: dict, key: str) -> datetime:
    """``obj[key]``: Unix seconds (an integer) within the sale date bounds."""
    value = obj.get(key)
    if type(value) is not int:
        raise MalformedEvent(f"{key} must be Unix seconds, got {value!r}")
    try:
        at = datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedEvent(f"{key} {value} is not a date we can hold") from exc
    return sale_time(at, key)


def iso_time(obj: dict, key: str) -> datetime:
    """``obj[key]``: an ISO 8601 time with its offset, within the sale date bounds."""
    value = obj.get(key)
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError) as exc:
        raise MalformedEvent(f"{key} must be an ISO 8601 time, got {value!r}") from exc
    if at.tzinfo is None:
        raise MalformedEvent(f"{key} {value!r} has no time zone")
    return sale_time(at, key)


def email_of(obj: object, key: str) -> str | None:
    """The payer's address, lower-case, or None when the provider sent none."""
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_EMAIL_LENGTH:
        raise MalformedEvent(f"{key} must be an email address, got {value!r:.80}")
    return value.strip().lower() or None
