"""Commission moderation: every commission, filtered, in keyset pages; each one's receipt;
cancel one with a reason (HTMX swaps its row, 422 with the refusal; without JavaScript,
POST-redirect-GET, or its receipt with the refusal). The rules are the services'
(``commission_listing``, ``cancellations``, ``receipts``)."""

from __future__ import annotations

from flask import abort, flash, request, url_for
from flask_login import current_user

from app.admin import bp
from app.admin.forms import FORM_EXPIRED, AdminCommissionFilterForm, CommissionCancelForm
from app.extensions import db
from app.htmx import redirect_to, render, wants_fragment
from app.models import Commission
from app.pagination import cursor_arg
from app.services.accounts.directory import find_user
from app.services.money.cancellations import CancelRefused, cancel_commission
from app.services.money.commission_listing import (
    CommissionFilters,
    commission_row,
    list_commissions,
)
from app.services.money.receipts import receipt
from app.services.program.program import get_settings

RECEIPT, RECEIPT_PART = "admin/commission.html", "portal/_receipt.html"
LIST, ROWS, ROW = (
    "admin/commissions.html",
    "admin/_commission_rows.html",
    "admin/_commission_row.html",
)


def _context(**extra: object) -> dict[str, object]:
    return {
        "currency": get_settings().currency,
        "cancel_form": CommissionCancelForm(formdata=None),
        "messages": {},
        "query": {},
        **extra,
    }


@bp.get("/commissions")
def commissions():
    """Newest first; filters are a GET form (422 with its errors, nothing listed)."""
    form = AdminCommissionFilterForm(request.args)
    before = cursor_arg("before")
    valid = form.validate()
    earner = None
    if valid and form.user.data:
        earner = find_user(form.user.data)
        if earner is None:
            form.user.errors = ["No user has this username or email."]
            valid = False
    if not valid:
        return render(LIST, ROWS, status=422, **_context(form=form, listing=None))
    filters = CommissionFilters(
        state=form.status.data or None,
        tier=form.tier.data,
        since=form.since.data,
        until=form.until.data,
    )
    listing = list_commissions(earner.id if earner else None, filters, before)
    # Only the form's own filters go back into links (see the portal's list).
    query = {field.name: request.args[field.name] for field in form if request.args.get(field.name)}
    return render(LIST, ROWS, **_context(form=form, listing=listing, query=query))


@bp.get("/commissions/<commission_id>")
def commission(commission_id: str):
    return _receipt_page(commission_id)


def _receipt_page(commission_id: str, *, status: int = 200, messages: dict | None = None):
    found = receipt(commission_id)
    if found is None:
        abort(404)
    context = _context(
        receipt=found,
        row=commission_row(commission_id),
        payout_endpoint="admin.payout",
        messages=messages or {},
    )
    return render(RECEIPT, RECEIPT_PART, status=status, **context)


@bp.post("/commissions/<commission_id>/cancel")
def cancel(commission_id: str):
    """Cancel one commission with a reason, through the ledger (audited, once)."""
    if db.session.get(Commission, commission_id) is None:
        abort(404)
    form = CommissionCancelForm()
    try:
        if not form.validate_on_submit():
            raise CancelRefused(form.reason.errors[0] if form.reason.errors else FORM_EXPIRED)
        commission = cancel_commission(commission_id, current_user, form.reason.data or "")
    except CancelRefused as refused:
        db.session.rollback()
        return _answer(commission_id, str(refused), ok=False)
    was_paid = commission.status == "paid"
    db.session.commit()
    done = "Cancelled: clawed back from the affiliate." if was_paid else "Cancelled."
    return _answer(commission_id, done, ok=True)


def _answer(commission_id: str, message: str, *, ok: bool):
    messages = {commission_id: ("success" if ok else "error", message)}
    if wants_fragment():
        row = commission_row(commission_id)
        return render(ROW, ROW, status=200 if ok else 422, **_context(row=row, messages=messages))
    if ok:
        flash(f"Commission {commission_id}: {message}", "success")
        return redirect_to(url_for("admin.commissions"))
    return _receipt_page(commission_id, status=422, messages=messages)
