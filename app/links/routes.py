from flask import current_app, make_response, redirect, render_template, request

from app.extensions import db
from app.links import bp
from app.services.accounts.accounts import find_user_by_code
from app.services.accounts.visitors import request_ip_hash
from app.services.network.referral_links import ATTRIBUTION_COOKIE, record_click, safe_next
from app.services.program.offer import referrer_rates
from app.services.program.program import get_settings, list_tiers


@bp.get("/r/<code>")
def landing(code: str):
    referrer = find_user_by_code(code)
    if referrer is None:
        return render_template("links/unknown.html"), 404
    record_click(referrer.id, request_ip_hash(), request.user_agent.string)
    db.session.commit()
    settings = get_settings()
    target = safe_next(request.args.get("next"))
    if target:
        response = redirect(target)
    else:
        response = make_response(
            render_template(
                "links/landing.html",
                referrer=referrer,
                settings=settings,
                tiers=list_tiers(),
                rates=referrer_rates(),
            )
        )
    # Last click wins: each visit through a link re-attributes for the whole window.
    response.set_cookie(
        ATTRIBUTION_COOKIE,
        referrer.referral_code,
        max_age=settings.attribution_window_days * 86400,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
    return response
