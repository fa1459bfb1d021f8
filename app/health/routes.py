from flask import Response, jsonify

from app.extensions import limiter
from app.health import bp
from app.services.ops.health import (
    mail_backlog,
    public_view,
    readiness_checks,
    webhook_backlog,
)


def _answer(healthy: bool, **body: object) -> Response:
    response = jsonify(status="ok" if healthy else "fail", **body)
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
@limiter.exempt
def healthz():
    """Liveness: the process answers. It checks nothing else, so a broken dependency or a
    stuck event never makes an orchestrator restart every instance."""
    return _answer(True)


@bp.get("/readyz")
@limiter.exempt
def readyz():
    """Readiness for load balancers: database, Redis and migrations at head; 503 if any
    fails. Error classes only: messages can name hosts and ports (see /admin/health)."""
    checks = readiness_checks()
    return _answer(all(check["ok"] for check in checks.values()), checks=public_view(checks))


@bp.get("/monitor/webhooks")
@limiter.exempt
def webhook_alarm():
    """The provider events alarm for monitoring (not for load balancers): 503 when an
    event waited too long or one is parked. Counts only."""
    backlog = webhook_backlog()
    return _answer(bool(backlog["ok"]), checks=public_view({"webhooks": backlog}))


@bp.get("/monitor/mail")
@limiter.exempt
def mail_alarm():
    """The mail alarm for monitoring: 503 when a mail waited over an hour or one was given
    up in the last week. Counts only."""
    backlog = mail_backlog()
    return _answer(bool(backlog["ok"]), checks=public_view({"mail": backlog}))
