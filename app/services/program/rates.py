"""Rates as admins type and read them: percentages, stored as exact fractions (never float)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

PERCENT = Decimal(100)
# A percentage with at most four decimals is a fraction with at most six: the Rate column's
# scale, so a stored rate is exactly the rate typed.
PERCENT_PLACES = 4


def bounded_decimal(raw: str, places: int, low: Decimal, high: Decimal, unit: str = "") -> Decimal:
    """A finite decimal from ``low`` to ``high`` with at most ``places`` decimals, else a
    ``ValueError`` that says what to type."""
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise ValueError(f"Enter a number, like {high / 10}.") from None
    if not value.is_finite():
        raise ValueError(f"Enter a number, like {high / 10}.")
    if not low <= value <= high:
        raise ValueError(f"Between {low} and {high}{unit}.")
    if value != value.quantize(Decimal(1).scaleb(-places)):
        raise ValueError(f"At most {places} decimal places.")
    return value


def is_whole(raw: str) -> bool:
    """ASCII digits only, at most six: ``str.isdigit`` alone accepts "²" and other scripts."""
    raw = raw.strip()
    return raw.isascii() and raw.isdigit() and len(raw) <= 6


def percent(raw: str) -> Decimal:
    """A percentage from 0 to 100 as the stored fraction."""
    value = bounded_decimal(raw, PERCENT_PLACES, Decimal(0), PERCENT, " %")
    return (value / PERCENT).quantize(Decimal("0.000001"))


def plain(value: Decimal) -> str:
    """A decimal without trailing zeros or exponent: 7.5, 50, 0.25."""
    return format(value.normalize(), "f")


def percent_text(rate: Decimal) -> str:
    """A stored fraction as the percentage an admin typed."""
    return plain(rate * PERCENT)
