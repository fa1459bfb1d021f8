import time

from flask import flash, redirect, request, session, url_for
from flask_login import current_user, login_remembered, login_required, login_user, logout_user
from flask_wtf.csrf import CSRFError

from app.auth import bp
from app.auth.forms import EmailChangeForm, LoginForm, PasswordForm, RegisterForm
from app.errors import handle_http_exception
from app.extensions import db
from app.htmx import redirect_to, render, render_form
from app.services.accounts.accounts import (
    FORM,
    RegistrationRejected,
    authenticate,
    change_password,
    check_registration,
    password_change_problems,
    register_user,
)
from app.services.accounts.emails import normalize_email
from app.services.accounts.sessions import end_all_sessions
from app.services.accounts.throttles import (
    LOGIN_PER_ACCOUNT,
    LOGIN_PER_EMAIL,
    LOGIN_PER_IP,
    PASSWORD_PER_USER,
    REGISTRATION_PER_IP,
    Throttled,
    client_key,
    count_attempt,
)
from app.services.accounts.visitors import request_ip_hash
from app.services.network.referral_links import ATTRIBUTION_COOKIE, safe_next
from app.services.ops import audit
from app.services.program.identity import program_identity
from app.services.program.program import get_settings
from app.services.program.rates import is_whole


def _start_session(user, remember: bool = False) -> None:
    """A fresh session on every login: nothing from before (fixation) carries over."""
    session.clear()
    user.signed_in_at = int(time.time())
    login_user(user, remember=remember)


def _keep_this_session() -> None:
    """After the user's sessions were ended (token rotated), sign this one in again, with its
    original sign-in time (so its expiry does not move) and its remember-me cookie renewed."""
    login_user(current_user._get_current_object(), remember=login_remembered())


def refused_answer(page: str, fragment: str, form, refused: Throttled, **context):
    """The form again with the throttle's message (429 or 503) and when to try again."""
    form.form_errors.append(refused.message)
    response = render_form(page, fragment, form, status=refused.status, **context)
    response.headers["Retry-After"] = str(refused.retry_after)
    return response


def count_password_attempt():
    """Count one try at the current password (a password or an email change) against the
    user's limit; the first refusal is audited. Raises ``Throttled``."""
    try:
        return count_attempt((PASSWORD_PER_USER, (current_user.id,)))
    except Throttled as refused:
        if refused.status == 429 and refused.is_first:
            audit.record_own("user.password_rate_limited", current_user.id, request_ip_hash())
            db.session.commit()
        raise


def _checked(field) -> str | None:
    """A field's value for the service to check, or ``None`` when the form refused it already."""
    return None if field.errors else field.data or ""


def _show_errors(form, errors: dict[str, str]) -> None:
    for name, message in errors.items():
        field_errors = form.form_errors if name == FORM else getattr(form, name).errors
        field_errors[:] = [message]
    if "accept_terms" in errors:  # a newer text: to be ticked again, knowingly
        form.accept_terms.data = False


