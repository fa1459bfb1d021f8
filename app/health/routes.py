from flask import jsonify

from app.extensions import limiter
from app.health import bp
from app.services.health import run_checks


@bp.get("/healthz")
@limiter.exempt
def healthz():
    checks = run_checks()
    healthy = all(check["ok"] for check in checks.values())
    response = jsonify(status="ok" if healthy else "fail", checks=checks)
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    return response
