"""Stripe payouts ready to send through the fake Stripe, and what tests check after a send."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal

from app.extensions import db
from app.models import Payout
from app.services.money.ledger import balances
from app.services.payouts.payouts import request_payout
from app.services.payouts.stripe_accounts import open_stripe_account, refresh_stripe_account
from app.services.payouts.transfers import transfer_group
from tests.factories import make_chain, make_sale
from tests.ledger_checks import assert_ledger_invariant
from tests.services_under_test import ROOT


def stripe_payout(fake_stripe) -> Payout:
    """A pending Stripe payout of all that is available (60.00, one commission) to an
    onboarded account opened at the fake Stripe; committed (its send job is queued, not
    run)."""
    earner, buyer = make_chain(2)
    make_sale(buyer, "600.00", days_ago=40)
    account = open_stripe_account(earner, "US")
    db.session.commit()
    fake_stripe.set_account_state(account.stripe_account_id, "onboarded")
    refresh_stripe_account(account)
    payout = request_payout(earner, None, "stripe")
    db.session.commit()
    return payout


def settled(fake_stripe, payout_id: str, status: str, transfers: int) -> Payout:
    """The payout as committed, checked: its status, the transfers made for it at the fake
    Stripe, its reference (the transfer's id once completed) and the ledger invariant."""
    db.session.rollback()
    db.session.expire_all()
    payout = db.session.get(Payout, payout_id)
    made = fake_stripe.transfers(transfer_group=transfer_group(payout_id))
    assert (payout.status, len(made)) == (status, transfers)
    if status == "completed":
        assert payout.transaction_reference == made[0]["id"]
    assert_ledger_invariant()
    return payout


def available(payout: Payout) -> Decimal:
    return balances(payout.user_id).available


def worker_process(app, fake_stripe, *, burst: bool = True) -> subprocess.Popen:
    """``worker.py`` (``--burst``: until the queues are empty) against the test database and
    the fake Stripe. Jobs run in the worker process itself (a forking worker's work horse is
    a session of its own, which would outlive the kill of its parent)."""
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "STRIPE_SECRET_KEY": fake_stripe.api_key,
        "STRIPE_API_BASE": fake_stripe.url,
        "STRIPE_TIMEOUT": "60",
        "RQ_WORKER_CLASS": "simple",
    }
    return subprocess.Popen(
        [sys.executable, "worker.py", *(["--burst"] if burst else [])],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the work horse dies with it
    )
