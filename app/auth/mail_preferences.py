"""Mail preferences on the account page, and the unsubscribe link every non-account mail
carries (no login needed; RFC 8058 one-click)."""

from __future__ import annotations

from flask import flash, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField

from app.auth import bp, signed_in_user
from app.extensions import csrf, db
from app.htmx import redirect_to, render, wants_fragment
from app.services.accounts.tokens import TokenRefused
from app.services.accounts.visitors import request_ip_hash
from app.services.mail.preferences import (
    CATEGORY_HINTS,
    CATEGORY_NAMES,
    opt_out,
    opted_out,
    set_preferences,
)
from app.services.mail.unsubscribe import read_unsubscribe

PREFERENCES = ("auth/account.html", "auth/_mail_preferences.html")
UNSUBSCRIBE = ("auth/unsubscribe.html", "auth/unsubscribe.html")
SAVED = "Your mail preferences are saved."


class MailPreferencesForm(FlaskForm):
    """One checkbox per optional category: checked, its mails are sent. The page's token
    field is the plain ``csrf_token`` (CSRFProtect checks it before the view), so the
    account page does not carry two fields of that id."""

    class Meta:
        csrf = False

    network = BooleanField(CATEGORY_NAMES["network"])
    earnings = BooleanField(CATEGORY_NAMES["earnings"])
    payouts = BooleanField(CATEGORY_NAMES["payouts"])
    flags = BooleanField(CATEGORY_NAMES["flags"])


def _form_for(user) -> MailPreferencesForm:
    off = opted_out(user.id)
    return MailPreferencesForm(
        formdata=None, prefix="mail", data={name: name not in off for name in CATEGORY_NAMES}
    )


@bp.context_processor
def mail_preferences():
    """The account page's section builds its form only when it is shown."""
    return {"mail_preferences_form": lambda: _form_for(current_user), "mail_hints": CATEGORY_HINTS}


@bp.post("/account/mail-preferences")
@login_required
def save_mail_preferences():
    form = MailPreferencesForm(prefix="mail")  # checkboxes: nothing to validate
    wanted = {name for name in CATEGORY_NAMES if form[name].data}
    set_preferences(current_user, wanted, request_ip_hash())
    db.session.commit()
    if wants_fragment():
        return render(*PREFERENCES, mail_form=_form_for(current_user), saved=SAVED)
    flash(SAVED, "success")
    return redirect_to(url_for("auth.account", _anchor="mail-preferences"))


@bp.route("/mail/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt
def unsubscribe(token: str):
    """GET asks to confirm (mail scanners open links); POST turns the category off, from the
    page or as RFC 8058's one-click POST (``List-Unsubscribe=One-Click``) that a mail client
    sends without cookies. No CSRF token: the signed link is the permission, and all it can
    do is stop one category of mails to its user."""
    try:
        user, category = read_unsubscribe(token, signed_in_user())
    except TokenRefused as refused:
        status = 400 if request.method == "GET" else 422
        return render(*UNSUBSCRIBE, status=status, problem=refused.message)
    context = {"category_name": CATEGORY_NAMES[category], "username": user.username}
    if request.method == "GET":
        return render(*UNSUBSCRIBE, token=token, **context)
    one_click = request.form.get("List-Unsubscribe") == "One-Click"
    opt_out(user, category, request_ip_hash(), via="one-click" if one_click else "link")
    db.session.commit()
    return render(*UNSUBSCRIBE, done=True, **context)
