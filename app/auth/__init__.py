"""Sessions: loading the logged-in user for Flask-Login."""

from __future__ import annotations

from flask import Flask

from app.extensions import db, login_manager
from app.models import User


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, user_id)


def init_app(app: Flask) -> None:
    login_manager.login_message_category = "info"
