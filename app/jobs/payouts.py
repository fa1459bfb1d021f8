"""Sending payouts from workers: jobs take the payout id; a run twice sends nothing twice."""

from __future__ import annotations

from app.extensions import db
from app.jobs.queueing import ENQUEUE_CHUNK, RETRY, enqueue_after_commit, enqueue_many
from app.services.payouts import transfers


def send_payout_job(payout_id: str) -> None:
    """Send a pending Stripe payout (``transfers.send_payout``) and commit its outcome."""
    transfers.send_payout(payout_id)
    db.session.commit()


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
