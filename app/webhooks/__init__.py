"""Signed provider webhooks: the only routes without CSRF (the signature replaces it)."""

from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

from app.webhooks import routes  # noqa: E402, F401
