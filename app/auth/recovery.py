"""Forgotten passwords: ask for a link by mail, then set a new password with it."""

from __future__ import annotations

from flask import flash, request, session, url_for
from flask_login import logout_user

from app.auth import bp, signed_in_user
from app.auth.forms import ForgotPasswordForm, ResetPasswordForm
from app.auth.routes import refused_answer
from app.extensions import db
from app.htmx import redirect_to, render, render_form
from app.services.accounts.emails import normalize_email
from app.services.accounts.password_reset import (
    SENT,
    request_password_reset,
    reset_password,
    user_for_reset,
)
from app.services.accounts.throttles import (
    RESET_PER_EMAIL,
    RESET_PER_IP,
    Throttled,
    client_key,
    count_attempt,
)
from app.services.accounts.tokens import TokenRefused
from app.services.accounts.visitors import request_ip_hash

FORGOT = ("auth/forgot_password.html", "auth/_forgot_password.html")
RESET = ("auth/reset_password.html", "auth/_reset_password_form.html")


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password():
    """The same answer for every address, known or not (``SENT``), after the same work."""
    form = ForgotPasswordForm()
    if not form.validate_on_submit():
        return render_form(*FORGOT, form)
    email = (normalize_email(form.email.data) or form.email.data.strip()).lower()
    try:
        count_attempt(
            (RESET_PER_IP, (client_key(request.remote_addr),)), (RESET_PER_EMAIL, (email,))
        )
    except Throttled as refused:
        return refused_answer(*FORGOT, form, refused)
    request_password_reset(form.email.data, request_ip_hash())
    db.session.commit()
    return render(*FORGOT, form=None, sent=SENT)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password_with_link(token: str):
    form = ResetPasswordForm()
    if request.method == "GET":
        try:
            user_for_reset(token, signed_in_user())
        except TokenRefused as refused:
            return render(*RESET, status=400, form=None, token=token, problem=refused.message)
        return render_form(*RESET, form, token=token)
    if not form.validate_on_submit():
        return render_form(*RESET, form, token=token)
    try:
        count_attempt((RESET_PER_IP, (client_key(request.remote_addr),)))
    except Throttled as refused:
        return refused_answer(*RESET, form, refused, token=token)
    errors = reset_password(token, form.new_password.data, request_ip_hash(), signed_in_user())
    if "token" in errors:
        db.session.rollback()
        return render(*RESET, status=422, form=None, token=token, problem=errors["token"])
    if errors:
        db.session.rollback()
        form.new_password.errors = [errors["new_password"]]
        return render_form(*RESET, form, token=token)
    db.session.commit()
    session.clear()
    logout_user()
    flash("Your password is set, and every device was logged out. Log in with it.", "success")
    return redirect_to(url_for("auth.login"))
