"""A payout statement as CSV: the payout, then every line, so the amounts add up in a sheet.

Amounts are signed as they move the payout: commissions positive, clawbacks as in the ledger
(negative when taken back), the carry either way; their sum is the payout's amount.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from app.csv_stream import stream_csv
from app.money import quantize
from app.services.payouts.statements import ClawbackLine, CommissionLine, Statement

HEADER = (
    "line", "date", "sale_date", "tier", "rate", "base_amount", "base_tax",
    "amount_before_refunds", "amount", "detail", "reference",
)  # fmt: skip


def payout_date(statement: Statement) -> datetime:
    """The payout's date: when it was paid, or requested while it is not."""
    return statement.payout.completed_at or statement.payout.created_at


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment else ""


def statement_csv(
    statement: Statement,
    commissions: Iterable[CommissionLine],
    clawbacks: Iterable[ClawbackLine],
    currency: str,
    method: str,
) -> Iterator[str]:
    """The header, the payout, its commissions, the clawbacks netted from it and the carry
    (completed payouts only), streamed in chunks."""
    payout = statement.payout

    def lines() -> Iterator[tuple[object, ...]]:
        yield HEADER
        detail = f"{method}; {payout.status}"
        if payout.failure_reason:
            detail += f"; {payout.failure_reason}"
        yield (
            "payout",
            _day(payout_date(statement)),
            *[""] * 6,
            quantize(payout.amount, currency),
            detail,
            payout.transaction_reference,
        )
        for line in commissions:
            yield (
                "commission",
                "",
                _day(line.sale_date),
                line.tier,
                line.rate,
                quantize(line.base_amount, currency),
                "included" if line.base_includes_tax else "excluded",
                quantize(line.gross_amount, currency),
                quantize(line.amount, currency),
                "",
            )
        for line in clawbacks:
            reason = "clawed back" if line.amount < 0 else "returned (dispute won)"
            amount = quantize(line.amount, currency)
            yield (
                "clawback",
                _day(line.created_at),
                _day(line.sale_date),
                line.tier,
                "",
                "",
                "",
                "",
                amount,
                reason,
            )
        carried = statement.carried
        if carried:
            name = "carried_to_later_payouts" if carried > 0 else "carried_from_earlier_payouts"
            yield (name, "", "", "", "", "", "", "", quantize(carried, currency), "")

    return stream_csv(lines())
