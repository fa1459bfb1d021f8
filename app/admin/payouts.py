"""The admin payout queue: filters, one payout's page, the decisions on a payout (each swaps
its row for HTMX, or redirects), bulk approval, the Lemon Squeezy settlement CSV, and the
treasury panel. The rules are the services' (``app/services/payouts/``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import Response, abort, flash, request, url_for
from flask_login import current_user

from app.admin import bp
from app.admin.forms import FORM_EXPIRED, BulkApproveForm, PayoutActionForm, PayoutFilterForm
from app.extensions import db
from app.htmx import redirect_to, render, wants_fragment
from app.models import Payout
from app.services.accounts.visitors import request_ip_hash
from app.services.payouts import approvals, retries, settlement
from app.services.payouts.approvals import ActionRefused
from app.services.payouts.payouts import METHOD_NAMES, DuplicateReference
from app.services.payouts.queue import QueueFilter, find_payouts, payout_detail, queue_row
from app.services.payouts.statements import statement
from app.services.payouts.treasury import treasury
from app.services.program.program import get_settings

QUEUE, QUEUE_LIST, ROW = "admin/payouts.html", "admin/_payout_queue.html", "admin/_payout_row.html"
DETAIL = "admin/payout.html"


def _context(**extra: object) -> dict[str, object]:
    return {
        "currency": get_settings().currency,
        "method_names": METHOD_NAMES,
        "action_form": PayoutActionForm(formdata=None),
        "messages": {},
        **extra,
    }


@bp.get("/payouts")
def payouts():
    """The queue, newest first; filters are a GET form (422 with its errors, nothing listed)."""
    form = PayoutFilterForm(request.args)
    valid = form.validate() if request.args else True
    rows = []
    if valid:
        rows = find_payouts(
            QueueFilter(
                status=form.status.data or None,
                method=form.method.data or None,
                user=form.user.data or None,
                created_from=form.created_from.data,
                created_to=form.created_to.data,
            )
        )
    return render(
        QUEUE,
        QUEUE_LIST,
        status=200 if valid else 422,
        **_context(rows=rows, form=form, bulk_form=BulkApproveForm(formdata=None)),
    )


@bp.get("/payouts/treasury")
def payouts_treasury():
    """The treasury panel (loaded by the queue page after it shows; a page of its own)."""
    currency = get_settings().currency
    return render(
        "admin/payouts_treasury.html",
        "admin/_treasury.html",
        treasury=treasury(currency),
        currency=currency,
        method_names=METHOD_NAMES,
    )


@bp.get("/payouts/<payout_id>")
def payout(payout_id: str):
    return _detail_page(payout_id)


def _detail_page(payout_id: str, *, status: int = 200, messages: dict | None = None):
    """The payout's page: its facts, actions, statement and history."""
    detail = payout_detail(payout_id)
    if detail is None:
        abort(404)
    context = _context(
        detail=detail,
        row=queue_row(payout_id),
        statement=statement(detail.payout),
        messages=messages or {},
    )
    return render(DETAIL, DETAIL, status=status, **context)


def _approve(payout: Payout, form: PayoutActionForm) -> str:
    ready = approvals.approve(payout, current_user)
    return "Approved: it will be sent." if ready else "Approved: a second admin must approve it."


def _hold(payout: Payout, form: PayoutActionForm) -> str:
    approvals.hold(payout, current_user, form.reason.data or "")
    return "Put on hold."


def _release(payout: Payout, form: PayoutActionForm) -> str:
    status = approvals.release(payout, current_user)
    return "Released: waiting for approval." if status != "pending" else "Released: pending."


def _reject(payout: Payout, form: PayoutActionForm) -> str:
    approvals.reject(payout, current_user, form.reason.data or "")
    return "Failed: the amount is back in the affiliate's balance."


def _complete(payout: Payout, form: PayoutActionForm) -> str:
    settlement.mark_completed(payout, form.reference.data or "", current_user)
    return "Marked completed."


def _retry(payout: Payout, form: PayoutActionForm) -> str:
    new = retries.retry_payout(payout, current_user)
    return f"Retried as a new payout, {new.status.replace('_', ' ')}: {new.id}."


_ACTIONS: dict[str, Callable[[Payout, PayoutActionForm], str]] = {
    "approve": _approve,
    "hold": _hold,
    "release": _release,
    "reject": _reject,
    "complete": _complete,
    "retry": _retry,
}


@bp.post("/payouts/<payout_id>/<any(approve, hold, release, reject, complete, retry):action>")
def payout_action(payout_id: str, action: str):
    """One decision on one payout. HTMX: its row again, with the outcome (422 and the
    refusal when refused: nothing changed). Otherwise: back to the queue (POST-redirect-GET),
    or the payout's page with the refusal (422)."""
    payout = db.session.get(Payout, payout_id)
    if payout is None:
        abort(404)
    form = PayoutActionForm()
    try:
        if not form.validate_on_submit():
            errors = [e for field in (form.reason, form.reference) for e in field.errors]
            raise ActionRefused(errors[0] if errors else FORM_EXPIRED)
        outcome = _ACTIONS[action](payout, form)
    except (ActionRefused, DuplicateReference) as refused:
        db.session.rollback()
        return _answer(payout_id, str(refused), ok=False)
    db.session.commit()
    return _answer(payout_id, outcome, ok=True)


def _answer(payout_id: str, message: str, *, ok: bool):
    row = queue_row(payout_id)
    messages = {payout_id: ("success" if ok else "error", message)}
    if wants_fragment():
        return render(ROW, ROW, status=200 if ok else 422, **_context(row=row, messages=messages))
    if ok:
        flash(f"Payout {payout_id}: {message}", "success")
        return redirect_to(url_for("admin.payouts"))
    return _detail_page(payout_id, status=422, messages=messages)


@bp.post("/payouts/approve")
def bulk_approve():
    """Approve each checked payout (in id order, so two admins lock rows in the same order);
    each is approved or its refusal listed. Back to the queue."""
    form = BulkApproveForm()
    if not form.validate_on_submit():
        flash(FORM_EXPIRED, "error")
        return redirect_to(url_for("admin.payouts"))
    approved, refusals = 0, []
    for payout_id in sorted(set(form.payout_ids.data or [])):
        payout = db.session.get(Payout, payout_id)
        try:
            if payout is None:
                raise ActionRefused("no such payout.")
            with db.session.begin_nested():
                approvals.approve(payout, current_user)
        except ActionRefused as refused:
            refusals.append(f"Payout {payout_id}: {refused}")
        else:
            approved += 1
    db.session.commit()
    if not approved and not refusals:
        flash("Tick the payouts to approve first.", "error")
    if approved:
        flash(f"Approved {approved} payout{'s' if approved != 1 else ''}.", "success")
    for refusal in refusals:
        flash(refusal, "error")
    return redirect_to(url_for("admin.payouts"))


@bp.post("/payouts/settlement.csv")
def settlement_csv():
    """The waiting Lemon Squeezy payouts with their payee details in clear: a download never
    stored by a cache; the export is audited (committed before it is sent)."""
    body = settlement.settlement_csv(
        current_user, get_settings().currency, ip_hash=request_ip_hash()
    )
    db.session.commit()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="lemon-squeezy-payouts-{stamp}.csv"'
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
