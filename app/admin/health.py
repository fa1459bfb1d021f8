"""The admin health page's panels: the database and the job queues, each loaded by HTMX after
the page (a slow panel never holds it up) and each a page of its own without JavaScript; and
the retry of failed jobs."""

from __future__ import annotations

from flask import abort, flash, url_for
from flask_login import current_user

from app.admin import bp
from app.extensions import db
from app.htmx import redirect_to, render, wants_fragment
from app.services.ops.database_health import database_panel
from app.services.ops.queue_health import (
    JOBS_LISTED,
    find_job,
    queue_panel,
    retry_all_failed_jobs,
    retry_failed_job,
)


@bp.get("/health/database")
def health_database():
    return render(
        "admin/health_database.html", "admin/_health_database.html", panel=database_panel()
    )


def _queues(message: str | None = None):
    return render(
        "admin/health_queues.html",
        "admin/_health_queues.html",
        panel=queue_panel(),
        listed=JOBS_LISTED,
        message=message,
    )


@bp.get("/health/queues")
def health_queues():
    return _queues()


def _answer(message: str, done: bool):
    """HTMX swaps the refreshed queue panel with the message; a plain form goes back to it."""
    if wants_fragment():
        return _queues(message)
    flash(message, "success" if done else "error")
    return redirect_to(url_for("admin.health_queues"))


@bp.post("/health/jobs/<job_id>/retry")
def retry_job(job_id: str):
    job = find_job(job_id)
    if job is None:
        abort(404)
    retried = retry_failed_job(job, current_user)
    db.session.commit()
    if retried:
        return _answer(f"Job {job_id} retried: back in its queue.", True)
    return _answer(f"Job {job_id} is no longer failed: someone retried it already.", False)


@bp.post("/health/jobs/retry")
def retry_all_jobs():
    count = retry_all_failed_jobs(current_user)
    db.session.commit()
    return _answer(f"{count} failed job(s) retried.", count > 0)
