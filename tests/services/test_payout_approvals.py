"""Approval (maker-checker), hold, release, reject, retry, Lemon Squeezy settlement and its CSV,
and the treasury, against the ledger."""

from __future__ import annotations

import csv
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.jobs.queueing import get_queue
from app.models import AuditEntry, Commission, Payout, PayoutApproval, User
from app.services.money.ledger import balances
from app.services.payouts import approvals, retries, settlement, treasury
from app.services.payouts.approvals import ActionRefused
from app.services.payouts.payout_accounts import save_payee_details
from app.services.payouts.payouts import DuplicateReference, fail_payout, start_processing
from tests.factories import make_chain, make_payout, make_sale, make_user, set_program

pytestmark = pytest.mark.usefixtures("ledger_holds")

SEND = "app.jobs.payouts.send_payout_job"


def _earner(amount: str = "2000.00") -> User:
    """An affiliate with 10 % of ``amount`` available (a sale 40 days ago)."""
    root, buyer = make_chain(2)
    make_sale(buyer, amount, days_ago=40)
    return root


def _admins(n: int) -> list[User]:
    return [make_user(is_admin=True) for _ in range(n)]


def _sends() -> list[str]:
    return [job.args[0] for job in get_queue().jobs if job.func_name == SEND]


def _audited(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _refused(call, *args, match: str) -> None:
    with pytest.raises(ActionRefused, match=match):
        call(*args)
    db.session.rollback()


def test_without_the_setting_a_payout_is_pending_and_needs_no_approval():
    payout = make_payout(_earner(), "100.00")
    assert (payout.status, payout.approvals_required) == ("pending", 0)


def test_with_the_setting_a_payout_waits_for_one_approval_or_two_above_the_threshold():
    set_program(payouts_need_approval=True, dual_approval_above=Decimal("100.00"))
    small = make_payout(_earner(), "100.00")
    large = make_payout(_earner(), "100.01")
    assert (small.status, small.approvals_required) == ("awaiting_approval", 1)
    assert (large.status, large.approvals_required) == ("awaiting_approval", 2)
    assert _audited("payout.requested")[0].details["status"] == "awaiting_approval"


def test_one_approval_makes_a_stripe_payout_pending_and_asks_for_one_send_after_commit():
    set_program(payouts_need_approval=True)
    payout = make_payout(_earner(), "100.00")
    (admin,) = _admins(1)
    assert approvals.approve(payout, admin) is True
    assert _sends() == []  # not before the commit
    db.session.commit()
    assert payout.status == "pending" and _sends() == [payout.id]
    assert _audited("payout.approved")[0].details == {
        "approvals": 1,
        "required": 1,
        "status": "pending",
    }


def test_an_approved_lemon_squeezy_payout_waits_for_settlement_without_a_send():
    set_program(payouts_need_approval=True)
    payout = make_payout(_earner(), "100.00", "lemon_squeezy")
    approvals.approve(payout, _admins(1)[0])
    db.session.commit()
    assert payout.status == "pending" and _sends() == []


def test_maker_checker_needs_two_different_admins():
    set_program(payouts_need_approval=True, dual_approval_above=Decimal("50.00"))
    payout = make_payout(_earner(), "100.00")
    first, second = _admins(2)
    assert approvals.approve(payout, first) is False
    db.session.commit()
    assert payout.status == "awaiting_approval"
    _refused(approvals.approve, payout, first, match="approved this payout already")
    assert approvals.approve(payout, second) is True
    db.session.commit()
    assert payout.status == "pending" and _sends() == [payout.id]
    assert db.session.scalar(select(func.count()).select_from(PayoutApproval)) == 2


def test_an_admin_cannot_approve_a_payout_they_requested_or_that_pays_them():
    set_program(payouts_need_approval=True)
    admin = make_user(is_admin=True)
    root, buyer = make_chain(2)
    db.session.execute(update(User).where(User.id == root.id).values(is_admin=True))
    make_sale(buyer, "2000.00", days_ago=40)
    own = make_payout(root, "100.00")
    _refused(approvals.approve, own, root, match="This payout pays you")
    # A retry is requested by the admin who made it: they may not approve it either.
    failed = make_payout(_earner(), "100.00")
    approvals.approve(failed, admin)
    fail_payout(failed, "card declined")
    db.session.commit()
    retry = retries.retry_payout(failed, admin)
    db.session.commit()
    assert (retry.requested_by, retry.status) == (admin.id, "awaiting_approval")
    _refused(approvals.approve, retry, admin, match="You requested this payout")
    assert db.session.scalar(select(func.count()).select_from(PayoutApproval)) == 1


def test_an_approval_of_a_payout_not_awaiting_it_is_refused():
    payout = make_payout(_earner(), "100.00")
    _refused(approvals.approve, payout, _admins(1)[0], match="pending now, not awaiting")


def _race(app, payout_id: str, admin_ids: list[str]) -> list[str]:
    """Each admin approves at once, in a thread of its own (its own session)."""
    start = threading.Barrier(len(admin_ids))

    def one(admin_id: str) -> str:
        with app.app_context():
            payout = db.session.get(Payout, payout_id)
            admin = db.session.get(User, admin_id)
            db.session.commit()
            start.wait()
            try:
                approvals.approve(payout, admin)
                db.session.commit()
                return "approved"
            except ActionRefused:
                db.session.rollback()
                return "refused"
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=len(admin_ids)) as pool:
        return sorted(pool.map(one, admin_ids))


