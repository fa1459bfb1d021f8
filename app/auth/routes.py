from flask import flash, redirect, request, session, url_for
from flask_limiter import RequestLimit
from flask_login import current_user, login_required, login_user, logout_user

from app.auth import bp
from app.auth.forms import LoginForm, PasswordForm, RegisterForm
from app.extensions import db, limiter
from app.htmx import redirect_to, render_form
from app.services import audit
from app.services.accounts import RegistrationRejected, authenticate, change_password, register_user
from app.services.program import get_settings
from app.services.referral_links import ATTRIBUTION_COOKIE, safe_next
from app.services.visitors import request_ip_hash


def _start_session(user, remember: bool = False) -> None:
    """A fresh session on every login: nothing from before (fixation) carries over."""
    session.clear()
    login_user(user, remember=remember)


@bp.route("/register", methods=["GET", "POST"])
def register():
    if current_user.is_authenticated:
        return redirect(url_for("portal.dashboard"))
    form = RegisterForm()
    if request.method == "GET":
        form.referral_code.data = request.args.get("code") or request.cookies.get(
            ATTRIBUTION_COOKIE, ""
        )
    context = {"allow_direct": get_settings().allow_direct_signups}
    if not form.validate_on_submit():
        return render_form("auth/register.html", "auth/_register_form.html", form, **context)
    try:
        user = register_user(
            username=form.username.data,
            email=form.email.data,
            password=form.password.data,
            referral_code=form.referral_code.data or "",
            ip_hash=request_ip_hash(),
        )
    except RegistrationRejected as rejected:
        for name, message in rejected.errors.items():
            getattr(form, name).errors = [message]
        db.session.rollback()
        return render_form("auth/register.html", "auth/_register_form.html", form, **context)
    db.session.commit()
    _start_session(user)
    flash(f"Welcome, {user.username}! Here is your dashboard.", "success")
    response = redirect_to(url_for("portal.dashboard"))
    response.delete_cookie(ATTRIBUTION_COOKIE)
    return response


def _login_key() -> str:
    return f"{request.remote_addr}|{(request.form.get('email') or '').strip().lower()}"


def _audit_login_breach(limit: RequestLimit) -> None:
    audit.record(
        "auth.login_rate_limited",
        ip_hash=request_ip_hash(),
        limit=str(limit.limit),
        email=(request.form.get("email") or "").strip().lower()[:254],
    )
    db.session.commit()


def _failed_login(response) -> bool:
    return response.status_code != 302 and not response.headers.get("HX-Redirect")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    "5 per minute",
    key_func=_login_key,
    methods=["POST"],
    deduct_when=_failed_login,
    on_breach=_audit_login_breach,
)
@limiter.limit("30 per minute", methods=["POST"], deduct_when=_failed_login)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("portal.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user is not None:
            next_url = safe_next(request.args.get("next")) or url_for("portal.dashboard")
            db.session.commit()
            _start_session(user, remember=form.remember.data)
            return redirect_to(next_url)
        form.password.errors = ["That email and password don't match an account."]
    return render_form("auth/login.html", "auth/_login_form.html", form)


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("main.home"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    form = PasswordForm()
    if form.validate_on_submit():
        errors = change_password(
            current_user, form.current_password.data, form.new_password.data, request_ip_hash()
        )
        if not errors:
            db.session.commit()
            flash("Your password is changed.", "success")
            return redirect_to(url_for("portal.dashboard"))
        for name, message in errors.items():
            getattr(form, name).errors = [message]
    return render_form("auth/password.html", "auth/_password_form.html", form)
