from flask import Response, abort, request
from flask_login import current_user, login_required

from app.htmx import render
from app.portal import bp
from app.services.ledger import balances
from app.services.network_stats import STAT_PERIODS, link_stats, network_summary
from app.services.referral_links import qr_code, share_links, share_url

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
    )


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
