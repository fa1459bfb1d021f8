"""Accounts: registration, login/logout, password change, and the Flask-Login user loader."""

from __future__ import annotations

from flask import Blueprint

from app.extensions import db, login_manager
from app.models import User

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, user_id)


login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to see that page."
login_manager.login_message_category = "info"

from app.auth import routes  # noqa: E402, F401
