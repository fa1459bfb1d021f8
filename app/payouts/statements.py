"""A payout's statement (printable page and CSV) and its status badge, which the page polls
while the payout is in flight. Another user's payout answers 404, page or fragment."""

from __future__ import annotations

from flask import Response, abort, make_response, render_template, stream_with_context
from flask_login import current_user, login_required

from app.htmx import render, wants_fragment
from app.models import Payout
from app.payouts import bp
from app.payouts.exports import payout_date, statement_csv
from app.services.payouts.payouts import METHOD_NAMES
from app.services.payouts.statements import (
    iter_clawback_lines,
    iter_commission_lines,
    payout_of,
    statement,
)
from app.services.program.program import get_settings

PAGE, BADGE = "payouts/statement.html", "payouts/_status_badge.html"
# htmx stops polling an element when its request answers 286.
STOP_POLLING = 286


def _own_payout(payout_id: str) -> Payout:
    payout = payout_of(current_user.id, payout_id)
    if payout is None:
        abort(404)
    return payout


def _page_context(payout: Payout) -> dict[str, object]:
    return {
        "payout": payout,
        "statement": statement(payout),
        "settings": get_settings(),
        "method_names": METHOD_NAMES,
    }


@bp.get("/payouts/<payout_id>")
@login_required
def statement_page(payout_id: str):
    """The statement: the payout, the commissions it covers, the clawbacks netted from it
    and the totals; printable (the print stylesheet drops navigation and buttons)."""
    response = make_response(render_template(PAGE, **_page_context(_own_payout(payout_id))))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/payouts/<payout_id>/status")
@login_required
def payout_status(payout_id: str):
    """The status badge for HTMX: 200 (it keeps polling) while the payout is in flight, 286
    with the final badge (no trigger) once it is final. Without HTMX: the statement page."""
    payout = _own_payout(payout_id)
    if wants_fragment():
        status = 200 if payout.is_in_flight else STOP_POLLING
        response = render(PAGE, BADGE, status=status, payout=payout)
    else:
        response = render(PAGE, BADGE, **_page_context(payout))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/payouts/<payout_id>/statement.csv")
@login_required
def statement_download(payout_id: str):
    """The statement as CSV, every line streamed; named for the payout's date."""
    payout = _own_payout(payout_id)
    summary = statement(payout, lines=0)
    csv = statement_csv(
        summary,
        iter_commission_lines(payout),
        iter_clawback_lines(payout),
        get_settings().currency,
        METHOD_NAMES[payout.payment_method],
    )
    response = Response(stream_with_context(csv), mimetype="text/csv")
    filename = f"payout-{payout_date(summary).date().isoformat()}-{payout.id[:8]}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
