from flask import Response, abort, render_template, request, stream_with_context, url_for
from flask_login import current_user, login_required

from app.extensions import db
from app.htmx import redirect_to, render, wants_fragment
from app.money import minor_units
from app.pagination import cursor_arg
from app.portal import bp
from app.portal.exports import commission_csv
from app.portal.forms import CommissionFilterForm
from app.services.accounts.checklist import checklist, mark_link_copied
from app.services.money.commission_listing import (
    CommissionFilters,
    commission_totals,
    iter_commissions,
    list_commissions,
    monthly_earnings,
)
from app.services.money.commission_states import STATES
from app.services.money.ledger import balances
from app.services.money.receipts import receipt
from app.services.network.network_stats import STAT_PERIODS, link_stats, network_summary
from app.services.network.referral_links import qr_code, share_links, share_url
from app.services.program.program import get_settings

_QR_TYPES = {"svg": "image/svg+xml", "png": "image/png"}


@bp.get("/dashboard")
@login_required
def dashboard():
    return render(
        "portal/dashboard.html",
        "portal/_dashboard.html",
        network=network_summary(current_user.id),
        earnings=balances(current_user.id),
        link=share_url(current_user),
        checklist=checklist(current_user),
        hold_days=get_settings().hold_days,
    )


@bp.post("/link/copied")
@login_required
def link_copied():
    """The copy button says the link was copied (the checklist's first step). HTMX gets the
    checklist back (the link page ignores it); a plain form goes back to the dashboard."""
    mark_link_copied(current_user)
    db.session.commit()
    if not wants_fragment():
        return redirect_to(url_for("portal.dashboard"))
    steps = checklist(current_user)
    response = Response(
        render_template("portal/_checklist.html", checklist=steps, link=share_url(current_user))
    )
    response.vary.add("HX-Request")
    return response


@bp.get("/link")
@login_required
def link():
    days = request.args.get("days", 30, type=int)
    if days not in STAT_PERIODS:
        days = 30
    url = share_url(current_user)
    return render(
        "portal/link.html",
        "portal/_link_stats.html",
        link=url,
        shares=share_links(url),
        stats=link_stats(current_user.id, days),
        periods=STAT_PERIODS,
    )


@bp.get("/link/qr.<kind>")
@login_required
def qr(kind: str):
    if kind not in _QR_TYPES:
        abort(404)
    response = Response(qr_code(share_url(current_user), kind), mimetype=_QR_TYPES[kind])
    if request.args.get("download"):
        filename = f"referral-{current_user.referral_code}.{kind}"
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


COMMISSIONS = "portal/commissions.html"
LIST, ROWS = "portal/_commission_list.html", "portal/_commission_rows.html"


def _filters(form: CommissionFilterForm) -> CommissionFilters:
    return CommissionFilters(
        state=form.status.data or None,
        tier=form.tier.data,
        since=form.since.data,
        until=form.until.data,
    )


def _query_args(form: CommissionFilterForm) -> dict[str, str]:
    """Only the form's own filters go back into links: any other key would reach url_for as
    one of its arguments (``endpoint``, ``_method``, ``_external`` ...) and fail."""
    return {field.name: request.args[field.name] for field in form if request.args.get(field.name)}


def _bad_filters(form: CommissionFilterForm, fragment: str = LIST):
    """The page (or ``fragment``) with the filters' errors and nothing listed: 422."""
    currency = get_settings().currency
    return render(COMMISSIONS, fragment, 422, form=form, currency=currency, query={}, states=STATES)


@bp.get("/commissions")
@login_required
def commissions():
    """The filtered list (filters in the URL: the form pushes them). HTMX gets the list with
    its chart, totals and CSV link, or, for "Show older" (``before``), the next rows."""
    form = CommissionFilterForm(request.args)
    before = cursor_arg("before")
    fragment = ROWS if before else LIST
    if not form.validate():
        return _bad_filters(form, fragment)
    filters, currency = _filters(form), get_settings().currency
    summary = {}
    if not (before and wants_fragment()):
        summary = {
            "totals": commission_totals(current_user.id, filters, minor_units(currency)),
            "chart": monthly_earnings(current_user.id, filters),
        }
    return render(
        COMMISSIONS,
        fragment,
        form=form,
        currency=currency,
        query=_query_args(form),
        states=STATES,
        listing=list_commissions(current_user.id, filters, before),
        **summary,
    )


@bp.get("/commissions/<commission_id>")
@login_required
def commission(commission_id: str):
    """The receipt of one of the user's commissions (another user's is not there: 404)."""
    found = receipt(commission_id, owner_id=current_user.id)
    if found is None:
        abort(404)
    return render(
        "portal/commission.html",
        "portal/_receipt.html",
        receipt=found,
        payout_endpoint="payouts.statement_page",
        currency=get_settings().currency,
    )


@bp.get("/commissions.csv")
@login_required
def commissions_csv():
    form = CommissionFilterForm(request.args)
    if not form.validate():
        return _bad_filters(form)
    rows = iter_commissions(current_user.id, _filters(form))
    csv = commission_csv(rows, get_settings().currency)
    response = Response(stream_with_context(csv), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="commissions.csv"'
    return response
