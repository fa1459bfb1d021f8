"""Scheduled payouts: once per period (the program's ``payout_frequency``), every eligible
affiliate is paid all that is payable, by set-based statements.

Periods are UTC: a day (``2026-11-26``), an ISO week (``2026-W48``) or a month (``2026-11``).
A run pays, at any time in the period, every affiliate who has no payout of that period yet
and passes the rules of ``request_payout``: not suspended, a ready payout account (Stripe
first when both are ready: its payouts are sent by a worker, Lemon Squeezy's by hand), no
payout that is not final, and a payable amount (``payable_amount``: the available balance
net of money owed, less payable commissions of sales under an open dispute) above zero and
at least the minimum. The unique ``(user_id, period)`` key makes a second run, or a second
scheduler, a no-op for anyone already paid.

Each batch takes the users' ledger locks (``lock_user_ledger``'s advisory locks, in id
order, so two runs never deadlock) *before* the statement that computes the amounts and
inserts the payouts, so a request, completion or failure of the same user is either
committed before the amounts are read or waits for the batch to commit. Batches are bounded
(``BATCH`` users per transaction) because every advisory lock takes a slot in PostgreSQL's
shared lock table (``max_locks_per_transaction`` times connections: 6,400 by default).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, VARCHAR

from app.extensions import db
from app.jobs.payouts import request_sends
from app.models.payouts import OPEN_STATUSES
from app.models.transitions import sql_in
from app.services.money.ledger import settled_sql
from app.services.program.program import get_settings

BATCH = 1000
# What a worker sends at once; other payouts wait for an admin (approval, Lemon Squeezy).
STRIPE_PENDING = ("stripe", "pending")

# The account a user is paid to (Stripe first), when it is ready (PayoutAccount.is_ready)
# and the user has no payout of the period nor one that is not final.
_ACCOUNT = f"""
        CROSS JOIN LATERAL (
            SELECT a.id, a.provider FROM payout_accounts a
            WHERE a.user_id = u.id
              AND CASE a.provider
                      WHEN 'stripe' THEN a.payouts_enabled AND a.transfers_active
                                         AND a.restriction IS NULL
                      ELSE a.payee_details IS NOT NULL END
              -- Probes of the two unique indexes for this user, inside the lateral so that
              -- they stay probes: as anti joins, stale statistics of a growing payouts
              -- table chose scans of it per batch (seconds each at 100,000 payouts).
              AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.user_id = u.id
                                                        AND p.period = :period)
              AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.user_id = u.id
                                                        AND p.status IN ({sql_in(OPEN_STATUSES)}))
            ORDER BY a.provider <> 'stripe'
            LIMIT 1
        ) a
"""  # noqa: S608 (constant SQL put together, no input)

# Who is paid and how much, for the users the ``{users}`` condition names; the rules are
# request_payout's, the readiness is PayoutAccount.is_ready's, the amount payable_amount's.
_PAYABLE = f"""
    st AS (SELECT min_payout_amount, payouts_need_approval, dual_approval_above
           FROM referral_program_settings),
    payable AS (
        SELECT u.id AS user_id, a.id AS account_id, a.provider,
               greatest(greatest(settled.amount, 0) - disputed.amount, 0) AS amount
        FROM users u
{_ACCOUNT}        CROSS JOIN LATERAL (SELECT {settled_sql("u.id")} AS amount) settled
        CROSS JOIN LATERAL (
            SELECT coalesce(sum(c.amount), 0) AS amount FROM commissions c
            JOIN sales s ON s.id = c.sale_id
            WHERE c.user_id = u.id AND c.status = 'pending' AND c.payable_at <= :now
              AND s.disputed_amount > 0 AND s.dispute_closed_at IS NULL
        ) disputed
        WHERE {{users}} AND NOT u.is_suspended
    ),
    eligible AS (
        SELECT payable.*, st.* FROM payable, st
        WHERE amount > 0 AND amount >= st.min_payout_amount
    )
