"""Stripe transfers for payouts: exactly one transfer per payout, whatever fails.

A send is two steps with a commit between them (the job, ``app.jobs.payouts``, commits):

1. ``prepare_attempt``: a ``pending`` payout becomes ``processing`` with one more attempt
   (and ``first_attempted_at``) — committed *before* Stripe is called, so a worker killed
   during the call leaves a ``processing`` payout as evidence. A payout found
   ``processing`` was left so by such a worker (or by a call that got no answer): it is
   resumed with the *same* attempt, hence the same idempotency key, and Stripe replays the
   transfer it may have made instead of making another.
2. ``send_attempt`` then ``record_answer``: one ``POST /v1/transfers`` with the key
   ``payout-<id>-<attempt>``, ``transfer_group`` ``payout-<id>`` and ``metadata.payout_id``;
   the transfer's id completes the payout as its unique transaction reference.

Stripe prunes idempotency keys after 24 hours, and a retry after a 429 or a 5xx uses the
next attempt's key (Stripe keeps a 500 for its key): so before any send that is not a first
attempt with a fresh key, the transfer is looked up by its group and adopted if it exists.
Only one worker sends a payout at a time (``send_lock``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import stripe
from sqlalchemy import func, select

from app.extensions import db
from app.models import Payout, PayoutAccount, User
from app.providers.stripe import minor_exponent
from app.providers.stripe_api import StripeNotConfigured, stripe_client
from app.services.ops import audit
from app.services.payouts.payouts import (
    complete_payout,
    fail_payout,
    lock_user_ledger,
    start_processing,
)
from app.services.payouts.stripe_accounts import (
    StripeUnavailable,
    refresh_stripe_account,
    stripe_account,
    stripe_status,
)
from app.services.program.program import get_settings

log = logging.getLogger(__name__)

# Stripe prunes idempotency keys once they are at least 24 hours old; an hour's margin.
KEY_LIFETIME = timedelta(hours=23)
# Why a payout is waiting (``Payout.waiting_reason``; the admin's treasury panel shows it).
BALANCE_INSUFFICIENT = "balance_insufficient"  # the platform's Stripe balance is short
RATE_LIMITED = "rate_limited"  # 429
STRIPE_ERROR = "stripe_error"  # 5xx, or a refusal of ours to fix (keys, configuration)
NO_ANSWER = "stripe_no_answer"  # timeout or network error: retried with the same key
SUSPENDED = "the affiliate was suspended after the request"
# Stripe refusing the destination: the payout fails and its reserve comes back.
_ACCOUNT_REFUSALS = frozenset(
    {"account_invalid", "insufficient_capabilities_for_transfer", "account_closed"}
)

Outcome = Literal["completed", "failed", "waiting", "retry", "nothing"]


class TransientStripeError(Exception):
    """The payout waits after an error a later attempt may not meet; raised by the job after
    its commit, so that RQ's retry runs it again with backoff."""


@dataclass(frozen=True)
class Attempt:
    """One transfer request to send: the payout is ``processing`` with this attempt."""

    payout_id: str
    idempotency_key: str
    params: dict
    # The key was sent before without an answer: its request may still be running at Stripe.
    resumed: bool = False


@contextmanager
def send_lock(payout_id: str) -> Iterator[bool]:
    """Whether this process may send the payout, held until the block ends: a
    transaction-level advisory lock taken without waiting, on a connection of its own (the
    job's session commits twice meanwhile). A second worker gets ``False`` and leaves the
    payout to the first; PostgreSQL drops the lock with the connection, so a killed worker
    never leaves it behind."""
    with db.engine.connect() as connection, connection.begin():
        yield connection.scalar(
            select(func.pg_try_advisory_xact_lock(func.hashtext("payout-send:" + payout_id)))
        )


def transfer_group(payout_id: str) -> str:
    return f"payout-{payout_id}"


