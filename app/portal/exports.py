"""CSV export of commissions, written row by row as the database cursor yields them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from app.csv_stream import stream_csv
from app.money import quantize
from app.services.money.commission_listing import CommissionRow

# Dates as the page shows them: the sale date (the hold counts from it), the date recorded
# (when the commission accrued; the filters use it) and the end of the hold period.
HEADER = (
    "sale_date", "recorded_on", "status", "tier", "amount", "clawed_back", "rate",
    "sale_amount_net", "sale_amount_net_tax", "payable_from", "buyer", "sale_reference",
)  # fmt: skip


def commission_csv(rows: Iterable[CommissionRow], currency: str) -> Iterator[str]:
    """The header, then the rows in chunks of about 16 KB (amounts in the currency's unit;
    the status as an affiliate reads it: in_hold, available, held, paid, cancelled)."""

    def lines() -> Iterator[tuple[object, ...]]:
        yield HEADER
        for row in rows:
            yield (
                row.sale_occurred_at.date().isoformat() if row.sale_occurred_at else "",
                row.created_at.date().isoformat(),
                row.state,
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

    return stream_csv(lines())
