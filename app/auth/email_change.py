"""Changing the account's email address: asked on the account page, confirmed by a link
mailed to the new address."""

from __future__ import annotations

from flask import flash, request, url_for
from flask_login import current_user, login_required

from app.auth import bp
from app.auth.forms import EmailChangeForm
from app.auth.routes import count_password_attempt, refused_answer
from app.extensions import db
from app.htmx import redirect_to, render, render_form
from app.services.accounts.email_change import (
    confirm_email_change,
    pending_change,
    request_email_change,
)
from app.services.accounts.throttles import Throttled
from app.services.accounts.tokens import TokenRefused
from app.services.accounts.visitors import request_ip_hash

ACCOUNT = ("auth/account.html", "auth/_email_form.html")
CONFIRM = ("auth/confirm_email.html", "auth/confirm_email.html")


@bp.post("/account/email")
@login_required
def change_email():
    form = EmailChangeForm()
    if not form.validate_on_submit():
        return render_form(*ACCOUNT, form)
    try:
        attempt = count_password_attempt()
    except Throttled as refused:
        return refused_answer(*ACCOUNT, form, refused)
    errors = request_email_change(
        current_user, form.new_email.data, form.current_password.data, request_ip_hash()
    )
    db.session.commit()  # the mails, or the audited wrong password
    if errors and "current_password" not in errors:
        attempt.refund()  # refused with the right password: no guess, and nothing mailed
    if errors:
        for name, message in errors.items():
            getattr(form, name).errors = [message]
        return render_form(*ACCOUNT, form)
    flash(
        f"We sent a link to {form.new_email.data.strip()}. Your address changes when you open it.",
        "success",
    )
    return redirect_to(url_for("auth.account"))


@bp.route("/account/email/confirm/<token>", methods=["GET", "POST"])
@login_required
def confirm_email(token: str):
    """A GET shows what the link changes and asks to confirm (mail scanners open links); the
    POST changes the address."""
    try:
        if request.method == "GET":
            return render(*CONFIRM, new_email=pending_change(token, current_user), token=token)
        new_email = confirm_email_change(token, current_user, request_ip_hash())
    except TokenRefused as refused:
        db.session.rollback()
        status = 400 if request.method == "GET" else 422
        return render(*CONFIRM, status=status, problem=refused.message, token=token)
    db.session.commit()
    flash(f"Your email address is now {new_email}.", "success")
    return redirect_to(url_for("auth.account"))
