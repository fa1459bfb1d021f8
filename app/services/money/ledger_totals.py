"""The ledger's running totals (``ledger_totals``, ``ledger_buckets``) checked against the
entries, and repaired from them: ``flask ledger verify [--fix]``.

The trigger of migration 0024 keeps the totals in the statement that appends the entries,
so a difference means something went around it (a restore of one table, a trigger
disabled by hand). The entries are the truth; the totals are derived from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, VARCHAR

from app.extensions import db
from app.services.ops import audit

# Both sides in one statement, so one snapshot: entries and their totals commit together.
_RECOUNT = """
    totals AS (
        SELECT user_id, sum(amount) AS total,
               coalesce(-sum(amount) FILTER (
                   WHERE kind IN ('payout', 'payout_failure', 'payout_reversal')), 0) AS paid
        FROM ledger_entries {where} GROUP BY user_id
    ),
    buckets AS (
        SELECT user_id, date_trunc('hour', available_at, 'UTC') AS available_hour,
               sum(amount) AS amount
        FROM ledger_entries {where} GROUP BY 1, 2
    )
"""
_DIFFERENCES = text(
    "WITH"  # noqa: S608 (constant SQL put together, no input)
    + _RECOUNT.format(where="")
    + """
    SELECT user_id FROM totals r FULL JOIN ledger_totals t USING (user_id)
    WHERE coalesce(r.total, 0) <> coalesce(t.total, 0) OR coalesce(r.paid, 0) <> coalesce(t.paid, 0)
    UNION
    SELECT user_id FROM buckets r FULL JOIN ledger_buckets b USING (user_id, available_hour)
    WHERE coalesce(r.amount, 0) <> coalesce(b.amount, 0)
    ORDER BY 1
    """
)
_USERS = "WHERE user_id = ANY(:user_ids)"
# The users' totals rows first, locked (inserted when missing): the trigger upserts a user's
# totals row before their buckets, so while these locks are held no statement is adding to
# either, and an uncommitted one adds its part after ours — nothing is counted twice.
_LOCK = text(
    """
    WITH missing AS (
        INSERT INTO ledger_totals (user_id, total, paid)
        SELECT id, 0, 0 FROM users WHERE id = ANY(:user_ids) ORDER BY id
        ON CONFLICT (user_id) DO NOTHING
    )
    SELECT user_id, total, paid FROM ledger_totals
    WHERE user_id = ANY(:user_ids) ORDER BY user_id FOR UPDATE
    """
).bindparams(bindparam("user_ids", type_=ARRAY(VARCHAR)))
_CLEAR_BUCKETS = text("DELETE FROM ledger_buckets WHERE user_id = ANY(:user_ids)").bindparams(
    bindparam("user_ids", type_=ARRAY(VARCHAR))
)
_REFILL = text(
    "WITH"  # noqa: S608 (constant SQL put together, no input)
    + _RECOUNT.format(where=_USERS)
    + """,
    refilled AS (
        INSERT INTO ledger_buckets (user_id, available_hour, amount)
        SELECT user_id, available_hour, amount FROM buckets
    )
    UPDATE ledger_totals t SET total = coalesce(r.total, 0), paid = coalesce(r.paid, 0)
    FROM (SELECT unnest(CAST(:user_ids AS varchar[])) AS user_id) u
    LEFT JOIN totals r USING (user_id)
    WHERE t.user_id = u.user_id
    RETURNING t.user_id, t.total, t.paid
    """
).bindparams(bindparam("user_ids", type_=ARRAY(VARCHAR)))


@dataclass(frozen=True)
class Repair:
    user_id: str
    total_before: Decimal
    total_after: Decimal
    paid_before: Decimal
    paid_after: Decimal


def differences() -> list[str]:
    """The users whose totals or buckets differ from a recount of their entries (a full
    pass over the ledger: an operator's check, not a request's)."""
    return list(db.session.scalars(_DIFFERENCES))


def repair(user_ids: list[str], actor_id: str | None = None) -> list[Repair]:
    """Set these users' totals and buckets to a recount of their entries, under their totals
    rows' locks (so entries appended meanwhile count once), one audit entry
    (``ledger.totals_repaired``) per user. Flushes only."""
    if not user_ids:
        return []
    user_ids = sorted(user_ids)
    before = {row.user_id: row for row in db.session.execute(_LOCK, {"user_ids": user_ids})}
    repairs = []
    db.session.execute(_CLEAR_BUCKETS, {"user_ids": user_ids})
    for user_id, total, paid in db.session.execute(_REFILL, {"user_ids": user_ids}):
        was = before[user_id]
        repairs.append(Repair(user_id, was.total, total, was.paid, paid))
        audit.record(
            "ledger.totals_repaired",
            actor_id=actor_id,
            subject_type="user",
            subject_id=user_id,
            total_before=str(was.total),
            total_after=str(total),
            paid_before=str(was.paid),
            paid_after=str(paid),
        )
    db.session.flush()
    return sorted(repairs, key=lambda r: r.user_id)


def rebuild_all() -> None:
    """Recompute every total and bucket from the entries, set-based (after a bulk load with
    triggers off). Takes the ledger's write lock: no entry is appended meanwhile. Flushes."""
    db.session.execute(text("LOCK TABLE ledger_entries IN SHARE ROW EXCLUSIVE MODE"))
    db.session.execute(text("DELETE FROM ledger_buckets"))
    db.session.execute(text("DELETE FROM ledger_totals"))
    db.session.execute(
        text(
            "WITH"  # noqa: S608 (constant SQL put together, no input)
            + _RECOUNT.format(where="")
            + """,
            refilled AS (INSERT INTO ledger_buckets SELECT user_id, available_hour, amount
                         FROM buckets)
            INSERT INTO ledger_totals (user_id, total, paid) SELECT user_id, total, paid FROM totals
            """
        )
    )
