"""Balances from the append-only ledger; entries are written beside each change of money,
and a statement-level trigger keeps each user's running totals with them (``ledger_totals``,
``ledger_buckets``; checked and repaired by ``ledger_totals.py``).

The invariant, for every user at every moment (checked by the tests after any sequence of
sales, refunds and payouts):

    sum(ledger) = sum(amount of non-cancelled commissions) - sum(clawed back)
                  - sum(payouts neither failed nor reversed)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import text

from app.extensions import db
from app.models import LedgerEntry

ZERO = Decimal("0")
# Held commissions' money is in the ledger but available only when an admin releases it
# (a new pair of entries); until then it is dated here.
HELD_UNTIL = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True)
class Balances:
    pending: Decimal = ZERO  # earned, waiting for the hold period
    held: Decimal = ZERO  # earned on a flagged referral, waiting for an admin
    available: Decimal = ZERO  # can be paid out now
    paid: Decimal = ZERO  # sent in payouts (net of failed and reversed ones)
    owed: Decimal = ZERO  # clawed back beyond the balance: netted from later payouts


# Balances from the running totals (migration 0024), never from the user's whole history:
# the total of every entry, minus what becomes available after ``now`` — the hour buckets
# after the current hour (a bounded number: the hold period's hours, and the held bucket)
# plus the current hour's entries after ``now`` (an index range of one hour).
def _not_yet_available(user_id: str) -> str:
    """SQL for the (amount, available_at) of what the user ``user_id`` names (a column or
    parameter) has that becomes available after ``:now``."""
    hour = "date_trunc('hour', CAST(:now AS timestamptz), 'UTC')"
    return f"""
        SELECT amount, available_at FROM ledger_entries
        WHERE user_id = {user_id} AND available_at > :now
          AND available_at < {hour} + interval '1 hour'
        UNION ALL
        SELECT amount, available_hour FROM ledger_buckets
        WHERE user_id = {user_id} AND available_hour > {hour}
    """  # noqa: S608 (constant SQL put together, no input)


_NOT_YET_AVAILABLE = _not_yet_available(":user_id")


def settled_sql(user_id: str) -> str:
    """SQL for the sum of the entries of the user ``user_id`` names (a column or parameter)
    available at ``:now`` — what ``balances`` calls settled: the running total less what
    becomes available later. For statements that compute it for many users at once
    (scheduled payouts)."""
    return f"""(
        coalesce((SELECT total FROM ledger_totals t WHERE t.user_id = {user_id}), 0)
        - coalesce((SELECT sum(amount) FROM ({_not_yet_available(user_id)}) later), 0)
    )"""  # noqa: S608 (constant SQL put together, no input)


_BALANCES = text(
    f"""
    WITH later AS ({_NOT_YET_AVAILABLE})
    SELECT coalesce((SELECT sum(amount) FROM later WHERE available_at < :held), 0),
           coalesce((SELECT sum(amount) FROM later WHERE available_at >= :held), 0),
           coalesce(t.total, 0), coalesce(t.paid, 0)
    FROM (SELECT 1) one LEFT JOIN ledger_totals t ON t.user_id = :user_id
    """  # noqa: S608 (constant SQL put together, no input)
)


def balances(user_id: str, now: datetime | None = None) -> Balances:
    """A handful of index reads, whatever the user's history: the running totals and the
    buckets of what is not available yet (exact: ``flask ledger verify`` compares them with
    the entries)."""
    pending, held, total, paid = db.session.execute(
        _BALANCES, {"user_id": user_id, "now": now or datetime.now(UTC), "held": HELD_UNTIL}
    ).one()
    settled = total - pending - held
    return Balances(
        pending=pending,
        held=held,
        available=max(settled, ZERO),
        paid=paid,
        owed=max(-settled, ZERO),
    )


@dataclass(frozen=True)
class PendingSchedule:
    """When the pending balance becomes available: the next dates (UTC) with their amounts,
    and what becomes available later than those, on ``later_dates`` more dates."""

    dates: list[tuple[date, Decimal]]
    later: Decimal = ZERO
    later_dates: int = 0


# Days with nothing left (an accrual fully reversed by a refund) are skipped.
_BECOMING_AVAILABLE = text(
    f"""
    WITH later AS ({_NOT_YET_AVAILABLE}),
    days AS (
        SELECT (available_at AT TIME ZONE 'UTC')::date AS day, sum(amount) AS amount
        FROM later WHERE available_at < :held
        GROUP BY 1 HAVING sum(amount) <> 0
    ), numbered AS (SELECT day, amount, row_number() OVER (ORDER BY day) AS n FROM days)
    SELECT day, amount, 1 FROM numbered WHERE n <= :limit
    UNION ALL
    SELECT NULL, sum(amount), count(*) FROM numbered WHERE n > :limit HAVING count(*) > 0
    ORDER BY 1 NULLS LAST
    """  # noqa: S608 (constant SQL put together, no input)
)


def becoming_available(
    user_id: str, now: datetime | None = None, limit: int = 10
) -> PendingSchedule:
    """The pending balance by the date it becomes available: the first ``limit`` dates, and
    one total for the rest. Read from the hour buckets after the current hour and the current
    hour's entries, like ``balances``; held money is not pending and not listed."""
    rows = db.session.execute(
        _BECOMING_AVAILABLE,
        {"user_id": user_id, "now": now or datetime.now(UTC), "held": HELD_UNTIL, "limit": limit},
    ).all()
    dates = [(day, amount) for day, amount, _ in rows if day is not None]
    rest = [(amount, count) for day, amount, count in rows if day is None]
    later, later_dates = rest[0] if rest else (ZERO, 0)
    return PendingSchedule(dates, later, later_dates)


def append(
    user_id: str,
    kind: str,
    amount: Decimal,
    available_at: datetime,
    *,
    commission_id: str | None = None,
    payout_id: str | None = None,
) -> None:
    """Add one entry (nothing for a zero amount). Flushes with the session."""
    if amount:
        db.session.add(
            LedgerEntry(
                user_id=user_id,
                kind=kind,
                amount=amount,
                available_at=available_at,
                commission_id=commission_id,
                payout_id=payout_id,
            )
        )
