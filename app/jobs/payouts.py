"""Sending payouts from workers: jobs take the payout id; a run twice sends nothing twice."""

from __future__ import annotations

from flask import current_app

from app.extensions import db
from app.jobs.queueing import ENQUEUE_CHUNK, RETRY, enqueue_after_commit, enqueue_many
from app.services.payouts import transfers


def send_payout_job(payout_id: str) -> str:
    """Send a pending Stripe payout, or resume one left ``processing``; returns the outcome.

    Two commits: the attempt (``processing``, its number) before Stripe is called, so that a
    worker killed during the call leaves the evidence a resume needs; the answer after. Only
    one worker sends a payout at a time: another finds the send lock taken and leaves it.
    After a transient error the payout waits (committed) and the job raises, so RQ's retry
    runs it again with backoff (with the scheduler; the workers' sweep re-enqueues what
    waits too long without one)."""
    with transfers.send_lock(payout_id) as mine:
        if not mine:
            current_app.logger.info("Payout %s is being sent by another worker", payout_id)
            return "nothing"
        outcome = transfers.prepare_attempt(payout_id)
        db.session.commit()
        if isinstance(outcome, transfers.Attempt):
            answer = transfers.send_attempt(outcome)
            outcome = transfers.record_answer(outcome, answer)
            db.session.commit()
    if outcome == "retry":
        raise transfers.TransientStripeError(f"payout {payout_id} waits for a retry")
    return outcome


def request_send(payout_id: str) -> None:
    """Have a worker send this payout once the current transaction commits."""
    enqueue_after_commit(send_payout_job, payout_id, retry=RETRY)


def enqueue_sends_job(payout_ids: list[str]) -> None:
    """One send job per payout, enqueued in pipelined chunks. Run twice, it enqueues the
    sends twice, and a send run twice sends nothing twice."""
    enqueue_many(send_payout_job, [(id_,) for id_ in payout_ids], retry=RETRY)


def request_sends(payout_ids: list[str]) -> None:
    """Have workers send these payouts once the current transaction commits: one job per
    ``ENQUEUE_CHUNK`` payouts enqueues their sends, so a scheduled run of 100,000 payouts
    makes 100 Redis calls itself and the workers create the send jobs."""
    for start in range(0, len(payout_ids), ENQUEUE_CHUNK):
        chunk = payout_ids[start : start + ENQUEUE_CHUNK]
        enqueue_after_commit(enqueue_sends_job, chunk, retry=RETRY)
