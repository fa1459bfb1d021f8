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
    """One rollup key whose stored figures (None: no row) differ from a recount's."""

    user_id: str
    day: date
    tier: int
    status: str
    stored: Figures | None
    recounted: Figures | None


_DIFFERENCES = text(
    """
    SELECT coalesce(r.user_id, c.user_id), coalesce(r.day, c.day), coalesce(r.tier, c.tier),
           coalesce(r.status, c.status),
           r.commissions, r.amount, r.clawed_back, r.sale_net,
           c.commissions, c.amount, c.clawed_back, c.sale_net
    FROM commission_rollups r
    FULL JOIN commission_rollup_recount() c
        ON (c.user_id, c.day, c.tier, c.status) = (r.user_id, r.day, r.tier, r.status)
    WHERE (r.commissions, r.amount, r.clawed_back, r.sale_net)
          IS DISTINCT FROM (c.commissions, c.amount, c.clawed_back, c.sale_net)
    ORDER BY 1, 2, 3, 4
    """
)


def _figures(values: tuple) -> Figures | None:
    return None if values[0] is None else Figures(*values)


def differences() -> list[Difference]:
    """Every rollup row that differs from a recount of the commissions (and every recounted
    key without a row). Empty when the rollups are exact. Reads one snapshot, locks nothing."""
    return [
        Difference(*row[:4], _figures(row[4:8]), _figures(row[8:12]))
        for row in db.session.execute(_DIFFERENCES)
    ]


def rebuild_all() -> None:
    """Recompute the whole table from commissions and sales, in this transaction. Takes SHARE
    locks on ``commissions`` and ``sales`` (writers wait until the commit) so no change falls
    between the recount and the write. Flushes nothing else; the caller commits."""
    db.session.execute(text("SELECT rebuild_commission_rollups()"))