def test_concurrent_approvals_move_the_payout_once_and_send_it_once(app):
    set_program(payouts_need_approval=True)
    payout = make_payout(_earner(), "100.00")
    answers = _race(app, payout.id, [a.id for a in _admins(6)])
    assert answers == ["approved"] + ["refused"] * 5
    db.session.refresh(payout)
    assert payout.status == "pending" and _sends() == [payout.id]
    assert len(_audited("payout.approved")) == 1


def test_two_admins_approving_a_dual_payout_at_once_both_count_and_it_is_sent_once(app):
    set_program(payouts_need_approval=True, dual_approval_above=Decimal("0"))
    payout = make_payout(_earner(), "100.00")
    assert _race(app, payout.id, [a.id for a in _admins(2)]) == ["approved", "approved"]
    db.session.refresh(payout)
    assert payout.status == "pending" and _sends() == [payout.id]
    assert sorted(e.details["approvals"] for e in _audited("payout.approved")) == [1, 2]


def test_hold_and_release_return_to_where_the_approvals_say():
    set_program(payouts_need_approval=True, dual_approval_above=Decimal("0"))
    payout = make_payout(_earner(), "100.00")
    first, second = _admins(2)
    approvals.approve(payout, first)
    db.session.commit()
    _refused(approvals.hold, payout, first, "  ", match="Give a reason")
    approvals.hold(payout, first, "  checking   the account ")
    db.session.commit()
    assert (payout.status, payout.waiting_reason) == ("on_hold", "On hold: checking the account")
    _refused(approvals.approve, payout, second, match="on hold now")
    assert approvals.release(payout, second) == "awaiting_approval"
    db.session.commit()
    assert payout.waiting_reason is None and _sends() == []
    approvals.approve(payout, second)
    approvals.hold(payout, second, "bank holiday")
    db.session.commit()
    assert approvals.release(payout, first) == "pending"
    db.session.commit()
    assert _sends() == [payout.id, payout.id]  # approval, then release after hold
    _refused(approvals.release, payout, first, match="pending now, not on hold")
    assert [len(_audited(a)) for a in ("payout.held", "payout.released")] == [2, 2]


