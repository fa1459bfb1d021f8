"""``/healthz`` (liveness), ``/readyz`` (readiness: database, Redis, migrations) and
``/monitor/webhooks`` (the provider events alarm), for orchestrators, load balancers and
monitors. The full detail is on the admin health page."""

from flask import Blueprint

bp = Blueprint("health", __name__)

from app.health import routes  # noqa: E402, F401
