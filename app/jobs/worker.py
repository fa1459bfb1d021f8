"""RQ workers that run every job inside a fresh Flask app context."""

from __future__ import annotations

from flask import Flask
from rq import SimpleWorker, Worker
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue

from app.extensions import db


class _AppContextMixin:
    app: Flask

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        # A new context per job gives each job its own session, removed at teardown.
        with self.app.app_context():
            return super().perform_job(job, queue, execution)  # type: ignore[misc]


class AppWorker(_AppContextMixin, Worker):
    """Forks a work horse per job: a crashing job cannot take the worker down."""

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        # Never share the parent's pooled connections with the forked child.
        with self.app.app_context():
            db.engine.dispose(close=False)
        super().main_work_horse(job, queue)


class AppSimpleWorker(_AppContextMixin, SimpleWorker):
    """Runs jobs in-process: no fork per job, for throughput on small idempotent jobs."""


WORKER_CLASSES = {"fork": AppWorker, "simple": AppSimpleWorker}


def build_worker(app: Flask, queues: list[str] | None = None) -> Worker | SimpleWorker:
    worker_class = WORKER_CLASSES[app.config["RQ_WORKER_CLASS"]]
    names = queues or app.config["RQ_QUEUES"]
    connection = app.extensions["redis"]
    worker = worker_class([Queue(n, connection=connection) for n in names], connection=connection)
    worker.app = app
    return worker