def test_reject_fails_the_payout_and_returns_its_reserve():
    set_program(payouts_need_approval=True)
    user = _earner()
    payout = make_payout(user, "150.00")
    admin = _admins(1)[0]
    assert balances(user.id).available == Decimal("50.00")
    _refused(approvals.reject, payout, admin, "", match="Give a reason")
    approvals.reject(payout, admin, "suspicious")
    db.session.commit()
    assert (payout.status, payout.failure_reason) == ("failed", "suspicious")
    assert balances(user.id).available == Decimal("200.00")
    assert _audited("payout.failed")[0].actor_id == admin.id
    _refused(approvals.reject, payout, admin, "again", match="failed now")


def test_a_payout_a_worker_took_cannot_be_rejected_or_held():
    payout = make_payout(_earner(), "100.00")
    start_processing(payout)
    db.session.commit()
    admin = _admins(1)[0]
    _refused(approvals.reject, payout, admin, "stop", match="processing now")
    _refused(approvals.hold, payout, admin, "stop", match="processing now")
    assert db.session.get(Payout, payout.id).status == "processing"


def test_marking_a_lemon_squeezy_payout_completed_pays_its_commissions():
    user = _earner()
    payout = make_payout(user, "200.00", "lemon_squeezy")
    admin = _admins(1)[0]
    paid = settlement.mark_completed(payout, " LS-2026-001 ", admin)
    db.session.commit()
    assert (payout.status, payout.transaction_reference, payout.attempts) == (
        "completed",
        "LS-2026-001",
        1,
    )
    assert paid and all(db.session.get(Commission, c).status == "paid" for c in paid)
    assert _audited("payout.completed")[0].actor_id == admin.id


def test_a_duplicate_reference_is_refused_and_nothing_changes():
    admin = _admins(1)[0]
    first = make_payout(_earner(), "100.00", "lemon_squeezy")
    second = make_payout(_earner(), "100.00", "lemon_squeezy")
    settlement.mark_completed(first, "REF-1", admin)
    db.session.commit()
    with pytest.raises(DuplicateReference):
        settlement.mark_completed(second, "REF-1", admin)
    db.session.rollback()
    assert (second.status, second.attempts, second.transaction_reference) == ("pending", 0, None)
    _refused(settlement.mark_completed, second, "", admin, match="Enter the transaction reference")


def test_only_pending_lemon_squeezy_payouts_are_settled_by_hand():
    admin = _admins(1)[0]
    stripe_payout = make_payout(_earner(), "100.00")
    _refused(settlement.mark_completed, stripe_payout, "R", admin, match="Only Lemon Squeezy")
    set_program(payouts_need_approval=True)
    waiting = make_payout(_earner(), "100.00", "lemon_squeezy")
    _refused(settlement.mark_completed, waiting, "R", admin, match="awaiting approval, not")


def test_the_settlement_csv_holds_the_payee_details_formula_safe_and_is_audited():
    admin = _admins(1)[0]
    user = _earner()
    save_payee_details(
        user.id,
        {"name": "=HYPERLINK(1)", "email": "j@example.com", "iban": "DE89370400440532013000"},
    )
    db.session.commit()
    payout = make_payout(user, "100.00", "lemon_squeezy")
    other = make_payout(_earner(), "60.00", "lemon_squeezy")
    make_payout(_earner(), "70.00")  # Stripe: not in the file
    body = settlement.settlement_csv(admin, "USD")
    db.session.commit()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["payout_id"] for r in rows] == [payout.id, other.id]
    assert rows[0]["payee_name"] == "'=HYPERLINK(1)"
    assert (rows[0]["iban"], rows[0]["amount"], rows[0]["currency"]) == (
        "DE89370400440532013000",
        "100.00",
        "USD",
    )
    assert rows[1]["paypal_email"] == "jane@paypal.example"
    (entry,) = _audited("payout.settlement_exported")
    assert entry.actor_id == admin.id and entry.details == {"payouts": [payout.id, other.id]}
    assert "DE89" not in str(entry.details) and "jane" not in str(entry.details)


