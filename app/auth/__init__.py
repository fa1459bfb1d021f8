"""Accounts: registration, login/logout, password change, and the Flask-Login user loader."""

from __future__ import annotations

from flask import Blueprint, flash, request
from flask_login import login_url

from app.extensions import db, login_manager
from app.htmx import redirect_to
from app.models import User

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, user_id)


login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to see that page."
login_manager.login_message_category = "info"


@login_manager.unauthorized_handler
def send_to_login():
    """Flask-Login's redirect to the login page, as ``HX-Redirect`` for HTMX requests (a
    session that expires while the tree is open reloads the page, not a fragment of it)."""
    flash(login_manager.login_message, login_manager.login_message_category)
    return redirect_to(login_url(login_manager.login_view, next_url=request.url))


from app.auth import routes  # noqa: E402, F401
