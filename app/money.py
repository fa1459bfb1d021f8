"""Money: ``Decimal`` everywhere, one rounding rule.

The rule: an amount is rounded once, when it is computed, to the minor unit of its currency
(2 decimals for USD/EUR, 0 for JPY, 3 for KWD, ...), half away from zero (``ROUND_HALF_UP``).
Sums of rounded amounts are exact and never rounded again.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor units that differ from the usual 2.
_MINOR_UNITS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}  # fmt: skip


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency.upper(), 2)


def quantize(amount: Decimal, currency: str = "USD") -> Decimal:
    """Round ``amount`` to the currency's minor unit with the program's one rule."""
    exponent = Decimal(1).scaleb(-minor_units(currency))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP)


def format_money(amount: Decimal | int | None, currency: str = "USD") -> str:
    """``1234.5`` → ``"1,234.50 USD"`` for display; ``None`` shows as a zero."""
    value = quantize(Decimal(amount or 0), currency)
    return f"{value:,} {currency.upper()}"


_RATIO = Decimal("0.0001")  # ratios: 4 places (a percentage to 2)


def ratio(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    """``part / whole`` to 4 places, None when ``whole`` is 0 (no rate, rather than 0 %)."""
    return (Decimal(part) / whole).quantize(_RATIO) if whole else None


def format_percent(rate: Decimal) -> str:
    """A rate (a fraction) as an exact percentage: ``0.025000`` → ``"2.5 %"``, never
    through a float, nothing rounded (rates have at most 6 decimals)."""
    return f"{(rate * 100).normalize():f} %"
