"""Hypothesis: after any sequence of sales, refunds, disputes and payout requests, sends,
retries, completions, failures and reversals, the ledger holds.

For every user: ledger = non-cancelled commissions - non-failed payouts - clawbacks; every
commission is rate * (sale - refunds) rounded half up to the cent (or what was paid, less
what was clawed back); commissions marked paid never exceed what completed payouts paid;
balances are never built from anything but the ledger.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from app.extensions import db
from app.models import Commission, Payout, Sale, User
from app.services.payouts.payouts import (
    PayoutRefused,
    complete_payout,
    fail_payout,
    request_payout,
    start_processing,
)
from app.services.payouts.reversals import reverse_payout
from tests.conftest import reset_database
from tests.factories import make_chain, make_payout_account
from tests.history_steps import cents, sale_steps, take_sale_step
from tests.ledger_checks import assert_ledger_invariant

amounts = cents(500_000)
steps = st.lists(
    st.one_of(
        *sale_steps(amounts),
        st.tuples(st.just("payout"), st.integers(0, 2), st.none() | amounts),
        st.tuples(st.just("start"), st.integers(0, 2)),
        st.tuples(st.just("retry"), st.integers(0, 2)),
        st.tuples(st.just("complete"), st.integers(0, 2)),
        st.tuples(st.just("fail"), st.integers(0, 2)),
        st.tuples(st.just("reverse"), st.integers(0, 2)),
    ),
    min_size=1,
    max_size=25,
)


def _payouts(user: User, status: str) -> list[Payout]:
    return list(
        db.session.scalars(select(Payout).where(Payout.user_id == user.id, Payout.status == status))
    )


def _open_payout(user: User) -> Payout | None:
    found = _payouts(user, "pending") + _payouts(user, "processing")
    return found[0] if found else None


def _expected_amount(commission: Commission, sale: Sale) -> Decimal:
    net = sale.amount - min(sale.amount, sale.refunded_amount + sale.disputed_amount)
    return (net * commission.rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
def test_ledger_invariant_and_rounding_over_random_histories(steps):
    reset_database()
    *uplines, buyer = make_chain(4)
    for upline in uplines:
        make_payout_account(upline)
    sales: list[str] = []
    later = datetime.now(UTC) + timedelta(days=1)
    for step in steps:
        kind = step[0]
        take_sale_step(step, buyer, sales)
        if kind == "payout":
            with contextlib.suppress(PayoutRefused):
                request_payout(uplines[step[1]], step[2], "stripe", now=later)
        elif kind == "reverse":
            for payout in _payouts(uplines[step[1]], "completed"):
                reverse_payout(payout, f"tr_{payout.id}", now=later)
        elif kind in ("start", "retry", "complete", "fail") and (
            payout := _open_payout(uplines[step[1]])
        ):
            if kind == "start" and payout.status == "pending":
                start_processing(payout)
            elif kind == "retry" and payout.status == "processing":
                payout.transition_to("pending")  # a transient error: sent again later
            elif kind == "complete":
                if payout.status == "pending":
                    start_processing(payout)
                complete_payout(payout, f"tr_{payout.id}", now=later)
            elif kind == "fail":
                fail_payout(payout, "account closed", now=later)
        db.session.commit()
        assert_ledger_invariant()

    for commission in db.session.scalars(select(Commission)):
        sale = db.session.get(Sale, commission.sale_id)
        expected = _expected_amount(commission, sale)
        if commission.status == "paid":
            assert commission.amount - commission.clawed_back == min(expected, commission.amount)
        elif commission.status == "cancelled":
            assert sale.refunded_amount >= sale.amount
        else:
            assert commission.amount == expected
    negative = db.session.scalar(text("SELECT count(*) FROM commissions WHERE amount < 0"))
    assert negative == 0
    overpaid = db.session.scalar(
        text(
            """
            SELECT count(*) FROM users u
            WHERE (SELECT coalesce(sum(amount - clawed_back), 0) FROM commissions c
                   WHERE c.user_id = u.id AND c.status = 'paid')
                > (SELECT coalesce(sum(amount), 0) FROM payouts p
                   WHERE p.user_id = u.id AND p.status = 'completed')
            """
        )
    )
    assert overpaid == 0
