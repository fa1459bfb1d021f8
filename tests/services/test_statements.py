"""Payout statements (covered commissions, netted clawbacks, the carry) and the pending
balance by the date it becomes available."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import Commission, Payout, ReferralFlag, ReferralProgramSettings, User
from app.services.money.commissions import adjust_for_refunds
from app.services.money.ledger import balances, becoming_available
from app.services.money.sales import record_dispute, record_refund
from app.services.payouts.payouts import fail_payout, start_processing
from app.services.payouts.statements import (
    iter_clawback_lines,
    iter_commission_lines,
    payout_of,
    statement,
)
from tests.factories import make_chain, make_payout, make_sale

pytestmark = pytest.mark.usefixtures("ledger_holds")


def _min_payout(amount: str) -> None:
    db.session.execute(update(ReferralProgramSettings).values(min_payout_amount=Decimal(amount)))
    db.session.commit()


def _refund(sale_id: str, external_id: str, amount: str) -> None:
    record_refund("stripe", external_id, Decimal(amount))
    adjust_for_refunds(sale_id)
    db.session.commit()


def _clawed_back_then_earned() -> tuple[User, User]:
    """Root earned 50.00, was paid it (P1), 20.00 of it was clawed back by a partial refund,
    then earned 100.00 more: 80.00 available."""
    root, buyer = make_chain(2)
    first = make_sale(buyer, "500.00", days_ago=40, provider="stripe", external_id="pi_a")
    make_payout(root, complete=True)
    _refund(first, "pi_a", "200.00")  # 50.00 -> 30.00: 20.00 clawed back
    make_sale(buyer, "1000.00", days_ago=40)
    assert balances(root.id).available == Decimal("80.00")
    return root, buyer


def test_a_statement_lists_its_commissions_and_the_clawbacks_netted_and_reconciles():
    root, _ = _clawed_back_then_earned()
    second = make_payout(root, complete=True)
    assert second.amount == Decimal("80.00")
    s = statement(second)
    assert [(c.amount, c.rate, c.base_amount, c.tier) for c in s.commissions] == [
        (Decimal("100.00"), Decimal("0.100000"), Decimal("1000.00"), 1)
    ]
    assert [c.amount for c in s.clawbacks] == [Decimal("-20.00")]
    assert (s.commission_count, s.commissions_total) == (1, Decimal("100.00"))
    assert (s.clawback_count, s.clawbacks_total) == (1, Decimal("-20.00"))
    assert s.carried == 0
    assert s.commissions_total + s.clawbacks_total + s.carried == second.amount


def test_a_clawback_after_a_payout_was_requested_is_netted_from_the_next_one_only():
    root, _ = _clawed_back_then_earned()
    first = payout_of(root.id, _payout_ids(root)[0])
    s = statement(first)
    assert [c.amount for c in s.commissions] == [Decimal("50.00")]
    assert s.clawbacks == [] and s.carried == 0


def _payout_ids(user: User) -> list[str]:
    """The user's payout ids, oldest first."""
    return list(
        db.session.scalars(
            select(Payout.id).where(Payout.user_id == user.id).order_by(Payout.created_at)
        )
    )


def test_a_failed_payout_nets_nothing_and_the_next_one_reaches_back_over_it():
    root, _ = _clawed_back_then_earned()
    failed = make_payout(root)
    start_processing(failed)
    fail_payout(failed, "account_closed")
    db.session.commit()
    s = statement(failed)
    assert (s.commissions, s.clawbacks, s.carried) == ([], [], None)
    third = make_payout(root, complete=True)
    s = statement(third)
    assert [c.amount for c in s.clawbacks] == [Decimal("-20.00")]
    assert s.commissions_total + s.clawbacks_total == third.amount and s.carried == 0


def test_an_open_payout_shows_its_clawbacks_and_no_commissions_yet():
    root, _ = _clawed_back_then_earned()
    pending = make_payout(root)
    s = statement(pending)
    assert s.commissions == [] and [c.amount for c in s.clawbacks] == [Decimal("-20.00")]
    assert s.carried is None


def test_partial_payouts_carry_to_later_and_from_earlier_payouts():
    root, buyer = make_chain(2)
    for amount, days_ago in (("100.00", 50), ("200.00", 45), ("300.00", 40)):
        make_sale(buyer, amount, days_ago=days_ago)  # 10, 20, 30
    _min_payout("0")
    first = make_payout(root, "35.00", complete=True)
    s = statement(first)
    assert [c.amount for c in s.commissions] == [Decimal("10.00"), Decimal("20.00")]
    assert s.carried == Decimal("5.00")  # paid ahead of the 30.00 commission
    second = make_payout(root, "25.00", complete=True)
    s = statement(second)
    assert [c.amount for c in s.commissions] == [Decimal("30.00")]
    assert s.carried == Decimal("-5.00")  # 5.00 of it came with the first payout
    assert s.commissions_total + s.clawbacks_total + s.carried == second.amount


