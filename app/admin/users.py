"""One user's admin page: profile, suspension, and decisions on their fraud flags. HTMX
swaps the section acted on (422 with the refusal, nothing changed); without JavaScript
the forms post and redirect back (POST-redirect-GET), or show the page with the refusal."""

from __future__ import annotations

from flask import abort, flash, url_for
from flask_login import current_user
from sqlalchemy import or_, select

from app.admin import bp
from app.admin.forms import FORM_EXPIRED, FlagDecisionForm, SuspensionForm
from app.extensions import db
from app.htmx import redirect_to, render, wants_fragment
from app.models import ReferralFlag, User
from app.services.accounts.moderation import SuspensionRefused, set_suspended
from app.services.accounts.profile import user_profile
from app.services.money.fraud import FlagAlreadyResolved, resolve_flag
from app.services.program.program import get_settings

PAGE = "admin/user.html"
SECTIONS = {"status": "admin/_user_status.html", "flags": "admin/_user_flags.html"}


def _page(user_id: str, *, status: int = 200, section: str | None = None, message=None):
    """The user's page, or (HTMX) only ``section``, with ``message`` (kind, text) in it."""
    profile = user_profile(user_id)
    if profile is None:
        abort(404)
    fragment = SECTIONS[section] if section and wants_fragment() else PAGE
    return render(
        PAGE,
        fragment,
        status=status,
        profile=profile,
        currency=get_settings().currency,
        suspension_form=SuspensionForm(formdata=None),
        flag_form=FlagDecisionForm(formdata=None),
        messages={section: message} if section and message else {},
    )


@bp.get("/users/<user_id>")
def user(user_id: str):
    return _page(user_id)


def _answer(user_id: str, section: str, message: str, *, ok: bool):
    if ok and not wants_fragment():
        flash(message, "success")
        return redirect_to(url_for("admin.user", user_id=user_id))
    kind = "success" if ok else "error"
    return _page(user_id, status=200 if ok else 422, section=section, message=(kind, message))


@bp.post("/users/<user_id>/<any(suspend, reactivate):action>")
def suspension(user_id: str, action: str):
    """Suspend or reactivate, with a reason (audited)."""
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    form = SuspensionForm()
    try:
        if not form.validate_on_submit():
            raise SuspensionRefused(form.reason.errors[0] if form.reason.errors else FORM_EXPIRED)
        set_suspended(user, action == "suspend", current_user, form.reason.data or "")
    except SuspensionRefused as refused:
        db.session.rollback()
        return _answer(user_id, "status", str(refused), ok=False)
    db.session.commit()
    done = (
        "Suspended: no new commissions, no payout requests."
        if action == "suspend"
        else ("Reactivated: earns on new sales and may request payouts again.")
    )
    return _answer(user_id, "status", done, ok=True)


@bp.post("/users/<user_id>/flags/<flag_id>")
def user_flag(user_id: str, flag_id: str):
    """Clear or confirm one of the user's flags (as buyer or referrer), by the fraud
    service's rules; another user's flag is not there (404)."""
    flag = db.session.scalars(
        select(ReferralFlag).where(
            ReferralFlag.id == flag_id,
            or_(ReferralFlag.referred_user_id == user_id, ReferralFlag.referrer_id == user_id),
        )
    ).one_or_none()
    if flag is None:
        abort(404)
    form = FlagDecisionForm()
    if not form.validate_on_submit():
        message = FORM_EXPIRED if "csrf_token" in form.errors else "Choose clear or confirm."
        return _answer(user_id, "flags", message, ok=False)
    try:
        resolve_flag(flag, form.decision.data, current_user)
    except FlagAlreadyResolved as exc:
        db.session.rollback()
        return _answer(user_id, "flags", str(exc), ok=False)
    db.session.commit()
    return _answer(user_id, "flags", f"Flag {form.decision.data}.", ok=True)
