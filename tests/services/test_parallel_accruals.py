"""Drains run in parallel: batches of the same uplines accrue at once without deadlocks and
keep every running total exact; a flag decision still waits for the batches in flight."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

from sqlalchemy import func, select, text

from app.extensions import db
from app.models import Commission, ReferralFlag, WebhookEvent
from app.services.money.commissions import join_accruals, settle_sales
from app.services.money.fraud import resolve_flag
from app.services.money.webhooks import claim_events, process_events
from app.services.payouts.payouts import PayoutRefused, request_payout
from tests.factories import make_chain, make_payout_account, make_sale, make_user
from tests.ledger_checks import assert_ledger_invariant
from tests.signing import stripe_checkout, stripe_event, stripe_headers


def _post_sales(client, buyers, per_buyer: int) -> None:
    for n in range(per_buyer):
        for buyer in buyers:
            body = stripe_event(
                "checkout.session.completed",
                stripe_checkout(buyer.id, 1000 + n, f"pi_{buyer.id}_{n}"),
            )
            response = client.post("/webhooks/stripe", data=body, headers=stripe_headers(body))
            assert response.status_code == 200


def test_parallel_drains_of_one_network_accrue_everything_once_and_exactly(app, client):
    """Four drains at once, small batches, every sale earning the same three uplines (the
    hottest rows there are), with payout requests of those uplines in between."""
    root, hub, leader = make_chain(3)
    buyers = [make_user(referrer=leader) for _ in range(12)]
    for upline in (root, hub, leader):
        make_payout_account(upline)
    db.session.commit()
    _post_sales(client, buyers, per_buyer=10)
    errors: list[str] = []
    start = threading.Barrier(5)

    def drain() -> None:
        with app.app_context():
            start.wait(10)
            try:
                while event_pks := claim_events(7):
                    process_events(event_pks)
                    db.session.commit()
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                db.session.rollback()
            finally:
                db.session.remove()

    def request_payouts() -> None:
        with app.app_context():
            start.wait(10)
            try:
                for _ in range(10):
                    for user_id in (root.id, hub.id, leader.id):
                        try:
                            request_payout(db.session.get(type(root), user_id), None, "stripe")
                            db.session.commit()
                        except PayoutRefused:
                            db.session.rollback()
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                db.session.rollback()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=drain) for _ in range(4)]
    threads.append(threading.Thread(target=request_payouts))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    unprocessed = select(func.count()).where(WebhookEvent.processed_at.is_(None))
    assert db.session.scalar(unprocessed) == 0
    assert db.session.scalar(select(func.count()).select_from(Commission)) == 3 * 120
    assert_ledger_invariant()  # running totals and branch earnings included


def test_two_batches_hold_the_accruals_lock_at_once(app):
    """The accruals lock no longer serializes batches: a second one takes it while the
    first holds it."""
    first_holds, second_took = threading.Event(), threading.Event()
    while_first_held: list[bool] = []

    def batch(signal_first: bool) -> None:
        with app.app_context():
            try:
                if not signal_first:
                    first_holds.wait(5)
                join_accruals()
                if signal_first:
                    first_holds.set()
                    while_first_held.append(second_took.wait(5))
                else:
                    second_took.set()
            finally:
                db.session.rollback()
                db.session.remove()

    threads = [threading.Thread(target=batch, args=(flag,)) for flag in (True, False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert while_first_held == [True]


def test_a_flag_decision_waits_for_the_batch_in_flight(app):
    """A batch accruing a flagged buyer's sale holds its commissions; the admin's decision
    must see them, so it waits until the batch commits (and then releases them)."""
    admin = make_user(is_admin=True)
    root, buyer = make_chain(2)
    flag = ReferralFlag(referred_user_id=buyer.id, referrer_id=root.id, reason="same_ip")
    db.session.add(flag)
    db.session.commit()
    flag_id = flag.id
    batch_accruing, decided = threading.Event(), threading.Event()
    errors: list[str] = []

    def batch() -> None:
        with app.app_context():
            try:
                sale_id = make_sale(buyer, "100.00", accrue=False)
                join_accruals()  # a batch: the sale is settled under the shared lock
                settle_sales([sale_id])  # held: the flag is open
                batch_accruing.set()
                time.sleep(0.5)
                assert not decided.is_set(), "the decision did not wait for the batch"
                db.session.commit()
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                db.session.rollback()
            finally:
                db.session.remove()

    def decide() -> None:
        with app.app_context():
            try:
                batch_accruing.wait(5)
                resolve_flag(db.session.get(ReferralFlag, flag_id), "cleared", admin)
                db.session.commit()
                decided.set()
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                db.session.rollback()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=batch), threading.Thread(target=decide)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert errors == []
    statuses = db.session.scalars(select(Commission.status)).all()
    assert statuses == ["pending"]  # held by the batch, released by the decision after it
    assert db.session.scalar(text("SELECT sum(amount) FROM ledger_entries")) == Decimal("10.00")
    assert_ledger_invariant()
