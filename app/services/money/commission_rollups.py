"""The earnings rollups (``commission_rollups``): their check and their rebuild.

Triggers keep the rollups exact in the statement that changes a commission, a sale's
refunds or the currency (migration 0025); nothing in the application writes them. These
functions are for operators and tests: what differs from a recount, and a recount written
back. Both are set-based SQL over every commission (seconds at millions of rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import text

from app.extensions import db


@dataclass(frozen=True)
class Figures:
    commissions: int
    amount: Decimal
    clawed_back: Decimal
    sale_net: Decimal


@dataclass(frozen=True)
class Difference:
    """One rollup key whose stored figures (None: no row) differ from a recount's; ``day`` is
    the first of the month for a month row (``table`` says which)."""

    table: str
    user_id: str
    day: date
    tier: int
    status: str
    stored: Figures | None
    recounted: Figures | None


_COMPARE = """
    SELECT CAST(:table AS text), coalesce(r.user_id, c.user_id), coalesce(r.{key}, c.{key}),
           coalesce(r.tier, c.tier), coalesce(r.status, c.status),
           r.commissions, r.amount, r.clawed_back, r.sale_net,
           c.commissions, c.amount, c.clawed_back, c.sale_net
    FROM {table} r
    FULL JOIN {recount}() c
        ON (c.user_id, c.{key}, c.tier, c.status) = (r.user_id, r.{key}, r.tier, r.status)
    WHERE (r.commissions, r.amount, r.clawed_back, r.sale_net)
          IS DISTINCT FROM (c.commissions, c.amount, c.clawed_back, c.sale_net)
"""
_DIFFERENCES = text(
    _COMPARE.format(table="commission_rollups", key="day", recount="commission_rollup_recount")
    + " UNION ALL "
    + _COMPARE.format(
        table="commission_rollup_months", key="month", recount="commission_rollup_month_recount"
    ).replace(":table", ":months")
    + " ORDER BY 1, 2, 3, 4, 5"
).bindparams(table="commission_rollups", months="commission_rollup_months")


def _figures(values: tuple) -> Figures | None:
    return None if values[0] is None else Figures(*values)


def differences() -> list[Difference]:
    """Every rollup row, day or month, that differs from a recount of the commissions (and
    every recounted key without a row). Empty when the rollups are exact. Reads one snapshot,
    locks nothing."""
    return [
        Difference(*row[:5], _figures(row[5:9]), _figures(row[9:13]))
        for row in db.session.execute(_DIFFERENCES)
    ]


def rebuild_all() -> None:
    """Recompute both tables from commissions and sales, in this transaction. Takes SHARE
    locks on ``commissions`` and ``sales`` (writers wait until the commit) so no change falls
    between the recount and the write. Flushes nothing else; the caller commits."""
    db.session.execute(text("SELECT rebuild_commission_rollups()"))