def prepare_attempt(payout_id: str, now: datetime | None = None) -> Attempt | Outcome:
    """The payout's next step, under ``send_lock``. Returns the ``Attempt`` to send (the
    payout is ``processing`` with it; the caller commits before sending) or the outcome when
    nothing is to be sent: ``nothing`` (not a Stripe payout, or not ``pending`` nor
    ``processing``), ``completed`` (a transfer made earlier was adopted), ``failed`` (the
    account cannot be paid: reserve returned), ``retry`` (Stripe could not be asked: the
    payout waits). Calls Stripe to read only. Flushes."""
    now = now or datetime.now(UTC)
    payout = db.session.get(Payout, payout_id, populate_existing=True)
    if payout is None or payout.payment_method != "stripe":
        # Lemon Squeezy payouts are settled by an admin, never by a worker.
        return "nothing"
    if payout.status not in ("pending", "processing"):
        return "nothing"
    account = _account(payout)
    if account is None:
        fail_payout(payout, "The payout has no Stripe account to send it to.", now=now)
        return "failed"
    params = _transfer_params(payout, account)
    if params is None:
        fail_payout(payout, "The amount cannot be sent in Stripe's unit of the currency.", now=now)
        return "failed"
    resumed = payout.status == "processing"
    key_may_be_gone = payout.first_attempted_at is not None and (
        now - payout.first_attempted_at > KEY_LIFETIME
    )
    # A new key (any retry from pending) or an old one may not replay a transfer made
    # earlier: look for it first.
    if (not resumed and payout.attempts > 0) or (resumed and key_may_be_gone):
        try:
            existing = find_transfer(payout.id, account.stripe_account_id)
        except (stripe.StripeError, StripeNotConfigured) as error:
            return _wait(payout, _reason_of(error), error)
        if existing is not None:
            # The ledger lock before the row lock, in the order completion takes them.
            lock_user_ledger(payout.user_id)
            if not resumed:
                start_processing(payout)
            complete_payout(payout, existing["id"], now=now)
            log.info("Payout %s adopted its transfer %s", payout.id, existing["id"])
            return "completed"
    if not resumed and db.session.get(User, payout.user_id).is_suspended:
        _hold_for_suspension(payout)
        return "waiting"
    if not resumed:
        # Readiness is re-checked with Stripe before every transfer (not for a resumed one:
        # its transfer may exist already, and a replay needs no readiness).
        try:
            ready = refresh_stripe_account(account)
        except StripeUnavailable as error:
            return _wait(payout, STRIPE_ERROR, error)
        if not ready:
            message = stripe_status(payout.user_id).message or "it is not ready"
            fail_payout(payout, f"The Stripe account cannot be paid: {message}", now=now)
            return "failed"
        start_processing(payout)
        payout.first_attempted_at = payout.first_attempted_at or now
        payout.waiting_reason = None
        db.session.flush()
    return Attempt(payout.id, f"payout-{payout.id}-{payout.attempts}", params, resumed)


def send_attempt(attempt: Attempt) -> dict | stripe.StripeError | StripeNotConfigured:
    """One ``POST /v1/transfers``: the transfer made (or replayed for its key), or the error.
    Touches no row."""
    try:
        transfer = stripe_client().v1.transfers.create(
            params=attempt.params, options={"idempotency_key": attempt.idempotency_key}
        )
    except (stripe.StripeError, StripeNotConfigured) as error:
        return error
    return transfer.to_dict()


def record_answer(
    attempt: Attempt,
    answer: dict | stripe.StripeError | StripeNotConfigured,
    now: datetime | None = None,
) -> Outcome:
    """What Stripe answered, stored: the transfer completes the payout (its id the
    reference); no answer (or a 409: the key's request still runs; or a 429 to a resumed
    key) leaves it ``processing`` for a resume with the same key; a 429, a
    5xx or a fault of our setup puts it back to ``pending`` (``retry``); a short platform
    balance too, without retrying soon (``waiting``: the sweeper tries again); a refused
    destination fails it with Stripe's reason, the reserve returned. Flushes."""
    now = now or datetime.now(UTC)
    payout = db.session.get(Payout, attempt.payout_id, populate_existing=True)
    if isinstance(answer, dict):
        complete_payout(payout, answer["id"], now=now)
        return "completed"
    # A 409: another request with this key is still running at Stripe (a call of ours that
    # timed out); a 429 to a resumed key says nothing of its earlier request either. Like no
    # answer, only this key may follow them: a new one could look for the transfer before
    # that request made it, then make a second.
    if (
        isinstance(answer, stripe.APIConnectionError)
        or _is_key_in_use(answer)
        or (attempt.resumed and isinstance(answer, stripe.RateLimitError))
    ):
        payout.waiting_reason = NO_ANSWER
        log.warning("Payout %s: no answer from Stripe (%s); resumed later", payout.id, answer)
        return "retry"
    code = getattr(answer, "code", None)
    if code == "balance_insufficient":
        _wait(payout, BALANCE_INSUFFICIENT, answer)
        return "waiting"
    if code in _ACCOUNT_REFUSALS:
        _store_readiness(payout)
        fail_payout(payout, f"Stripe refused the account: {answer.user_message}", now=now)
        return "failed"
    status = getattr(answer, "http_status", None)
    if isinstance(answer, stripe.InvalidRequestError) and status is not None and status < 500:
        # Refused before anything was done, for a reason no retry changes.
        fail_payout(payout, f"Stripe refused the transfer: {answer.user_message}", now=now)
        return "failed"
    return _wait(payout, _reason_of(answer), answer)


