"""Payout statements: what a payout paid for, what was netted from it, and how they add up.

A statement of a payout lists

- **the commissions it covers**: those whose ``payout_id`` is the payout (set when it
  completes, oldest payable first; see ``complete_payout``);
- **the clawbacks netted from it**: the user's ``clawback`` ledger entries written after the
  reservation (``payout`` entry) of their previous *paid* payout (completed, or completed
  and later reversed) and before this payout's own reservation, in ledger order. Those are
  the clawbacks that lowered the balance this payout was requested from and that no earlier
  paid payout had already absorbed. A failed payout nets nothing: its reserve came back, so
  the next payout's window reaches back over it. A positive ``clawback`` entry (a dispute
  won after payout) gives money back and is listed too, with its sign;
- **the carry**: ``amount - commissions + clawbacks taken``, what the payout paid beyond (or
  short of) the commissions it lists net of those clawbacks. It is zero when the payout paid
  exactly its commissions; a partial payout leaves money for commissions a later payout
  lists (carried to later payouts), and that later payout lists commissions partly paid
  before (carried from earlier payouts).

So ``commissions + clawback entries (signed) + carry = amount`` for every completed payout. The
page shows at most ``LINES_SHOWN`` lines of each kind (totals always cover all of them); the
CSV streams every line. Queries use ``commissions.payout_id`` and the ledger's ``payout_id``
and partial clawback indexes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, func, select

from app.extensions import db
from app.models import Commission, LedgerEntry, Payout, Sale
from app.models.base import ID_LENGTH

LINES_SHOWN = 500
# Payouts whose money reached the affiliate (a reversal later returned it to the balance).
PAID_STATUSES = frozenset({"completed", "reversed"})


@dataclass(frozen=True)
class CommissionLine:
    """One commission the payout paid, with the terms it accrued on."""

    sale_date: datetime | None
    tier: int
    rate: Decimal
    base_amount: Decimal
    base_includes_tax: bool
    gross_amount: Decimal  # before refunds made ahead of the payout
    amount: Decimal  # what was paid for it


@dataclass(frozen=True)
class ClawbackLine:
    """One clawback entry netted from the payout: negative when money was taken back,
    positive when it was returned (a dispute won)."""

    created_at: datetime
    sale_date: datetime | None
    tier: int
    amount: Decimal


@dataclass(frozen=True)
class Statement:
    payout: Payout
    commissions: list[CommissionLine]  # the first LINES_SHOWN
    commission_count: int
    commissions_total: Decimal
    clawbacks: list[ClawbackLine]  # the first LINES_SHOWN
    clawback_count: int
    clawbacks_total: Decimal  # signed, as in the ledger

    @property
    def carried(self) -> Decimal | None:
        """What the payout paid beyond its commissions net of clawbacks (negative: its
        commissions were partly paid by earlier payouts); ``None`` unless it is completed
        (a reversed payout's money went back to the balance: there is nothing to carry)."""
        if self.payout.status != "completed":
            return None
        return self.payout.amount - self.commissions_total - self.clawbacks_total


def payout_of(user_id: str, payout_id: str) -> Payout | None:
    """The payout if it is ``user_id``'s, else ``None`` (another user's looks missing)."""
    if len(payout_id) > ID_LENGTH:
        return None
    return db.session.scalars(
        select(Payout).where(Payout.id == payout_id, Payout.user_id == user_id)
    ).one_or_none()


def _commission_lines(payout: Payout) -> Select:
    return (
        select(
            Sale.occurred_at.label("sale_date"),
            Commission.tier,
            Commission.rate,
            Commission.base_amount,
            Commission.base_includes_tax,
            Commission.gross_amount,
            Commission.amount,
        )
        .join(Sale, Sale.id == Commission.sale_id)
        .where(Commission.payout_id == payout.id)
        # The order completion marked them in.
        .order_by(Commission.payable_at, Commission.created_at, Commission.id)
    )


def netting_window(payout: Payout) -> tuple[int, int] | None:
    """Ledger entry ids ``(after, before)`` bounding the clawbacks netted from ``payout``:
    the previous paid payout's reservation (0 if none) and this payout's; ``None`` for a
    failed payout or one without a reservation."""
    if payout.status == "failed":
        return None
    reservation = db.session.scalar(
        select(LedgerEntry.id).where(
            LedgerEntry.payout_id == payout.id, LedgerEntry.kind == "payout"
        )
    )
    if reservation is None:
        return None
    previous = db.session.scalar(
        select(func.max(LedgerEntry.id))
        .join(Payout, Payout.id == LedgerEntry.payout_id)
        .where(
            Payout.user_id == payout.user_id,
            Payout.status.in_(PAID_STATUSES),
            LedgerEntry.kind == "payout",
            LedgerEntry.id < reservation,
        )
    )
    return previous or 0, reservation


def _clawback_lines(payout: Payout, window: tuple[int, int]) -> Select:
    after, before = window
    return (
        select(
            LedgerEntry.created_at,
            Sale.occurred_at.label("sale_date"),
            Commission.tier,
            LedgerEntry.amount,
        )
        .join(Commission, Commission.id == LedgerEntry.commission_id)
        .join(Sale, Sale.id == Commission.sale_id)
        .where(
            LedgerEntry.user_id == payout.user_id,
            LedgerEntry.kind == "clawback",
            LedgerEntry.id > after,
            LedgerEntry.id < before,
        )
        .order_by(LedgerEntry.id)
    )


def _count_and_sum(query: Select) -> tuple[int, Decimal]:
    lines = query.order_by(None).subquery()
    count, total = db.session.execute(
        select(func.count(), func.coalesce(func.sum(lines.c.amount), 0))
    ).one()
    return count, total


def statement(payout: Payout, lines: int = LINES_SHOWN) -> Statement:
    """The statement of ``payout`` (already checked to be the viewer's): at most ``lines``
    lines of each kind, totals over all of them. Six small reads, each on an index."""
    commissions = _commission_lines(payout)
    commission_count, commissions_total = _count_and_sum(commissions)
    window = netting_window(payout)
    clawbacks: list[ClawbackLine] = []
    clawback_count, clawbacks_total = 0, Decimal(0)
    if window is not None:
        query = _clawback_lines(payout, window)
        clawback_count, clawbacks_total = _count_and_sum(query)
        clawbacks = [ClawbackLine(**row._mapping) for row in db.session.execute(query.limit(lines))]
    return Statement(
        payout=payout,
        commissions=[
            CommissionLine(**row._mapping) for row in db.session.execute(commissions.limit(lines))
        ],
        commission_count=commission_count,
        commissions_total=commissions_total,
        clawbacks=clawbacks,
        clawback_count=clawback_count,
        clawbacks_total=clawbacks_total,
    )


def _stream(query: Select) -> Iterator[dict]:
    result = db.session.execute(query.execution_options(yield_per=1000, stream_results=True))
    for row in result:
        yield row._mapping


def iter_commission_lines(payout: Payout) -> Iterator[CommissionLine]:
    """Every commission line, from a server-side cursor (for the CSV)."""
    for row in _stream(_commission_lines(payout)):
        yield CommissionLine(**row)


def iter_clawback_lines(payout: Payout) -> Iterator[ClawbackLine]:
    """Every clawback netted from the payout, from a server-side cursor (for the CSV)."""
    window = netting_window(payout)
    if window is not None:
        for row in _stream(_clawback_lines(payout, window)):
            yield ClawbackLine(**row)