@bp.route("/register", methods=["GET", "POST"])
def register():
    """Registration. Every submission counts against the per-address limit; its errors, the
    form's and the service's, come back together in one answer (422)."""
    if current_user.is_authenticated:
        return redirect(url_for("portal.dashboard"))
    form = RegisterForm()
    if request.method == "GET":
        form.referral_code.data = request.args.get("code") or request.cookies.get(
            ATTRIBUTION_COOKIE, ""
        )
    shown_terms = form.terms_version.data or ""
    terms_version = int(shown_terms) if is_whole(shown_terms) else 0
    form.terms_version.data = program_identity().terms_version  # what this page shows
    page, fragment = "auth/register.html", "auth/_register_form.html"
    context = {"allow_direct": get_settings().allow_direct_signups}
    if not form.is_submitted():
        return render_form(page, fragment, form, **context)
    valid = form.validate()
    try:
        count_attempt((REGISTRATION_PER_IP, (client_key(request.remote_addr),)))
    except Throttled as refused:
        return refused_answer(page, fragment, form, refused, **context)
    if not valid:
        errors, _ = check_registration(
            username=_checked(form.username),
            email=_checked(form.email),
            password=_checked(form.password),
            referral_code=_checked(form.referral_code),
            terms_version=None if form.accept_terms.errors else terms_version,
            form_refused=True,
        )
        _show_errors(form, errors)
        return render_form(page, fragment, form, **context)
    try:
        user = register_user(
            username=form.username.data,
            email=form.email.data,
            password=form.password.data,
            referral_code=form.referral_code.data or "",
            ip_hash=request_ip_hash(),
            terms_version=terms_version,
        )
    except RegistrationRejected as rejected:
        _show_errors(form, rejected.errors)
        db.session.rollback()
        return render_form(page, fragment, form, **context)
    db.session.commit()
    _start_session(user)
    flash(f"Welcome, {user.username}! Here is your dashboard.", "success")
    response = redirect_to(url_for("portal.dashboard"))
    response.delete_cookie(ATTRIBUTION_COOKIE)
    return response


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("portal.dashboard"))
    form = LoginForm()
    page, fragment = "auth/login.html", "auth/_login_form.html"
    if form.validate_on_submit():
        client = client_key(request.remote_addr)
        email = (normalize_email(form.email.data) or form.email.data.strip()).lower()
        try:
            attempt = count_attempt(
                (LOGIN_PER_ACCOUNT, (client, email)),
                (LOGIN_PER_IP, (client,)),
                (LOGIN_PER_EMAIL, (email,)),
            )
        except Throttled as refused:
            if refused.status == 429 and refused.is_first:
                audit.record(
                    "auth.login_rate_limited",
                    ip_hash=request_ip_hash(),
                    limit=str(refused.throttle.rate),
                    email=email,
                )
                db.session.commit()
            return refused_answer(page, fragment, form, refused)
        user = authenticate(form.email.data, form.password.data)
        if user is not None:
            attempt.refund()  # a successful sign-in is not a guess
            next_url = safe_next(request.args.get("next")) or url_for("portal.dashboard")
            db.session.commit()
            _start_session(user, remember=form.remember.data)
            return redirect_to(next_url)
        form.password.errors = ["That email and password don't match an account."]
    return render_form(page, fragment, form)


@bp.post("/logout")
def logout():
    """Log out everywhere: the session token is rotated, so this session's cookie and
    remember-me cookie (and any copy of them) stop working, on every device."""
    if current_user.is_authenticated:
        end_all_sessions(current_user, reason="logout", ip_hash=request_ip_hash())
        db.session.commit()
    session.clear()
    logout_user()  # after clear(): it asks for the remember-me cookie to be deleted
    flash("You are logged out.", "info")
    return redirect(url_for("main.home"))


@bp.errorhandler(CSRFError)
def expired_form(exc: CSRFError):
    """A log-out form that expired (its session ended, or the app restarted with another
    key) is not an error page: a visitor already logged out is told so, and a signed-in
    user is asked to confirm with a fresh form (a log-out still needs a valid token, so
    another site cannot log anyone out). Every other form: the usual answer."""
    if request.endpoint != "auth.logout":
        return handle_http_exception(exc)
    if not current_user.is_authenticated:
        flash("You are logged out.", "info")
        return redirect(url_for("main.home"))
    return render("auth/logout.html", "auth/logout.html")


@bp.get("/account")
@login_required
def account():
    return render("auth/account.html", "auth/_sessions.html", form=EmailChangeForm())


@bp.post("/account/sessions/end-others")
@login_required
def end_other_sessions():
    """Log out every other device (e.g. a lost phone); this one stays signed in. CSRF is
    checked by CSRFProtect before the view runs."""
    end_all_sessions(current_user, reason="other_devices", ip_hash=request_ip_hash())
    db.session.commit()
    _keep_this_session()
    flash("Your other devices are logged out.", "success")
    return redirect_to(url_for("auth.account"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    """Change the password. Every submission is counted before the current password is
    checked, and given back unless it was wrong; all the errors come back together in one
    answer (422)."""
    form = PasswordForm()
    page, fragment = "auth/password.html", "auth/_password_form.html"
    if not form.is_submitted():
        return render_form(page, fragment, form)
    valid = form.validate()
    try:
        attempt = count_password_attempt()
    except Throttled as refused:
        return refused_answer(page, fragment, form, refused)
    if valid:
        errors = change_password(
            current_user, form.current_password.data, form.new_password.data, request_ip_hash()
        )
    else:
        errors = password_change_problems(
            current_user,
            _checked(form.current_password),
            _checked(form.new_password),
            request_ip_hash(),
        )
    db.session.commit()  # the change, or the audited failure
    if "current_password" not in errors:
        attempt.refund()  # the right password is not a guess
    if valid and not errors:
        _keep_this_session()
        flash("Your password is changed. Your other devices are logged out.", "success")
        return redirect_to(url_for("portal.dashboard"))
    _show_errors(form, errors)
    return render_form(page, fragment, form)
