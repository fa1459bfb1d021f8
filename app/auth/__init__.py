"""Accounts: registration, login/logout, password change, and the Flask-Login user loader."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, request
from flask_login import current_user, login_url

from app.extensions import login_manager
from app.htmx import redirect_to, wants_fragment
from app.models import User
from app.services.accounts.sessions import user_for_session
from app.services.accounts.signed_in import SignedInUser

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(session_value: str) -> SignedInUser | None:
    """The user of a session or remember-me cookie, checked on every request (one primary-key
    lookup): refused once their sessions were ended or ``REMEMBER_COOKIE_DURATION`` after the
    sign-in, whatever the cookie's own expiry says."""
    return user_for_session(session_value, current_app.config["REMEMBER_COOKIE_DURATION"])


def signed_in_user() -> User | None:
    """Who is signed in in this browser, if anyone (a link opened there must be theirs): the
    ORM object, attached to the session."""
    return current_user.orm() if current_user.is_authenticated else None


login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to see that page."
login_manager.login_message_category = "info"


@login_manager.unauthorized_handler
def send_to_login():
    """Flask-Login's redirect to the login page, as ``HX-Redirect`` for HTMX requests (a
    session that expires while the tree is open reloads the page, not a fragment of it). An
    HTMX request comes back to the page it was made from, not to the fragment's URL (which
    may only take a POST)."""
    flash(login_manager.login_message, login_manager.login_message_category)
    back = (wants_fragment() and request.htmx.current_url) or request.url
    return redirect_to(login_url(login_manager.login_view, next_url=back))


from app.auth import email_change, mail_preferences, recovery, routes  # noqa: E402, F401
