"""Hypothesis: after every step of any history of sales, refunds, disputes, payouts (paid,
clawed back), admin cancellations, flags and their decisions, and days passing, the earnings
rollups equal a recount of the commissions, and the commissions page's totals and chart read
from them equal the same figures from the commission rows."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from app.extensions import db
from app.models import Commission, ReferralFlag, Sale
from app.services.money.cancellations import CancelRefused, cancel_commission
from app.services.money.commission_listing import CommissionFilters
from app.services.money.fraud import resolve_flag
from app.services.payouts.payouts import (
    PayoutRefused,
    complete_payout,
    request_payout,
    start_processing,
)
from tests.conftest import reset_database
from tests.factories import make_chain, make_payout_account, make_user
from tests.history_steps import cents, sale_steps, take_sale_step
from tests.rollup_checks import TODAY, assert_rollups_exact

amounts = cents(200_000)
steps = st.lists(
    st.one_of(
        *sale_steps(amounts),
        st.tuples(st.just("payout"), st.integers(0, 2)),
        st.tuples(st.just("cancel"), st.integers(0, 9), st.integers(1, 3)),
        st.tuples(st.just("flag"), st.booleans()),
        st.tuples(st.just("decide"), st.sampled_from(["cleared", "confirmed"])),
        # Days passing: the commissions of a sale recorded that many days earlier (one
        # multi-row statement; the services always record today).
        st.tuples(st.just("earlier"), st.integers(0, 9), st.integers(1, 400)),
    ),
    min_size=1,
    max_size=15,
)
# A few filters after each step (the full set at the end): the rollups must equal a recount
# everywhere, and these exercise each way of reading them.
FEW = (
    CommissionFilters(),
    CommissionFilters(state="paid", tier=1),
    CommissionFilters(since=TODAY - timedelta(days=100), until=TODAY - timedelta(days=1)),
)


def _sale(sales: list[str], index: int) -> Sale:
    return db.session.get(Sale, sales[index % len(sales)])


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
def test_rollups_equal_a_recount_after_every_step_of_random_histories(steps):
    reset_database()
    *uplines, buyer = make_chain(4)
    admin = make_user(is_admin=True)
    for upline in uplines:
        make_payout_account(upline)
    sales: list[str] = []
    later = datetime.now(UTC) + timedelta(days=1)
    for step in steps:
        kind = step[0]
        take_sale_step(step, buyer, sales)
        if kind == "payout":
            with contextlib.suppress(PayoutRefused):
                payout = request_payout(uplines[step[1]], None, "stripe", now=later)
                start_processing(payout)
                complete_payout(payout, f"tr_{payout.id}", now=later)
        elif kind == "cancel" and sales:
            sale_id = _sale(sales, step[1]).id
            commission_id = db.session.scalar(
                select(Commission.id).where(
                    Commission.sale_id == sale_id, Commission.tier == step[2]
                )
            )
            if commission_id:
                with contextlib.suppress(CancelRefused):
                    cancel_commission(commission_id, admin, "test order")
        elif kind == "flag":  # a sign-up flag: the buyer's new commissions are held
            reason = "same_ip" if step[1] else "email_alias"
            flags = select(ReferralFlag.reason, ReferralFlag.status)
            found = dict(db.session.execute(flags).all())
            if reason not in found and "open" not in found.values():
                db.session.add(
                    ReferralFlag(
                        referred_user_id=buyer.id, referrer_id=uplines[-1].id, reason=reason
                    )
                )
        elif kind == "decide" and (
            flag := db.session.scalar(select(ReferralFlag).where(ReferralFlag.status == "open"))
        ):
            resolve_flag(flag, step[1], admin)
        elif kind == "earlier" and sales:
            db.session.execute(
                text(
                    "UPDATE commissions SET created_at = created_at - make_interval(days => :days) "
                    "WHERE sale_id = :sale_id"
                ),
                {"days": step[2], "sale_id": _sale(sales, step[1]).id},
            )
        db.session.commit()
        assert_rollups_exact(uplines[-1:], FEW)
    assert_rollups_exact(uplines)
