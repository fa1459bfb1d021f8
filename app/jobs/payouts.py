"""Sending payouts from workers: jobs take the payout id; a run twice sends nothing twice."""

from __future__ import annotations

from app.extensions import db
from app.jobs.queueing import RETRY, enqueue_after_commit, enqueue_many_after_commit
from app.services.payouts import transfers


def send_payout_job(payout_id: str) -> None:
    """Send a pending Stripe payout (``transfers.send_payout``) and commit its outcome."""
    transfers.send_payout(payout_id)
    db.session.commit()


def request_send(payout_id: str) -> None:
    """Have a worker send this payout once the current transaction commits."""
    enqueue_after_commit(send_payout_job, payout_id, retry=RETRY)


def request_sends(payout_ids: list[str]) -> None:
    """Have workers send these payouts (one job each) once the current transaction commits,
    enqueued in pipelined chunks: a scheduled run of 100,000 payouts costs 100 round trips."""
    enqueue_many_after_commit(send_payout_job, [(id_,) for id_ in payout_ids], retry=RETRY)
