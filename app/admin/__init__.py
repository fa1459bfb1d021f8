"""Admin pages: only admins see them; anyone else gets a 404, as for a page that is not there."""

from flask import Blueprint, abort, request
from flask_login import current_user, login_required
from werkzeug.exceptions import MethodNotAllowed, NotFound

from app.errors import handle_http_exception
from app.extensions import login_manager

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@login_required
def require_admin():
    if not current_user.is_admin:
        abort(404)


@bp.app_errorhandler(MethodNotAllowed)
def wrong_method(exc: MethodNotAllowed):
    """A wrong method fails in routing, before ``require_admin``: an admin route must not
    show that it exists (405) to anyone but an admin."""
    if request.path.startswith(f"{bp.url_prefix}/") and not current_user.is_authenticated:
        return login_manager.unauthorized()
    if request.path.startswith(f"{bp.url_prefix}/") and not current_user.is_admin:
        exc = NotFound()
    return handle_http_exception(exc)


from app.admin import (  # noqa: E402, F401
    audit,
    commissions,
    health,
    identity,
    payouts,
    reports,
    routes,
    settings,
    tiers,
    users,
)
