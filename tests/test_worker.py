"""The worker runs jobs in the app context, and jobs are enqueued only after commit."""

from __future__ import annotations

import os
import subprocess
import sys

from rq.job import Job

from app.extensions import db
from app.jobs import queueing
from app.jobs.queueing import enqueue_after_commit, enqueue_many, get_queue, get_redis
from app.jobs.system import ping
from app.jobs.worker import build_worker
from tests.services_under_test import ROOT


def test_worker_process_runs_a_job_in_burst_mode(app):
    job = get_queue().enqueue(ping, "hello")
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
    }
    subprocess.run(
        [sys.executable, "worker.py", "--burst"], cwd=ROOT, env=env, check=True, timeout=60
    )
    job.refresh()
    assert job.get_status() == "finished"
    assert job.return_value() == {"token": "hello", "database": 1}


def test_simple_worker_runs_a_job_in_process(app):
    app.config["RQ_WORKER_CLASS"] = "simple"
    try:
        job = get_queue().enqueue(ping, "in-process")
        build_worker(app).work(burst=True)
    finally:
        app.config["RQ_WORKER_CLASS"] = "fork"
    assert Job.fetch(job.id, connection=get_redis()).return_value()["token"] == "in-process"


def test_job_is_enqueued_only_after_commit():
    queue = get_queue()
    enqueue_after_commit(ping, "later")
    db.session.flush()
    assert queue.count == 0
    db.session.commit()
    assert queue.count == 1


def test_rolled_back_transaction_enqueues_nothing():
    queue = get_queue()
    enqueue_after_commit(ping, "never")
    db.session.rollback()
    db.session.commit()
    assert queue.count == 0


def test_many_jobs_are_enqueued_in_pipelined_chunks(monkeypatch):
    monkeypatch.setattr(queueing, "ENQUEUE_CHUNK", 3)
    enqueue_many(ping, [(f"t{n}",) for n in range(7)], retry=queueing.RETRY)
    jobs = get_queue().get_jobs()
    assert [job.args for job in jobs] == [(f"t{n}",) for n in range(7)]
    assert {job.retries_left for job in jobs} == {5}
