"""The ledger invariant (README, "The ledger"), checked by tests after any history."""

from __future__ import annotations

from sqlalchemy import text

from app.extensions import db


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
