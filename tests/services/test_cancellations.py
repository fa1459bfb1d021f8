"""An admin cancelling a commission: through the ledger exactly as a full refund, once, and
left alone by later refunds and payout reversals."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, Commission, LedgerEntry, ReferralFlag, Sale, User
from app.services.money.cancellations import CancelRefused, cancel_commission
from app.services.money.commissions import adjust_for_refunds
from app.services.money.ledger import balances
from app.services.money.sales import record_refund
from app.services.payouts.payouts import payable_amount
from app.services.payouts.reversals import reverse_payout
from tests.factories import make_chain, make_payout, make_sale, make_user

pytestmark = pytest.mark.usefixtures("ledger_holds")


def _commission(sale_id: str) -> Commission:
    db.session.rollback()
    return db.session.scalars(select(Commission).where(Commission.sale_id == sale_id)).one()


def _entries(commission_id: str) -> list[tuple[str, Decimal]]:
    rows = db.session.execute(
        select(LedgerEntry.kind, LedgerEntry.amount)
        .where(LedgerEntry.commission_id == commission_id)
        .order_by(LedgerEntry.id)
    )
    return [tuple(row) for row in rows]


def _cancel(commission_id: str, admin: User, reason: str = "test order") -> Commission:
    commission = cancel_commission(commission_id, admin, reason)
    db.session.commit()
    return commission


def test_a_pending_commission_is_reversed_and_cancelled_once():
    root, buyer = make_chain(2)
    admin = make_user(is_admin=True)
    commission = _commission(make_sale(buyer, "1000.00", days_ago=40))
    _cancel(commission.id, admin, "  test order  ")
    commission = _commission(commission.sale_id)
    assert (commission.status, commission.amount, commission.cancel_reason) == (
        "cancelled",
        Decimal("0.00"),
        "test order",
    )
    assert _entries(commission.id) == [
        ("accrual", Decimal("100.00")),
        ("reversal", Decimal("-100.00")),
    ]
    assert balances(root.id).available == 0
    with pytest.raises(CancelRefused, match="cancelled already"):
        cancel_commission(commission.id, admin, "again")
    db.session.rollback()
    audited = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "commission.cancelled")
    ).all()
    assert [(a.subject_id, a.details["status"], a.details["amount"]) for a in audited] == [
        (commission.id, "pending", "100.00")
    ]


def test_a_held_commission_is_cancelled_out_of_held_money():
    root, buyer = make_chain(2)
    db.session.add(ReferralFlag(referred_user_id=buyer.id, referrer_id=root.id, reason="same_ip"))
    db.session.commit()
    commission = _commission(make_sale(buyer, "1000.00", days_ago=40))
    assert commission.status == "held" and balances(root.id).held == Decimal("100.00")
    _cancel(commission.id, make_user(is_admin=True))
    assert _commission(commission.sale_id).status == "cancelled"
    assert balances(root.id).held == 0


def test_cancel_after_payout_claws_back_and_nets_from_the_next_payout():
    root, buyer = make_chain(2)
    admin = make_user(is_admin=True)
    sale_id = make_sale(buyer, "1000.00", days_ago=40)
    make_payout(root, "100.00", complete=True)
    assert _commission(sale_id).status == "paid"
    _cancel(_commission(sale_id).id, admin)
    commission = _commission(sale_id)
    assert (commission.status, commission.clawed_back) == ("paid", Decimal("100.00"))
    assert _entries(commission.id)[-1] == ("clawback", Decimal("-100.00"))
    assert balances(root.id).owed == Decimal("100.00")
    make_sale(buyer, "1500.00", days_ago=40)  # earns 150.00, of which 100.00 is owed
    assert payable_amount(root.id) == Decimal("50.00")
    # A later refund of the cancelled commission's sale takes nothing more and gives nothing
    # back.
    sale = db.session.get(Sale, sale_id)
    record_refund(sale.provider, sale.external_id, Decimal("400.00"))
    adjust_for_refunds(sale_id)
    db.session.commit()
    assert _commission(sale_id).clawed_back == Decimal("100.00")
    assert len(_entries(commission.id)) == 2


def test_a_reversed_payout_leaves_a_cancelled_commission_cancelled():
    root, buyer = make_chain(2)
    sale_id = make_sale(buyer, "1000.00", days_ago=40)
    payout = make_payout(root, "100.00", complete=True)
    _cancel(_commission(sale_id).id, make_user(is_admin=True))
    assert reverse_payout(db.session.get(type(payout), payout.id), "tr_back") is True
    db.session.commit()
    commission = _commission(sale_id)
    assert (commission.status, commission.amount, commission.payout_id) == (
        "cancelled",
        Decimal("0.00"),
        None,
    )
    assert balances(root.id).available == 0


@pytest.mark.parametrize(("reason", "message"), [("", "Give a reason"), ("x" * 501, "500")])
def test_a_cancel_without_a_proper_reason_changes_nothing(reason, message):
    _, buyer = make_chain(2)
    commission = _commission(make_sale(buyer, "1000.00", days_ago=40))
    with pytest.raises(CancelRefused, match=message):
        cancel_commission(commission.id, make_user(is_admin=True), reason)
    db.session.rollback()
    assert _commission(commission.sale_id).status == "pending"
    assert len(_entries(commission.id)) == 1


def test_concurrent_cancels_reverse_once(app):
    _, buyer = make_chain(2)
    commission = _commission(make_sale(buyer, "1000.00", days_ago=40))
    admin_ids = [make_user(is_admin=True).id for _ in range(4)]
    start = threading.Barrier(len(admin_ids))

    def one(admin_id: str) -> str:
        with app.app_context():
            admin = db.session.get(User, admin_id)
            db.session.commit()
            start.wait()
            try:
                cancel_commission(commission.id, admin, "duplicate order")
                db.session.commit()
                return "cancelled"
            except CancelRefused:
                db.session.rollback()
                return "refused"
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=len(admin_ids)) as pool:
        answers = sorted(pool.map(one, admin_ids))
    assert answers == ["cancelled"] + ["refused"] * 3
    assert [kind for kind, _ in _entries(commission.id)] == ["accrual", "reversal"]