def find_transfer(payout_id: str, destination: str) -> dict | None:
    """The transfer made for this payout, if any (by its group and ``metadata.payout_id``).
    Raises Stripe's errors."""
    found = stripe_client().v1.transfers.list(
        params={"transfer_group": transfer_group(payout_id), "destination": destination}
    )
    listed = [t.to_dict() for t in found.data]
    mine = [t for t in listed if (t.get("metadata") or {}).get("payout_id") == payout_id]
    if len(mine) > 1:
        log.error("Payout %s has %d transfers: %s", payout_id, len(mine), [t["id"] for t in mine])
    return min(mine, key=lambda t: t["created"], default=None)


def payouts_to_send(older_than: timedelta, limit: int = 500) -> list[str]:
    """Stripe payouts a worker should look at: ``pending`` (a lost job, retries used up, or
    waiting for funds) or ``processing`` (a worker died, or no answer came), untouched for
    ``older_than``; oldest first."""
    return list(
        db.session.scalars(
            select(Payout.id)
            .where(
                Payout.payment_method == "stripe",
                Payout.status.in_(("pending", "processing")),
                Payout.updated_at < func.clock_timestamp() - older_than,
            )
            .order_by(Payout.updated_at)
            .limit(limit)
        )
    )


def _account(payout: Payout) -> PayoutAccount | None:
    if payout.payout_account_id is not None:
        return db.session.get(PayoutAccount, payout.payout_account_id)
    return stripe_account(payout.user_id)


def _transfer_params(payout: Payout, account: PayoutAccount) -> dict | None:
    """The transfer's parameters, the same at every attempt (a key replays only them); None
    when the amount has decimals Stripe's integer amount cannot hold (never rounded)."""
    currency = get_settings().currency
    minor = payout.amount.scaleb(minor_exponent(currency))
    if minor != minor.to_integral_value():
        return None
    return {
        "amount": int(minor),
        "currency": currency.lower(),
        "destination": account.stripe_account_id,
        "transfer_group": transfer_group(payout.id),
        "metadata": {"payout_id": payout.id, "user_id": payout.user_id},
        "description": f"Payout {payout.id}",
    }


def _is_key_in_use(error: Exception) -> bool:
    """Stripe's 409 conflict (the SDK makes it an ``APIError``)."""
    return isinstance(error, stripe.StripeError) and error.http_status == 409


def _reason_of(error: Exception) -> str:
    if isinstance(error, stripe.RateLimitError):
        return RATE_LIMITED
    if isinstance(error, stripe.APIConnectionError):
        return NO_ANSWER
    return STRIPE_ERROR


def _wait(payout: Payout, reason: str, error: Exception) -> Outcome:
    """Back to ``pending`` (from ``processing``) with ``reason``; a later attempt uses a new
    key, after looking for a transfer made by this one."""
    log.warning("Payout %s waits (%s): %s", payout.id, reason, error)
    db.session.refresh(payout, with_for_update=True)
    if payout.status == "processing":
        payout.transition_to("pending")
    payout.waiting_reason = reason
    db.session.flush()
    return "waiting" if reason == BALANCE_INSUFFICIENT else "retry"


def _hold_for_suspension(payout: Payout) -> None:
    """A payout of an affiliate suspended since the request is not sent: ``on_hold`` for an
    admin to release or reject. Audited (``payout.held``, by no one: the worker)."""
    db.session.refresh(payout, with_for_update=True)
    payout.transition_to("on_hold")
    payout.waiting_reason = f"On hold: {SUSPENDED}"
    audit.record("payout.held", subject_type="payout", subject_id=payout.id, reason=SUSPENDED)
    db.session.flush()


def _store_readiness(payout: Payout) -> None:
    """Ask Stripe for the refused account, so its page says why (best effort)."""
    account = _account(payout)
    try:
        if account is not None:
            refresh_stripe_account(account)
    except StripeUnavailable:
        pass
