"""/dev/mail: the outbox as an inbox, for development (no MAIL_URL) and admins only.

Anyone else, and everyone once MAIL_URL is set, gets a 404: the outbox holds live
password-reset and confirmation links.
"""

from flask import Blueprint, abort, current_app
from flask_login import current_user

bp = Blueprint("devmail", __name__, url_prefix="/dev/mail")


@bp.before_request
def require_admin_without_mail_url():
    if current_app.config["MAIL_URL"] or not (
        current_user.is_authenticated and current_user.is_admin
    ):
        abort(404)


from app.devmail import routes  # noqa: E402, F401