def test_the_page_shows_a_bounded_number_of_lines_but_totals_cover_all():
    root, buyer = make_chain(2)
    for days_ago in (50, 45, 40):
        make_sale(buyer, "200.00", days_ago=days_ago)
    payout = make_payout(root, complete=True)
    s = statement(payout, lines=2)
    assert len(s.commissions) == 2
    assert (s.commission_count, s.commissions_total) == (3, Decimal("60.00"))
    assert len(list(iter_commission_lines(payout))) == 3


def test_only_the_owner_finds_a_payout():
    root, buyer = make_chain(2)
    make_sale(buyer, "1000.00", days_ago=40)
    payout = make_payout(root)
    assert payout_of(root.id, payout.id) is payout
    assert payout_of(buyer.id, payout.id) is None
    assert payout_of(root.id, "x" * 100) is None  # longer than any id: no query at all


def test_money_returned_by_a_dispute_won_is_listed_with_its_sign():
    root, buyer = make_chain(2)
    sale = make_sale(buyer, "500.00", days_ago=40, provider="stripe", external_id="pi_d")
    make_payout(root, complete=True)  # 50.00
    record_dispute("stripe", "pi_d", Decimal("100.00"))
    adjust_for_refunds(sale)  # 10.00 clawed back while the dispute is open
    record_dispute("stripe", "pi_d", Decimal("0"), is_closed=True)
    adjust_for_refunds(sale)  # won: the 10.00 comes back
    make_sale(buyer, "1000.00", days_ago=40)
    db.session.commit()
    payout = make_payout(root, complete=True)
    clawbacks = list(iter_clawback_lines(payout))
    assert [c.amount for c in clawbacks] == [Decimal("-10.00"), Decimal("10.00")]
    assert clawbacks[0].tier == 1 and clawbacks[0].sale_date is not None
    s = statement(payout)
    assert s.clawbacks_total == 0 and s.carried == 0 and payout.amount == Decimal("100.00")


# --- becoming available ------------------------------------------------------------------------


def _expected_days(user: User) -> dict:
    days: dict = defaultdict(Decimal)
    now = datetime.now(UTC)
    for commission in db.session.scalars(
        select(Commission).where(Commission.user_id == user.id, Commission.status == "pending")
    ):
        if commission.payable_at > now and commission.amount:
            days[commission.payable_at.astimezone(UTC).date()] += commission.amount
    return dict(sorted(days.items()))


def test_pending_money_is_listed_by_the_date_it_becomes_available():
    root, buyer = make_chain(2)
    make_sale(buyer, "100.00", days_ago=1)
    make_sale(buyer, "50.00", days_ago=1)
    make_sale(buyer, "300.00", days_ago=10)
    make_sale(buyer, "1000.00", days_ago=40)  # available already
    refunded = make_sale(buyer, "700.00", days_ago=5, provider="stripe", external_id="pi_r")
    _refund(refunded, "pi_r", "700.00")  # nothing left on its day: not listed
    flagged = make_chain(2)[0]
    schedule = becoming_available(root.id)
    expected = _expected_days(root)
    assert [amount for _, amount in schedule.dates] == list(expected.values())
    assert [day for day, _ in schedule.dates] == list(expected)
    assert sum(expected.values()) == Decimal("45.00") == balances(root.id).pending
    assert (schedule.later, schedule.later_dates) == (0, 0)
    assert becoming_available(flagged.id).dates == []


def test_held_money_is_not_pending_and_not_listed():
    root, buyer = make_chain(2)
    db.session.add(ReferralFlag(referred_user_id=buyer.id, referrer_id=root.id, reason="same_ip"))
    db.session.commit()
    make_sale(buyer, "100.00", days_ago=1)
    assert balances(root.id).held == Decimal("10.00")
    assert becoming_available(root.id).dates == []


def test_after_the_first_dates_the_rest_is_one_total():
    root, buyer = make_chain(2)
    for days_ago in range(1, 13):  # 12 different days, 1.00 .. 12.00
        make_sale(buyer, f"{days_ago * 10}.00", days_ago=days_ago)
    schedule = becoming_available(root.id, limit=10)
    expected = list(_expected_days(root).items())
    assert len(expected) == 12
    assert schedule.dates == expected[:10]
    assert schedule.later_dates == 2
    assert schedule.later == sum(amount for _, amount in expected[10:])
    assert sum(a for _, a in schedule.dates) + schedule.later == balances(root.id).pending


def test_dates_are_taken_at_the_given_moment():
    root, buyer = make_chain(2)
    make_sale(buyer, "100.00", days_ago=1)
    later = datetime.now(UTC) + timedelta(days=60)
    assert becoming_available(root.id, later).dates == []
