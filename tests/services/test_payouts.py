"""Payout requests, the payout state machine, completion and failure, against the ledger."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import (
    AuditEntry,
    Commission,
    LedgerEntry,
    Payout,
    User,
)
from app.models.payouts import PAYOUT_TRANSITIONS
from app.models.transitions import InvalidTransition
from app.services.money.commissions import adjust_for_refunds
from app.services.money.ledger import balances
from app.services.money.sales import record_dispute, record_refund
from app.services.payouts.payouts import (
    DuplicateReference,
    PayoutRefused,
    complete_payout,
    fail_payout,
    request_payout,
    start_processing,
)
from tests.factories import (
    make_chain,
    make_payout,
    make_payout_account,
    make_sale,
    make_user,
    set_program,
)
from tests.ledger_checks import assert_ledger_invariant

pytestmark = pytest.mark.usefixtures("ledger_holds")


def _earner(*sales: tuple[str, int]) -> User:
    """An affiliate who earned 10 % of each (amount, days ago) sale of one buyer."""
    root, buyer = make_chain(2)
    for amount, days_ago in sales:
        make_sale(buyer, amount, days_ago=days_ago)
    return root


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _nothing_changed() -> None:
    assert _count(Payout) == 0
    kinds = db.session.scalars(select(LedgerEntry.kind).distinct())
    assert set(kinds) <= {"accrual", "reversal"}
    assert db.session.scalar(select(func.count()).where(AuditEntry.action.like("payout.%"))) == 0


def _refused(user: User, amount: str | None, method: str = "stripe") -> PayoutRefused:
    with pytest.raises(PayoutRefused) as refused:
        request_payout(user, Decimal(amount) if amount is not None else None, method)
    db.session.rollback()
    _nothing_changed()
    return refused.value


# --- refusals: a clear message, nothing changed ------------------------------------------


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "above zero"),
        ("-60.00", "above zero"),
        ("NaN", "Enter an amount"),
        ("sNaN", "Enter an amount"),
        ("Infinity", "Enter an amount"),
        ("50.001", "at most 2 decimals"),
        ("1e30", "at most 60.00 USD"),
        ("1E+999999999", "at most 60.00 USD"),
        ("60.01", "at most 60.00 USD"),
        ("49.99", "minimum payout is 50.00 USD"),
    ],
)
def test_a_bad_amount_is_refused_with_a_message_and_changes_nothing(amount, message):
    user = _earner(("600.00", 40))
    make_payout_account(user)
    refused = _refused(user, amount)
    assert message in str(refused) and refused.field == "amount"


def test_less_available_than_the_minimum_is_refused():
    user = _earner(("400.00", 40), ("400.00", 1))  # 40 available, 40 in the hold period
    make_payout_account(user)
    assert "minimum payout is 50.00 USD; 40.00 USD is available" in str(_refused(user, None))


def test_nothing_available_is_refused_even_without_a_minimum():
    set_program(min_payout_amount=0)
    user = make_user()
    make_payout_account(user)
    assert "Nothing is available" in str(_refused(user, None))


def test_clawbacks_owed_are_netted_before_a_request():
    root, buyer = make_chain(2)
    first = make_sale(buyer, "500.00", days_ago=40, provider="stripe", external_id="pi_cb")
    make_payout(root, complete=True)  # 50.00
    record_refund("stripe", "pi_cb", Decimal("500.00"))
    adjust_for_refunds(first)
    make_sale(buyer, "1000.00", days_ago=40)
    db.session.commit()
    assert balances(root.id).available == Decimal("50.00")  # 100 earned - 50 owed
    assert "at most 50.00 USD" in str(_refused_after_first(root, "50.01"))


def _refused_after_first(user: User, amount: str) -> PayoutRefused:
    payouts = _count(Payout)
    with pytest.raises(PayoutRefused) as refused:
        request_payout(user, Decimal(amount), "stripe")
    db.session.rollback()
    assert _count(Payout) == payouts
    return refused.value


def test_commissions_under_an_open_dispute_are_not_available_for_a_request():
    root, buyer = make_chain(2)
    disputed = make_sale(buyer, "600.00", days_ago=40, provider="stripe", external_id="pi_x")
    make_sale(buyer, "500.00", days_ago=40)
    record_dispute("stripe", "pi_x", Decimal("300.00"))
    adjust_for_refunds(disputed)
    db.session.commit()
    make_payout_account(root)
    assert balances(root.id).available == Decimal("80.00")
    assert "at most 50.00 USD" in str(_refused(root, "50.01"))


@pytest.mark.parametrize("method", ["stripe", "lemon_squeezy"])
def test_a_missing_payout_account_is_refused(method):
    user = _earner(("600.00", 40))
    refused = _refused(user, None, method)
    assert "payout account is not set up yet" in str(refused) and refused.field == "method"


def test_an_account_stripe_cannot_pay_is_refused():
    user = _earner(("600.00", 40))
    make_payout_account(user, ready=False)
    assert "Stripe payout account is not set up yet" in str(_refused(user, None))


def test_an_unknown_method_is_refused():
    user = _earner(("600.00", 40))
    make_payout_account(user)
    assert "Choose how to be paid" in str(_refused(user, None, "bitcoin"))


def test_a_suspended_affiliate_is_refused():
    user = _earner(("600.00", 40))
    make_payout_account(user)
    user.is_suspended = True
    db.session.commit()
    assert "suspended" in str(_refused(user, None))


def test_another_payout_not_final_is_refused_whatever_its_status():
    user = _earner(("600.00", 40), ("600.00", 40))
    payout = make_payout(user, "50.00")
    for status in ("awaiting_approval", "on_hold", "pending", "processing"):
        db.session.execute(update(Payout).values(status=status))
        db.session.commit()
        assert "already have a payout in progress" in str(_refused_after_first(user, "50.00"))
    db.session.execute(update(Payout).values(status="pending"))
    db.session.commit()
    fail_payout(payout, "account closed")
    db.session.commit()
    assert make_payout(user, "50.00").status == "pending"  # a final one does not block


# --- success -------------------------------------------------------------------------------


def test_a_request_reserves_its_amount_and_is_audited():
    user = _earner(("600.00", 40), ("300.00", 1))
    make_payout_account(user, "lemon_squeezy")
    payout = request_payout(user, Decimal("55.500"), "lemon_squeezy")  # exact: not rounded
    db.session.commit()
    assert (payout.status, payout.amount, payout.requested_by) == (
        "pending",
        Decimal("55.5"),
        user.id,
    )
    assert payout.payout_account_id is not None and payout.attempts == 0
    assert balances(user.id).available == Decimal("4.50")
    assert balances(user.id).paid == Decimal("55.50")
    entry = db.session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "payout")).one()
    assert (entry.amount, entry.payout_id) == (Decimal("-55.5"), payout.id)
    audit = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "payout.requested")
    ).one()
    assert audit.subject_id == payout.id and audit.details == {
        "amount": "55.500",
        "method": "lemon_squeezy",
        "status": "pending",
    }
    # Commissions are paid only when the money is.
    assert set(db.session.scalars(select(Commission.status))) == {"pending"}


def test_no_amount_requests_all_that_is_available():
    user = _earner(("600.00", 40), ("300.00", 1))
    assert make_payout(user).amount == Decimal("60.00")
    assert balances(user.id).available == 0


# --- concurrency: real threads, each its own app context and session -------------------------


def _hammer(app, user_id: str, amounts: list[Decimal | None]) -> list[str]:
    """One request per amount, all released at once; what each answered."""
    start = threading.Barrier(len(amounts))

    def one(amount: Decimal | None) -> str:
        with app.app_context():
            user = db.session.get(User, user_id)
            db.session.commit()  # end the read: the request's transaction starts at the barrier
            start.wait()
            try:
                request_payout(user, amount, "stripe")
                db.session.commit()
                return "created"
            except PayoutRefused:
                db.session.rollback()
                return "refused"
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=len(amounts)) as pool:
        return list(pool.map(one, amounts))


def test_a_hundred_concurrent_requests_reserve_once_and_never_more_than_the_balance(app):
    user = _earner(("2000.00", 40))  # 200.00 available
    make_payout_account(user)
    amounts = [None if n % 3 == 0 else Decimal(50 + n) for n in range(100)]
    # Any other error (the unique index firing, a deadlock) would surface from the pool.
    answers = _hammer(app, user.id, amounts)
    assert answers.count("created") == 1 and answers.count("refused") == 99
    reserved = db.session.scalar(select(func.sum(Payout.amount)).where(Payout.user_id == user.id))
    assert reserved <= Decimal("200.00")
    assert balances(user.id).available == Decimal("200.00") - reserved


def test_rounds_of_concurrent_requests_with_payouts_settled_between_never_overdraw(app):
    root, buyer = make_chain(2)
    make_sale(buyer, "3000.00", days_ago=40)  # 300.00
    make_payout_account(root)
    for round_ in range(4):
        amounts = [Decimal(60 + n) for n in range(100)]
        answers = _hammer(app, root.id, amounts)
        payout = db.session.scalars(select(Payout).where(Payout.status == "pending")).one_or_none()
        assert answers.count("created") == (1 if payout else 0)
        if payout is not None:
            start_processing(payout)
            if round_ % 2:
                fail_payout(payout, "account closed")
            else:
                complete_payout(payout, f"tr_{round_}")
            db.session.commit()
        available = balances(root.id).available
        sent = db.session.scalar(
            select(func.coalesce(func.sum(Payout.amount), 0)).where(Payout.status != "failed")
        )
        assert available >= 0 and sent + available == Decimal("300.00")
        assert_ledger_invariant()
    assert _count(Payout) >= 3


# --- the state machine -----------------------------------------------------------------------


ALL_PAIRS = [
    (a, b) for a in sorted(PAYOUT_TRANSITIONS.statuses) for b in sorted(PAYOUT_TRANSITIONS.statuses)
]


@pytest.mark.parametrize(("old", "new"), ALL_PAIRS)
def test_only_the_transition_table_moves_a_payout(old, new):
    payout = Payout(status=old, amount=Decimal(1), payment_method="stripe")
    if PAYOUT_TRANSITIONS.can(old, new):
        payout.transition_to(new, reason="why")
        assert payout.status == new
        assert (payout.failed_at is not None) == (new == "failed")
        assert (payout.completed_at is not None) == (new == "completed")
    else:
        with pytest.raises(InvalidTransition):
            payout.transition_to(new, reason="why")
        assert payout.status == old


def test_the_table_is_the_one_the_brief_names():
    assert PAYOUT_TRANSITIONS.allowed == {
        "awaiting_approval": {"pending", "on_hold", "failed"},
        "on_hold": {"awaiting_approval", "pending", "failed"},
        "pending": {"processing", "on_hold", "failed"},
        "processing": {"completed", "failed", "pending"},
        "completed": {"reversed"},
        "failed": set(),
        "reversed": set(),
    }


def test_a_failure_needs_a_reason():
    payout = Payout(status="pending", amount=Decimal(1), payment_method="stripe")
    with pytest.raises(ValueError, match="needs a reason"):
        payout.transition_to("failed")
    assert payout.status == "pending"


def test_services_refuse_illegal_moves_and_change_nothing():
    user = _earner(("600.00", 40))
    payout = make_payout(user)
    with pytest.raises(InvalidTransition):
        complete_payout(payout, "tr_early")  # pending: not sent yet
    db.session.rollback()
    start_processing(payout)
    complete_payout(payout, "tr_1")
    db.session.commit()
    with pytest.raises(InvalidTransition):
        fail_payout(payout, "too late")
    db.session.rollback()
    db.session.refresh(payout)
    assert (payout.status, payout.failure_reason) == ("completed", None)
    assert _count(LedgerEntry) == 2  # the accrual and the reserve


def test_the_database_holds_the_payout_rules():
    user = _earner(("600.00", 40))
    other = make_user()
    make_payout_account(other)
    payout = make_payout(user)
    bad = {
        "status = 'failed'": "ck_payouts_failed_has_reason",
        "status = 'completed'": "ck_payouts_completed_has_time",
        "attempts = -1": "ck_payouts_attempts_non_negative",
        "waiting_reason = 'x', status = 'failed', failure_reason = 'x', failed_at = now()": (
            "ck_payouts_waiting_only_when_open"
        ),
        "status = 'sent'": "ck_payouts_status",
        "payout_account_id = (SELECT id FROM payout_accounts WHERE user_id = :other)": (
            "another user or method"
        ),
    }
    for change, error in bad.items():
        with pytest.raises(IntegrityError, match=error):
            db.session.execute(
                text(f"UPDATE payouts SET {change} WHERE id = :id"),
                {"id": payout.id, "other": other.id},
            )
        db.session.rollback()
    # A second open payout of the same user, written behind the app's back.
    with pytest.raises(IntegrityError, match="uq_payouts_one_open_per_user"):
        db.session.add(Payout(user_id=user.id, amount=Decimal(1), payment_method="stripe"))
        db.session.flush()
    db.session.rollback()


def test_a_duplicate_transaction_reference_is_refused_by_the_app_and_the_database():
    first, second = _earner(("600.00", 40)), _earner(("600.00", 40))
    done = make_payout(first, complete=True)
    payout = make_payout(second)
    start_processing(payout)
    db.session.commit()
    with pytest.raises(DuplicateReference):
        complete_payout(payout, done.transaction_reference)
    db.session.rollback()
    db.session.refresh(payout)
    assert payout.status == "processing"
    with pytest.raises(IntegrityError, match="uq_payouts_transaction_reference"):
        payout.transaction_reference = done.transaction_reference
        db.session.flush()
    db.session.rollback()


def test_two_scheduled_payouts_of_one_period_are_refused_by_the_database():
    user = _earner(("600.00", 40))
    payout = make_payout(user, complete=True)
    payout.period = "2026-05"
    db.session.commit()
    with pytest.raises(IntegrityError, match="uq_payouts_user_id_period"):
        db.session.add(
            Payout(user_id=user.id, amount=Decimal(1), payment_method="stripe", period="2026-05")
        )
        db.session.flush()
    db.session.rollback()


# --- completion and failure ------------------------------------------------------------------


def _statuses() -> list[tuple[Decimal, str, str | None]]:
    rows = db.session.execute(
        select(Commission.amount, Commission.status, Commission.payout_id).order_by(
            Commission.payable_at
        )
    )
    return [(amount, status, payout_id) for amount, status, payout_id in rows]


def test_completion_marks_the_oldest_whole_commissions_its_money_paid():
    user = _earner(("100.00", 50), ("200.00", 45), ("300.00", 40))  # 10, 20, 30
    set_program(min_payout_amount=0)
    first = make_payout(user, "35.00", complete=True)
    assert _statuses() == [
        (Decimal("10.00"), "paid", first.id),
        (Decimal("20.00"), "paid", first.id),
        (Decimal("30.00"), "pending", None),  # 5.00 of it paid: marked when the rest is
    ]
    second = make_payout(user, "25.00", complete=True)
    assert _statuses()[2] == (Decimal("30.00"), "paid", second.id)
    audit = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "payout.completed")
    ).all()
    assert [a.details for a in audit] == [
        {"reference": f"tr_{first.id}", "commissions": 2},
        {"reference": f"tr_{second.id}", "commissions": 1},
    ]
    assert first.completed_at is not None and first.attempts == 1


def test_completion_never_marks_commissions_under_an_open_dispute():
    root, buyer = make_chain(2)
    disputed = make_sale(buyer, "600.00", days_ago=50, provider="stripe", external_id="pi_o")
    make_sale(buyer, "500.00", days_ago=40)
    record_dispute("stripe", "pi_o", Decimal("100.00"))
    adjust_for_refunds(disputed)
    db.session.commit()
    payout = make_payout(root, complete=True)
    assert payout.amount == Decimal("50.00")
    assert _statuses() == [
        (Decimal("50.00"), "pending", None),
        (Decimal("50.00"), "paid", payout.id),
    ]


def test_failure_returns_the_reserve_and_marks_nothing():
    user = _earner(("600.00", 40))
    payout = make_payout(user)
    assert balances(user.id).available == 0
    start_processing(payout)
    fail_payout(payout, "account_closed")
    db.session.commit()
    assert (payout.status, payout.failure_reason) == ("failed", "account_closed")
    assert payout.failed_at is not None
    assert balances(user.id).available == Decimal("60.00") and balances(user.id).paid == 0
    assert set(db.session.scalars(select(Commission.status))) == {"pending"}
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "payout.failed")).one()
    assert audit.details == {"reason": "account_closed"}
    with pytest.raises(InvalidTransition):
        fail_payout(payout, "again")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).where(LedgerEntry.kind == "payout_failure")) == 1
