"""The audit log viewer: filters (a GET form; 422 with its errors), keyset pages newest first,
and the CSV of every matching entry (streamed, never cached; the export itself is audited).
The log stays append-only: nothing here writes to it but the export's own entry."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Response, abort, request, stream_with_context
from flask_login import current_user

from app.admin import bp
from app.admin.forms import AuditFilterForm
from app.csv_stream import stream_csv
from app.extensions import db
from app.htmx import render
from app.pagination import cursor_arg
from app.services.accounts.visitors import request_ip_hash
from app.services.ops import audit
from app.services.ops.audit_log import AuditFilter, find_actor, find_entries, iter_entries

PAGE, FRAGMENT = "admin/audit.html", "admin/_audit_log.html"
CSV_HEADER = (
    "id", "created_at", "action", "actor_id", "actor", "subject_type", "subject_id", "ip_hash",
    "details",
)  # fmt: skip


def _filter(form: AuditFilterForm) -> AuditFilter | None:
    """The form's filter, or None (with the error on the form) when it does not validate or
    names no user."""
    if request.args and not form.validate():
        return None
    actor_id = None
    if needle := (form.actor.data or "").strip():
        actor_id = find_actor(needle)
        if actor_id is None:
            form.actor.errors = ["No user has this username or email."]
            return None
    return AuditFilter(
        actor_id=actor_id,
        action=form.action.data or None,
        subject_type=(form.subject_type.data or "").strip() or None,
        subject_id=(form.subject_id.data or "").strip() or None,
        created_from=form.created_from.data,
        created_to=form.created_to.data,
    )


def _query_args(form: AuditFilterForm) -> dict[str, str]:
    """Only the form's own filters go back into links (any other key would reach url_for)."""
    return {f.name: request.args[f.name] for f in form if request.args.get(f.name)}


@bp.get("/audit")
def audit_log():
    form = AuditFilterForm(request.args)
    before = cursor_arg("before")
    if before and not before.id.isdigit():
        abort(400)
    wanted = _filter(form)
    if wanted is None:
        return render(PAGE, FRAGMENT, status=422, form=form, listing=None, query={})
    return render(
        PAGE,
        FRAGMENT,
        form=form,
        listing=find_entries(wanted, before),
        query=_query_args(form),
        paged=before is not None,
    )


@bp.get("/audit.csv")
def audit_csv():
    """Every matching entry, newest first. Bad filters answer 422 (the form shows why)."""
    form = AuditFilterForm(request.args)
    wanted = _filter(form)
    if wanted is None:
        return render(PAGE, FRAGMENT, status=422, form=form, listing=None, query={})
    audit.record(
        "audit.exported",
        actor_id=current_user.id,
        ip_hash=request_ip_hash(),
        filters=_query_args(form) or None,
    )
    db.session.commit()

    def lines():
        yield CSV_HEADER
        for row in iter_entries(wanted):
            yield (
                row.id, row.created_at.isoformat(), row.action, row.actor_id, row.actor,
                row.subject_type, row.subject_id, row.ip_hash, _json(row.details),
            )  # fmt: skip

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    response = Response(stream_with_context(stream_csv(lines())), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _json(details: dict) -> str:
    return json.dumps(details, sort_keys=True, ensure_ascii=False, default=str)
