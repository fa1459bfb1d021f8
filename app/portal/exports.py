"""CSV export of commissions, written row by row as the database cursor yields them."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

from app.money import quantize
from app.services.money.commission_listing import CommissionRow

HEADER = (
    "date", "status", "tier", "amount", "clawed_back", "rate", "sale_amount_net",
    "sale_amount_net_tax", "payable_from", "buyer", "sale_reference",
)  # fmt: skip
# A cell starting with one of these is a formula in a spreadsheet: quote it as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def commission_csv(rows: Iterable[CommissionRow], currency: str) -> Iterator[str]:
    """The header, then the rows in chunks of about 16 KB (amounts in the currency's unit)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow(
            _cell(v)
            for v in (
                row.created_at.date().isoformat(),
                row.status,
                row.tier,
                quantize(row.amount, currency),
                quantize(row.clawed_back, currency),
                row.rate,
                quantize(row.sale_net, currency),
                "included" if row.base_includes_tax else "excluded",
                row.payable_at.date().isoformat(),
                row.buyer,
                row.sale_reference,
            )
        )
        if buffer.tell() > 16_384:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