def test_a_retry_is_a_new_payout_once_and_only_while_payable():
    user = _earner()
    admin = _admins(1)[0]
    failed = make_payout(user, "150.00")
    fail_payout(failed, "account closed")
    db.session.commit()
    retry = retries.retry_payout(failed, admin)
    db.session.commit()
    assert (retry.amount, retry.payment_method, retry.status) == (
        Decimal("150.00"),
        "stripe",
        "pending",
    )
    assert retry.requested_by == admin.id and failed.status == "failed"
    fail_payout(retry, "account closed again")
    db.session.commit()
    _refused(retries.retry_payout, failed, admin, match="retried already")
    # The balance was spent meanwhile: the retry is refused with the request's reason.
    make_payout(user, "100.00")
    _refused(
        retries.retry_payout, retry, admin, match="Not payable again now: .*payout in progress"
    )
    lemon = make_payout(_earner(), "100.00", "lemon_squeezy")
    _refused(retries.retry_payout, lemon, admin, match="Only a failed Stripe payout")


def test_the_treasury_sums_what_is_owed_and_shows_the_stripe_balance(fake_stripe):
    _earner("1000.00")  # 100.00 available
    user = _earner("3000.00")  # 300.00 available, 120.00 of it requested
    make_payout(user, "120.00", "lemon_squeezy")
    _, buyer = make_chain(2)
    make_sale(buyer, "500.00", days_ago=1)  # 50.00 in the hold period
    fake_stripe.set_balance("usd", available=123_456, pending=789)
    panel = treasury.treasury("USD")
    assert panel.owed.available == Decimal("280.00") and panel.owed.pending == Decimal("50.00")
    assert panel.owed.open_by_method == {"lemon_squeezy": Decimal("120.00")}
    assert panel.owed.total == Decimal("450.00")
    assert (panel.stripe.available, panel.stripe.pending) == (Decimal("1234.56"), Decimal("7.89"))


def test_the_treasury_notes_stripe_unconfigured_or_unreachable(app, fake_stripe):
    app.config["STRIPE_SECRET_KEY"] = ""
    assert treasury.stripe_balance("USD").problem == treasury.STRIPE_OFF
    app.config.update(STRIPE_SECRET_KEY=fake_stripe.api_key, STRIPE_API_BASE="http://127.0.0.1:9")
    problem = treasury.stripe_balance("USD").problem
    assert problem == treasury.STRIPE_DOWN.format(problem="APIConnectionError")


def test_an_admin_decides_nothing_on_a_payout_that_pays_them():
    """Release, reject, settle or retry their own payout: each refused, nothing changed."""
    set_program(payouts_need_approval=True)
    admin_earner = _earner()
    db.session.execute(update(User).where(User.id == admin_earner.id).values(is_admin=True))
    db.session.commit()
    other = _admins(1)[0]
    payout = make_payout(admin_earner, "100.00", "lemon_squeezy")
    approvals.hold(payout, other, "checking")
    db.session.commit()
    for call, args in (
        (approvals.release, ()),
        (approvals.reject, ("paid outside",)),
    ):
        _refused(call, payout, admin_earner, *args, match="pays you")
    approvals.release(payout, other)
    approvals.approve(payout, other)
    db.session.commit()
    _refused(settlement.mark_completed, payout, "LS-1", admin_earner, match="pays you")
    _refused(approvals.reject, payout, admin_earner, "paid outside", match="pays you")
    approvals.reject(payout, other, "no")
    db.session.commit()
    _refused(retries.retry_payout, payout, admin_earner, match="pays you")
    assert balances(admin_earner.id).available == Decimal("200.00")


def test_a_suspended_affiliates_payout_is_not_approved():
    set_program(payouts_need_approval=True)
    user = _earner()
    payout = make_payout(user, "100.00")
    db.session.execute(update(User).where(User.id == user.id).values(is_suspended=True))
    db.session.commit()
    _refused(approvals.approve, payout, _admins(1)[0], match="suspended")
    assert db.session.get(Payout, payout.id).status == "awaiting_approval"
