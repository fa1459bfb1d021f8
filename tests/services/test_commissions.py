"""Accrual rules, refunds and clawbacks, each against the ledger."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select, text, update

from app.extensions import db
from app.models import (
    Commission,
    MLMTier,
    Referral,
    ReferralFlag,
    Sale,
    User,
)
from app.services.money.commissions import accrue_sales, adjust_for_refunds
from app.services.money.fraud import FlagAlreadyResolved, resolve_flag
from app.services.money.ledger import balances
from app.services.money.sales import record_dispute, record_refund
from app.services.network.referrals import backfill_referral_tiers
from tests.factories import make_chain, make_payout, make_sale, make_user, set_program
from tests.ledger_checks import assert_ledger_invariant


def _earned(user: User) -> Decimal:
    return db.session.scalar(
        select(func.coalesce(func.sum(Commission.amount), 0)).where(
            Commission.user_id == user.id, Commission.status != "cancelled"
        )
    )


def _by_tier(sale_id: str) -> dict[int, Decimal]:
    rows = db.session.execute(
        select(Commission.tier, Commission.amount).where(Commission.sale_id == sale_id)
    )
    return {tier: amount for tier, amount in rows}


def _refund(sale_id: str, refunded: str) -> None:
    sale = db.session.get(Sale, sale_id)
    record_refund(sale.provider, sale.external_id, Decimal(refunded))
    adjust_for_refunds(sale_id)
    db.session.commit()


def test_mlm_pays_each_tier_its_rate_and_completes_the_referrals():
    a, b, c, buyer = make_chain(4)
    sale_id = make_sale(buyer, "200.00")
    assert _by_tier(sale_id) == {1: Decimal("20.00"), 2: Decimal("10.00"), 3: Decimal("5.00")}
    assert [_earned(u) for u in (c, b, a)] == [Decimal("20"), Decimal("10"), Decimal("5")]
    statuses = db.session.scalars(
        select(Referral.status).where(Referral.referred_user_id == buyer.id)
    )
    assert set(statuses) == {"completed"}
    commission = db.session.scalars(select(Commission).where(Commission.tier == 2)).one()
    assert (commission.rate, commission.base_amount) == (Decimal("0.05"), Decimal("200"))
    assert balances(b.id).pending == Decimal("10.00")
    assert_ledger_invariant()


def test_mlm_off_pays_only_the_direct_referrer_at_the_default_rate():
    set_program(is_mlm_enabled=False, default_commission_rate=Decimal("0.2"))
    _, b, buyer = make_chain(3)
    sale_id = make_sale(buyer, "50.00")
    assert _by_tier(sale_id) == {1: Decimal("10.00")}
    assert _earned(b) == Decimal("10")


def test_a_tier_without_an_active_rate_earns_nothing_except_tier_one():
    db.session.execute(update(MLMTier).where(MLMTier.level.in_((1, 2))).values(is_active=False))
    set_program(default_commission_rate=Decimal("0.15"))
    _, _, _, buyer = make_chain(4)
    sale_id = make_sale(buyer, "100.00")
    assert _by_tier(sale_id) == {1: Decimal("15.00"), 3: Decimal("2.50")}


def test_later_rate_changes_leave_accrued_commissions_alone():
    _, buyer = make_chain(2)
    first = make_sale(buyer, "100.00")
    db.session.execute(update(MLMTier).where(MLMTier.level == 1).values(commission_rate=0.3))
    db.session.commit()
    second = make_sale(buyer, "100.00")
    assert _by_tier(first) == {1: Decimal("10.00")}
    assert _by_tier(second) == {1: Decimal("30.00")}


def test_max_tier_lowered_and_raised_applies_to_new_sales_only():
    *_, buyer = make_chain(5)
    set_program(max_tier_level=2)
    lowered = make_sale(buyer)
    set_program(max_tier_level=4)
    backfill_referral_tiers()  # what raising the max tier enqueues
    db.session.add(MLMTier(level=4, commission_rate=Decimal("0.01")))
    db.session.commit()
    raised = make_sale(buyer)
    accrue_sales([lowered])  # a rerun does not add the tiers the old settings left out
    assert sorted(_by_tier(lowered)) == [1, 2]
    assert sorted(_by_tier(raised)) == [1, 2, 3, 4]


def test_cancelled_referrals_and_suspended_affiliates_earn_nothing():
    _a, b, c, buyer = make_chain(4)
    db.session.execute(
        update(Referral)
        .where(Referral.referred_user_id == buyer.id, Referral.referrer_id == c.id)
        .values(status="cancelled")
    )
    db.session.execute(update(User).where(User.id == b.id).values(is_suspended=True))
    db.session.commit()
    sale_id = make_sale(buyer)
    assert _by_tier(sale_id) == {3: Decimal("2.50")}


def test_a_flagged_referrals_commissions_are_held():
    root, buyer = make_chain(2)
    db.session.add(ReferralFlag(referred_user_id=buyer.id, referrer_id=root.id, reason="same_ip"))
    db.session.commit()
    make_sale(buyer, "100.00", days_ago=60)
    commission = db.session.scalars(select(Commission)).one()
    assert commission.status == "held"
    assert balances(root.id) == balances(root.id).__class__(held=Decimal("10.00"))
    assert_ledger_invariant()


def test_unattributed_and_foreign_currency_sales_accrue_nothing():
    _, buyer = make_chain(2)
    make_sale(None, "100.00")
    make_sale(buyer, "100.00", currency="EUR")
    assert db.session.scalar(select(func.count()).select_from(Commission)) == 0
    assert db.session.scalar(select(func.count()).where(Sale.is_foreign_currency)) == 1


def test_recurring_payments_earn_up_to_the_limit():
    set_program(max_recurring_payments=2)
    _, buyer = make_chain(2)
    sales = [make_sale(buyer, days_ago=10 - n, subscription_id="sub_1") for n in range(3)]
    assert [len(_by_tier(s)) for s in sales] == [1, 1, 0]


def test_amounts_round_half_up_to_the_cent():
    _, buyer = make_chain(2)
    sale_id = make_sale(buyer, "0.05")  # 10 % of 0.05 = 0.005 -> 0.01
    assert _by_tier(sale_id) == {1: Decimal("0.01")}


def test_accrual_twice_and_from_two_workers_at_once_makes_one_set(app):
    _, _, buyer = make_chain(3)
    sale_ids = [make_sale(buyer, accrue=False) for _ in range(20)]

    def accrue() -> int:
        with app.app_context():
            created = accrue_sales(sale_ids)
            db.session.commit()
            return created

    with ThreadPoolExecutor(max_workers=4) as pool:
        created = list(pool.map(lambda _: accrue(), range(4)))
    assert sum(created) == 40
    assert accrue_sales(sale_ids) == 0
    assert db.session.scalar(select(func.count()).select_from(Commission)) == 40
    assert db.session.scalar(text("SELECT count(*) FROM ledger_entries")) == 40
    assert_ledger_invariant()


def test_partial_refunds_reduce_by_the_cumulative_amount_once():
    root, buyer = make_chain(2)
    sale_id = make_sale(buyer, "100.00")
    _refund(sale_id, "30.00")
    _refund(sale_id, "30.00")  # the same report again
    _refund(sale_id, "20.00")  # a stale, smaller report
    assert _by_tier(sale_id) == {1: Decimal("7.00")}
    _refund(sale_id, "50.00")
    assert _by_tier(sale_id) == {1: Decimal("5.00")}
    assert balances(root.id).pending == Decimal("5.00")
    assert_ledger_invariant()


def test_a_full_refund_cancels_unpaid_commissions():
    root, buyer = make_chain(2)
    sale_id = make_sale(buyer)
    _refund(sale_id, "100.00")
    assert db.session.scalars(select(Commission.status)).one() == "cancelled"
    assert balances(root.id).pending == 0
    assert_ledger_invariant()


def test_a_refund_before_its_sale_converges_to_the_same_state():
    _root, buyer = make_chain(2)
    record_refund("stripe", "pi_early", Decimal("40.00"))
    db.session.commit()
    sale_id = make_sale(buyer, "100.00", provider="stripe", external_id="pi_early")
    assert _by_tier(sale_id) == {1: Decimal("6.00")}
    assert db.session.get(Sale, sale_id).refunded_amount == Decimal("40")


def test_a_dispute_counts_as_a_refund_until_it_is_won():
    _root, buyer = make_chain(2)
    sale_id = make_sale(buyer, "100.00", provider="stripe", external_id="pi_d")
    record_dispute("stripe", "pi_d", Decimal("100.00"))
    adjust_for_refunds(sale_id)
    db.session.commit()
    assert _by_tier(sale_id) == {1: Decimal("0.00")}
    record_dispute("stripe", "pi_d", Decimal("0"))
    adjust_for_refunds(sale_id)
    db.session.commit()
    assert _by_tier(sale_id) == {1: Decimal("10.00")}
    assert_ledger_invariant()


def test_a_refund_after_payout_is_clawed_back_and_netted_from_the_next_payout():
    root, buyer = make_chain(2)
    first = make_sale(buyer, "500.00", days_ago=40)
    payout = make_payout(root, complete=True)
    assert payout.amount == Decimal("50.00")
    _refund(first, "500.00")
    commission = db.session.scalars(select(Commission).where(Commission.sale_id == first)).one()
    assert (commission.status, commission.clawed_back) == ("paid", Decimal("50.00"))
    assert balances(root.id).owed == Decimal("50.00")
    make_sale(buyer, "800.00", days_ago=35)
    assert balances(root.id).available == Decimal("30.00")  # 80 earned - 50 owed
    assert_ledger_invariant()


def test_sales_of_many_buyers_accrue_in_one_statement():
    root = make_user()
    buyers = [make_user(referrer=root) for _ in range(5)]
    sale_ids = [make_sale(b, accrue=False) for b in buyers]
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert accrue_sales(sale_ids) == 5
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    inserts = [s for s in statements if "INSERT INTO commissions" in s]
    assert len(inserts) == 1


def test_clearing_a_flag_releases_held_commissions_and_confirming_cancels(app):
    admin = make_user(is_admin=True)
    root = make_user()
    buyer = make_user(referrer=root)
    other = make_user(referrer=root)
    for user in (buyer, other):
        db.session.add(
            ReferralFlag(referred_user_id=user.id, referrer_id=root.id, reason="same_ip")
        )
    db.session.commit()
    make_sale(buyer, "100.00", days_ago=40)
    make_sale(other, "200.00", days_ago=40)
    assert balances(root.id).held == Decimal("30.00")
    flags = {f.referred_user_id: f for f in db.session.scalars(select(ReferralFlag))}
    resolve_flag(flags[buyer.id], "cleared", admin)
    resolve_flag(flags[other.id], "confirmed", admin)
    db.session.commit()
    assert balances(root.id) == balances(root.id).__class__(available=Decimal("10.00"))
    statuses = dict(db.session.execute(select(Referral.referred_user_id, Referral.status)).all())
    assert statuses == {buyer.id: "completed", other.id: "cancelled"}
    make_sale(other, "200.00")  # a cancelled referral earns nothing more
    assert balances(root.id).pending == 0
    with pytest.raises(FlagAlreadyResolved):
        resolve_flag(flags[buyer.id], "confirmed", admin)
    assert_ledger_invariant()


def test_a_payout_leaves_commissions_under_dispute_unpaid():
    root, buyer = make_chain(2)
    disputed = make_sale(buyer, "600.00", days_ago=40, provider="stripe", external_id="pi_dd")
    make_sale(buyer, "500.00", days_ago=40)
    record_dispute("stripe", "pi_dd", Decimal("300.00"))
    adjust_for_refunds(disputed)
    payout = make_payout(root, complete=True)
    # 50; the 30 left of the disputed one waits for the dispute, money and status alike
    assert payout.amount == Decimal("50.00")
    statuses = dict(db.session.execute(select(Commission.sale_id, Commission.status)).all())
    assert statuses[disputed] == "pending"
    record_dispute("stripe", "pi_dd", Decimal(0), is_closed=True)  # won
    adjust_for_refunds(disputed)
    db.session.commit()
    assert balances(root.id).available == Decimal("60.00")  # the disputed half comes back
    assert_ledger_invariant()


def test_branch_earnings_count_what_is_left_after_clawbacks():
    root, buyer = make_chain(2)
    sale_id = make_sale(buyer, "500.00", days_ago=40)
    make_payout(root, complete=True)
    _refund(sale_id, "200.00")
    earned = db.session.execute(
        text("SELECT amount FROM branch_earnings WHERE earner_id = :e"), {"e": root.id}
    ).scalar_one()
    assert earned == Decimal("30.00")
