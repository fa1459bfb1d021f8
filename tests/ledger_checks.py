"""The ledger invariant (README, "The ledger"), checked by tests after any history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app.extensions import db
from app.services.money.ledger import HELD_UNTIL, ZERO, Balances, balances, settled_sql
from app.services.money.ledger_totals import differences
from app.services.payouts.treasury import owed

# What balances were before the running totals: every entry of the user, summed.
_BALANCES_FROM_ENTRIES = text(
    """
    SELECT coalesce(sum(amount) FILTER (WHERE available_at > :now AND available_at < :held), 0),
           coalesce(sum(amount) FILTER (WHERE available_at >= :held), 0),
           coalesce(sum(amount) FILTER (WHERE available_at <= :now), 0),
           coalesce(-sum(amount) FILTER (
               WHERE kind IN ('payout', 'payout_failure', 'payout_reversal')), 0)
    FROM ledger_entries WHERE user_id = :user_id
    """
)
# The treasury's "owed" before the running totals: every entry, grouped by user.
_OWED_FROM_ENTRIES = text(
    """
    SELECT coalesce(sum(greatest(settled, 0)), 0), coalesce(sum(pending), 0)
    FROM (SELECT sum(amount) FILTER (WHERE available_at <= :now) AS settled,
                 coalesce(sum(amount) FILTER (
                     WHERE available_at > :now AND available_at < :held), 0) AS pending
          FROM ledger_entries GROUP BY user_id) AS per_user
    """
)
_BRANCH_EARNINGS_RECOUNT = text(
    """
    WITH recount AS (
        SELECT c.user_id AS earner_id, m.member_id, sum(c.amount - c.clawed_back) AS amount
        FROM commissions c
        JOIN referrals r ON r.id = c.referral_id
        CROSS JOIN LATERAL (
            SELECT r.referred_user_id AS member_id
            UNION ALL
            SELECT up.referrer_id FROM referrals up
            WHERE up.referred_user_id = r.referred_user_id AND up.tier < r.tier
        ) m
        WHERE c.status <> 'cancelled'
        GROUP BY 1, 2
    )
    SELECT earner_id, member_id, r.amount, b.amount
    FROM recount r FULL JOIN branch_earnings b USING (earner_id, member_id)
    WHERE coalesce(r.amount, 0) <> coalesce(b.amount, 0)
    """
)


def balances_from_entries(user_id: str, now: datetime) -> Balances:
    pending, held, settled, paid = db.session.execute(
        _BALANCES_FROM_ENTRIES, {"user_id": user_id, "now": now, "held": HELD_UNTIL}
    ).one()
    return Balances(pending, held, max(settled, ZERO), paid, max(-settled, ZERO))


def assert_totals_exact() -> None:
    """The running totals equal a recount of the entries, and every user's balances read
    from them equal the sums over the entries: now, at each moment an entry becomes
    available and a microsecond either side (the hour buckets' edges), and in a month."""
    assert differences() == []
    now = datetime.now(UTC)
    moments = {now, now + timedelta(days=31), now - timedelta(days=1)}
    for (at,) in db.session.execute(
        text("SELECT DISTINCT available_at FROM ledger_entries ORDER BY 1 LIMIT 20")
    ):
        moments |= {at, at - timedelta(microseconds=1), at + timedelta(microseconds=1)}
    users = db.session.scalars(text("SELECT DISTINCT user_id FROM ledger_entries")).all()
    for moment in (m for m in moments if m.year < 9999):
        for user_id in users:
            expected = balances_from_entries(user_id, moment)
            assert balances(user_id, moment) == expected
            settled = db.session.scalar(
                text(f"SELECT {settled_sql(':user_id')}"), {"user_id": user_id, "now": moment}
            )
            assert max(settled, ZERO) == expected.available
        treasury = owed(moment)
        expected = db.session.execute(_OWED_FROM_ENTRIES, {"now": moment, "held": HELD_UNTIL}).one()
        assert (treasury.available, treasury.pending) == tuple(expected)


def assert_branch_earnings_exact() -> None:
    assert db.session.execute(_BRANCH_EARNINGS_RECOUNT).all() == []


def assert_ledger_invariant() -> None:
    """For every user: ledger = non-cancelled commissions - clawbacks - payouts neither
    failed nor reversed; every payout reserved its amount in the ledger once, and only a
    failed or reversed one got it back, once."""
    rows = db.session.execute(
        text(
            """
            SELECT u.id,
                   (SELECT coalesce(sum(amount), 0) FROM ledger_entries l WHERE l.user_id = u.id),
                   (SELECT coalesce(sum(amount - clawed_back), 0) FROM commissions c
                    WHERE c.user_id = u.id AND c.status <> 'cancelled')
                   - (SELECT coalesce(sum(amount), 0) FROM payouts p
                      WHERE p.user_id = u.id AND p.status NOT IN ('failed', 'reversed'))
            FROM users u
            """
        )
    ).all()
    assert [(user, ledger) for user, ledger, _ in rows] == [(u, e) for u, _, e in rows]
    wrong = db.session.execute(
        text(
            """
            SELECT p.id FROM payouts p
            WHERE (SELECT coalesce(array_agg(l.amount ORDER BY l.id), '{}') FROM ledger_entries l
                   WHERE l.payout_id = p.id)
                <> CASE WHEN p.status IN ('failed', 'reversed') THEN ARRAY[-p.amount, p.amount]
                        ELSE ARRAY[-p.amount] END
            """
        )
    ).all()
    assert wrong == []
    assert_totals_exact()
    assert_branch_earnings_exact()
