"""The reports (``/admin/reports``): figures over a range of days from the report views
(a GET form; HTMX swaps the reports, 422 with the form's errors), each report as CSV, and
"Refresh now" (audited; a worker refreshes after the commit, as the scheduler does every
5 minutes)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from flask import Response, flash, render_template, request, url_for
from flask_login import current_user

from app.admin import bp
from app.admin.forms import ReportRangeForm
from app.csv_stream import stream_csv
from app.extensions import db
from app.htmx import redirect_to, render, wants_fragment
from app.jobs.queueing import enqueue_after_commit
from app.jobs.reports import refresh_reports_job
from app.services.accounts.visitors import request_ip_hash
from app.services.ops import audit
from app.services.program.program import get_settings
from app.services.reports.charts import report_charts
from app.services.reports.exports import csv_rows
from app.services.reports.figures import TOP_KEPT, last_refreshed, read_reports
from app.services.reports.ranges import ReportRange

PAGE, FRAGMENT = "admin/reports.html", "admin/_reports.html"
FRESHNESS = "admin/_report_freshness.html"


def _chosen(form: ReportRangeForm) -> ReportRange | None:
    """The range asked for, or None (the errors on the form)."""
    if request.args and not form.validate():
        return None
    return form.report_range()


def _query_args(form: ReportRangeForm) -> dict[str, str]:
    """Only the form's own fields go back into links (any other key would reach url_for)."""
    return {f.name: request.args[f.name] for f in form if request.args.get(f.name)}


def _refused(form: ReportRangeForm) -> Response:
    return render(PAGE, FRAGMENT, status=422, form=form, reports=None)


@bp.get("/reports")
def reports():
    form = ReportRangeForm(request.args)
    chosen = _chosen(form)
    if chosen is None:
        return _refused(form)
    found = read_reports(chosen)
    currency = get_settings().currency
    return render(
        PAGE,
        FRAGMENT,
        form=form,
        reports=found,
        charts=report_charts(found, currency),
        query=_query_args(form),
        currency=currency,
    )


@bp.get("/reports/<any(sales, funnel, affiliates, payouts):report>.csv")
def report_csv(report: str):
    """One report over the range, a row per day (top affiliates: the 100 kept). Audited."""
    form = ReportRangeForm(request.args)
    chosen = _chosen(form)
    if chosen is None:
        return _refused(form)
    found = read_reports(replace(chosen, daily=True), top=TOP_KEPT)
    audit.record(
        "reports.exported",
        actor_id=current_user.id,
        ip_hash=request_ip_hash(),
        report=report,
        filters=_query_args(form) or None,
    )
    db.session.commit()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    response = Response(stream_csv(csv_rows(report, found)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{report}-{stamp}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/reports/refresh")
def refresh_reports():
    """Ask a worker to refresh the views now (after this commit); audited."""
    audit.record("reports.refresh_requested", actor_id=current_user.id, ip_hash=request_ip_hash())
    enqueue_after_commit(refresh_reports_job)
    db.session.commit()
    message = "Refresh asked for: the figures change as soon as a worker has run it."
    if not wants_fragment():
        flash(message, "success")
        return redirect_to(url_for("admin.reports"))
    return render_template(FRESHNESS, freshness=last_refreshed(), message=message)
