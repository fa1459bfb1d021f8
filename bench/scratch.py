"""The app on a bench's scratch database, migrated to head."""

from __future__ import annotations

from flask import Flask
from flask_migrate import upgrade

from app import create_app


def migrated_app(database_url: str, redis_url: str) -> Flask:
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url})
    with app.app_context():
        upgrade()
    return app
