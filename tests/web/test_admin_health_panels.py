"""The health page's panels (database, queues and workers) with real PostgreSQL, Redis and RQ
workers, and the retry of failed jobs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from redis import Redis
from rq import get_current_job
from rq.cron import CronScheduler
from sqlalchemy import select, text

from app.extensions import db
from app.jobs import scheduled_payouts
from app.jobs.queueing import get_queue
from app.jobs.worker import build_worker
from app.models import AuditEntry
from app.services.ops import database_health
from tests.conftest import csrf_token, log_in
from tests.factories import make_user
from tests.services_under_test import ROOT
from tests.signing import run_jobs

HX = {"HX-Request": "true"}
PANELS = ("/admin/health/database", "/admin/health/queues")


def fail_loudly(token: str) -> None:
    """A job that always fails, as a job with a bug would."""
    raise ValueError(f"no such sale: {token}")


RELEASE = "health-test:release"


def wait_for_release() -> str:
    """A job that runs until the test lets it finish (at most 30 s)."""
    get_current_job().connection.blpop([RELEASE], timeout=30)
    return "released"


def _failed_jobs(app, *tokens: str) -> list[str]:
    """Jobs failed by running them through a real worker (no retries: straight to failed)."""
    jobs = [get_queue().enqueue(fail_loudly, token) for token in tokens]
    run_jobs(app)
    registry = get_queue().failed_job_registry
    assert sorted(registry.get_job_ids()) == sorted(job.id for job in jobs)
    return [job.id for job in jobs]


def _audited(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_the_page_loads_each_panel_after_itself_with_a_link_without_javascript(client, admin):
    page = client.get("/admin/health").get_data(as_text=True)
    assert "<title>Health · Admin" in page
    for path in PANELS:
        assert page.count(f'hx-get="{path}" hx-trigger="load" hx-swap="outerHTML"') == 1
        assert f'<a href="{path}">' in page


@pytest.mark.parametrize("path", PANELS)
def test_each_panel_is_a_fragment_for_htmx_and_a_page_without(client, admin, path):
    fragment = client.get(path, headers=HX)
    assert fragment.status_code == 200 and "HX-Request" in fragment.headers["Vary"]
    assert fragment.get_data(as_text=True).lstrip().startswith('<section class="card" id="health-')
    page = client.get(path)
    assert page.status_code == 200 and "HX-Request" in page.headers["Vary"]
    html = page.get_data(as_text=True)
    assert "<html" in html and '<a href="/admin/health">Health</a>' in html


def test_the_database_panel_reads_postgresql_and_marks_unused_indexes(client, admin):
    db.session.execute(text("CREATE INDEX ix_health_probe ON audit_log ((lower(action)))"))
    db.session.commit()
    try:
        html = client.get("/admin/health/database", headers=HX).get_data(as_text=True)
    finally:
        db.session.execute(text("DROP INDEX ix_health_probe"))
        db.session.commit()
    assert re.search(r"<dt>Size</dt><dd>[\d.]+ MiB</dd>", html)
    assert re.search(r"<dt>Connections active</dt><dd>\d+</dd>", html)
    assert re.search(r"<tr>\s*<td>audit_log</td>", html)
    # Never scanned and not unique: marked; a primary key never scanned is not.
    assert re.search(r'<tr class="index-unused">\s*<td>ix_health_probe <strong', html)
    assert re.search(r"<tr>\s*<td>pk_audit_log</td>", html)
    assert "unused</strong>, marked below" in html
    # The test database has no pg_stat_statements: a note, not an error.
    assert "Not available: the <code>pg_stat_statements</code> extension is not installed" in html
    assert "Could not read" not in html


def test_a_database_part_that_fails_is_a_note_and_the_others_still_run(client, admin, monkeypatch):
    monkeypatch.setattr(database_health, "STATEMENT_TIMEOUT", "not a duration")
    response = client.get("/admin/health/database")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for part in ("the size", "the tables", "the indexes", "pg_stat_statements"):
        assert f"Could not read {part}: DataError" in html


def test_the_queue_panel_survives_redis_being_down(app, client, admin, monkeypatch):
    monkeypatch.setitem(app.extensions, "redis", Redis.from_url("redis://127.0.0.1:1/0"))
    response = client.get("/admin/health/queues", headers=HX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for part in ("the queues", "the failed jobs", "the workers", "the scheduler"):
        assert f"Could not read {part}: ConnectionError" in html


def test_failed_jobs_show_with_their_error_and_a_retry_puts_one_back_audited(app, client, admin):
    [job_id] = _failed_jobs(app, "s_42")
    html = client.get("/admin/health/queues", headers=HX).get_data(as_text=True)
    assert "tests.web.test_admin_health_panels.fail_loudly" in html
    assert re.search(
        r"<td>\d{4}-\d\d-\d\d [\d:]{8} UTC</td>\s*<td><code>ValueError: no such sale: s_42<", html
    )
    assert re.search(r"<td>default</td><td>0</td><td>0</td><td><strong[^>]*>1</strong>", html)
    assert f'action="/admin/health/jobs/{job_id}/retry"' in html

    token = csrf_token(client, "/admin/health/queues")
    response = client.post(
        f"/admin/health/jobs/{job_id}/retry", data={"csrf_token": token}, headers=HX
    )
    assert response.status_code == 200
    panel = response.get_data(as_text=True)
    assert panel.lstrip().startswith('<section class="card" id="health-queues">')
    assert f"Job {job_id} retried: back in its queue." in panel
    queue = get_queue()
    assert queue.job_ids == [job_id] and queue.failed_job_registry.count == 0
    [entry] = _audited("job.retried")
    assert (entry.actor_id, entry.subject_type, entry.subject_id) == (admin.id, "job", job_id)
    assert entry.details["error"] == "ValueError: no such sale: s_42"

    # A second click (another admin, a double submit) requeues nothing more.
    again = client.post(f"/admin/health/jobs/{job_id}/retry", data={"csrf_token": token})
    assert (again.status_code, again.headers["Location"]) == (302, "/admin/health/queues")
    assert "is no longer failed: someone retried it already." in client.get(
        "/admin/health/queues"
    ).get_data(as_text=True)
    assert queue.job_ids == [job_id] and len(_audited("job.retried")) == 1

    # Retried, it runs again through the worker (and fails again, the bug being still there).
    run_jobs(app)
    assert queue.failed_job_registry.get_job_ids() == [job_id]


def test_retry_all_puts_every_failed_job_back_with_one_audit_entry(app, client, admin):
    job_ids = _failed_jobs(app, "a", "b")
    token = csrf_token(client, "/admin/health/queues")
    response = client.post("/admin/health/jobs/retry", data={"csrf_token": token})
    assert response.headers["Location"] == "/admin/health/queues"
    assert "2 failed job(s) retried." in client.get("/admin/health/queues").get_data(as_text=True)
    assert sorted(get_queue().job_ids) == sorted(job_ids)
    [entry] = _audited("job.retried_all")
    assert sorted(entry.details["job_ids"]) == sorted(job_ids)


def test_retries_need_csrf_and_unknown_jobs_are_404(app, client, admin):
    [job_id] = _failed_jobs(app, "x")
    assert client.post(f"/admin/health/jobs/{job_id}/retry").status_code == 400
    assert client.post("/admin/health/jobs/retry", headers=HX).status_code == 400
    token = csrf_token(client, "/admin/health/queues")
    response = client.post("/admin/health/jobs/nope/retry", data={"csrf_token": token})
    assert response.status_code == 404
    assert get_queue().failed_job_registry.get_job_ids() == [job_id]
    assert _audited("job.retried") == []


def test_workers_alive_and_the_scheduler_last_run(app, client, admin):
    html = client.get("/admin/health/queues").get_data(as_text=True)
    assert "No worker alive" in html and "No scheduler alive" in html

    worker = build_worker(app)
    worker.register_birth()  # what work() does first
    worker.set_state("idle")
    worker.heartbeat()
    scheduler = CronScheduler(connection=app.extensions["redis"], name="cron-test")
    scheduled_payouts.register(scheduler)
    scheduler.register_birth()
    scheduler.enqueue_jobs()  # one pass of its loop, as scheduler.py runs it at start
    scheduler.save()
    scheduler.heartbeat()
    try:
        html = client.get("/admin/health/queues", headers=HX).get_data(as_text=True)
    finally:
        worker.register_death()
        scheduler.register_death()
    assert re.search(rf"<td>{re.escape(worker.name)}</td><td>idle</td><td>default</td>", html)
    assert re.search(r"cron-test: last heartbeat \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", html)
    assert re.search(
        r"app\.jobs\.scheduled_payouts\.run_scheduled_payouts_job: last enqueued \d{4}-", html
    )
    assert "No worker alive" not in html and "No scheduler alive" not in html


def test_a_running_job_and_its_busy_worker_show_while_it_runs(app, client, admin):
    job = get_queue().enqueue(wait_for_release)
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
    }
    worker = subprocess.Popen([sys.executable, "worker.py", "--burst"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 30
        while job.get_status() != "started" and time.monotonic() < deadline:
            time.sleep(0.1)
        html = client.get("/admin/health/queues", headers=HX).get_data(as_text=True)
    finally:
        app.extensions["redis"].rpush(RELEASE, "go")
        assert worker.wait(timeout=30) == 0
    assert re.search(rf"wait_for_release <small[^>]*>\(default · {job.id}\), since \d{{4}}-", html)
    assert re.search(rf"<td>busy</td><td>default</td><td>{job.id}</td>", html)
    assert job.return_value() == "released"


def test_every_health_route_is_404_for_affiliates_and_asks_visitors_to_log_in(app, client):
    [job_id] = _failed_jobs(app, "y")
    gets = (*PANELS, "/admin/health")
    posts = (f"/admin/health/jobs/{job_id}/retry", "/admin/health/jobs/retry")
    for path in gets:
        assert client.get(path).status_code == 302
    log_in(client, make_user().email)
    token = csrf_token(client, "/")
    for headers in ({}, HX):
        for path in gets:
            assert client.get(path, headers=headers).status_code == 404
        for path in posts:
            response = client.post(path, data={"csrf_token": token}, headers=headers)
            assert response.status_code == 404
            assert client.get(path, headers=headers).status_code == 404
    assert get_queue().failed_job_registry.get_job_ids() == [job_id]
    assert _audited("job.retried") == [] and _audited("job.retried_all") == []
