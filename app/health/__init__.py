"""``/healthz``: database, Redis and migration checks for load balancers and monitors."""

from flask import Blueprint

bp = Blueprint("health", __name__)

from app.health import routes  # noqa: E402, F401