"""  # noqa: S608 (constant SQL put together, no input)

# The next batch of users after ``:after`` who may be paid (a ready account, no payout of
# the period nor an open one, not suspended), each one's ledger lock taken in id order. Their
# amounts are read once, by the insert, under the locks (users below the minimum are
# locked and then left: cheaper than reading every amount twice).
_LOCK = text(
    "SELECT id, pg_advisory_xact_lock(hashtext('payout:' || id)) FROM ("  # noqa: S608
    "    SELECT u.id FROM users u"
    + _ACCOUNT
    + "    WHERE u.id > :after AND NOT u.is_suspended ORDER BY u.id LIMIT :limit"
    ") batch ORDER BY id"
)

# The payouts of the locked users, read afresh under their locks: payouts, their reserve in
# the ledger and the audit entries in one statement. ON CONFLICT without a target also
# yields to the one-open-payout index.
_INSERT = text(
    "WITH"  # noqa: S608 (constant SQL put together, no input)
    + _PAYABLE.format(users="u.id = ANY(:user_ids)")
    + """,
    inserted AS (
        INSERT INTO payouts (id, user_id, amount, payment_method, payout_account_id, period,
                             status, approvals_required)
        SELECT new_id(), user_id, amount, provider, account_id, :period,
               CASE WHEN payouts_need_approval THEN 'awaiting_approval' ELSE 'pending' END,
               CASE WHEN NOT payouts_need_approval THEN 0
                    WHEN amount > dual_approval_above THEN 2 ELSE 1 END
        FROM eligible
        ORDER BY user_id
        ON CONFLICT DO NOTHING
        RETURNING id, user_id, amount, payment_method, status
    ),
    entries AS (
        INSERT INTO ledger_entries (user_id, kind, amount, available_at, payout_id)
        SELECT user_id, 'payout', -amount, :now, id FROM inserted
    ),
    audited AS (
        INSERT INTO audit_log (action, subject_type, subject_id, details)
        SELECT 'payout.scheduled', 'payout', id,
               jsonb_build_object('amount', amount::text, 'method', payment_method,
                                  'period', CAST(:period AS text))
        FROM inserted
    )
    SELECT id, payment_method, status FROM inserted
    """
).bindparams(bindparam("user_ids", type_=ARRAY(VARCHAR)))


# Index probes only (the statements are written as per-user probes: a plan from statistics
# taken while ``payouts`` was small scans it for every user as it grows), and no JIT
# (compiling took longer than running them).
_PROBES_ONLY = text(
    "SELECT set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)"
)


@contextmanager
def _planned_afresh() -> Iterator[None]:
    """The batch statements sent unprepared and planned as index probes, so no batch inherits
    a plan made while ``payouts`` was small, which scanned it for every user once it was
    large (psycopg prepares a statement run often; statistics lag a bulk insert). Not
    ``plan_cache_mode = force_custom_plan``: it re-plans the foreign key triggers' queries
    for every row, which made a batch three times slower."""
    driver = db.session.connection().connection.driver_connection
    saved = driver.prepare_threshold
    driver.prepare_threshold = None
    try:
        db.session.execute(_PROBES_ONLY)
        yield
    finally:
        driver.prepare_threshold = saved


@dataclass(frozen=True)
class ScheduledBatch:
    """One batch of a run: how many payouts it made, and where the next batch starts
    (``None``: the run is done)."""

    created: int = 0
    next_after: str | None = None


def period_key(frequency: str, at: datetime) -> str:
    """The schedule's period holding ``at`` (UTC): ``2026-11-26``, ``2026-W48`` (ISO week:
    the week of 2027-01-01 may be ``2026-W53``) or ``2026-11``."""
    day = at.astimezone(UTC).date()
    if frequency == "daily":
        return day.isoformat()
    if frequency == "weekly":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if frequency == "monthly":
        return f"{day.year}-{day.month:02d}"
    raise ValueError(f"Unknown payout frequency {frequency!r}")


def next_run(now: datetime, frequency: str | None = None) -> date:
    """The day (UTC) the next period starts, when scheduled payouts are next made: tomorrow,
    next Monday or the 1st of next month (``frequency``: the program's by default)."""
    frequency = frequency or get_settings().payout_frequency
    day = now.astimezone(UTC).date()
    if frequency == "daily":
        return day + timedelta(days=1)
    if frequency == "weekly":
        return day + timedelta(days=7 - day.weekday())
    if frequency == "monthly":
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    raise ValueError(f"Unknown payout frequency {frequency!r}")


def run_scheduled_payouts(
    now: datetime | None = None, *, after: str = "", limit: int = BATCH
) -> ScheduledBatch:
    """Pay the next ``limit`` affiliates who may be paid (by id, after ``after``) for the period
    holding ``now``: each a payout of all that is payable (``awaiting_approval`` with the
    approvals it needs when the program wants approval, else ``pending``), its ``payout``
    ledger entry and a ``payout.scheduled`` audit entry; pending Stripe payouts are sent by
    workers once the batch commits (``request_sends``).

    Idempotent and safe concurrently: at most one payout per user and period (unique key),
    never a second open one (partial unique index), never more than the balance (the
    users' ledger locks are taken before the amounts are read). Flushes; the caller commits
    each batch (ending the locks) and calls again with ``next_after`` until it is ``None``.
    """
    now = now or datetime.now(UTC)
    params = {"now": now, "period": period_key(get_settings().payout_frequency, now)}
    db.session.flush()
    with _planned_afresh():
        user_ids = list(db.session.scalars(_LOCK, {**params, "after": after, "limit": limit}))
        if not user_ids:
            return ScheduledBatch()
        rows = db.session.execute(_INSERT, {**params, "user_ids": user_ids}).all()
    request_sends([id_ for id_, method, status in rows if (method, status) == STRIPE_PENDING])
    return ScheduledBatch(len(rows), user_ids[-1] if len(user_ids) == limit else None)
