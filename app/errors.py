"""Error pages: a full page, or a fragment for HTMX, for every HTTP error and for crashes.

An error answer to an HTMX request is never swapped into the page (``HX-Reswap: none``, and
the htmx-config in base.html): it carries its message in an ``app:error`` event
(``HX-Trigger``), which static/js/errors.js shows in a toast. Forms answer their own 422 (and
a refused attempt's 429/503) with the form and its messages, swapped in place; those do not
come through here. An expired form on an HTMX request reloads the page instead
(``HX-Refresh``), which then says so.
"""

from __future__ import annotations

import json
import math
import time
from urllib.parse import urlsplit

from flask import Flask, current_app, flash, make_response, request
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from app.extensions import db, limiter, login_manager
from app.htmx import render
from app.services.accounts.throttles import TOO_MANY, try_again_in
from app.services.network.referral_links import safe_next

ERROR_EVENT = "app:error"
_MESSAGES = {
    400: "The request could not be understood. Check what you sent and try again.",
    403: "You do not have access to this page.",
    404: "We could not find that page. The link may be mistyped or out of date.",
    405: "That action is not available here.",
    413: "What you sent is too large. Send less and try again.",
    422: "Some of what you entered needs fixing.",
    429: "Too many attempts. Please wait a moment and try again.",
    500: "Something went wrong on our side. We have been told and are looking into it.",
}
FORM_EXPIRED = (
    "This form has expired or was sent from another site, so nothing was changed. "
    "Open the form again and resend it."
)
PAGE_RELOADED = "This page had expired; it has been reloaded — please try again."


def _render_error(
    code: int, title: str, message: str, *, back: str | None = None, retry_after: int | None = None
):
    response = render(
        "errors/page.html",
        "errors/_error.html",
        status=code,
        code=code,
        title=title,
        message=message,
        back=back,
    )
    if request.htmx:
        # ASCII JSON: a header outside Latin-1 would be refused by the server.
        event = {ERROR_EVENT: {"message": message, "status": code}}
        response.headers["HX-Trigger"] = json.dumps(event)
        response.headers["HX-Reswap"] = "none"
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _seconds_to_wait(exc: HTTPException) -> int | None:
    """A 429's wait: Flask-Limiter's window that was exceeded, or the exception's own."""
    if isinstance(exc, RateLimitExceeded) and limiter.current_limit is not None:
        return max(1, math.ceil(limiter.current_limit.reset_at - time.time()))
    retry_after = getattr(exc, "retry_after", None)
    return retry_after if isinstance(retry_after, int) else None


def _form_page() -> str | None:
    """Where the expired form can be had again: the page it was sent from (on this site), or
    the URL it was sent to when that URL also shows it (GET)."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host:
        return safe_next(referrer._replace(scheme="", netloc="", fragment="").geturl())
    if request.url_rule is not None and "GET" in (request.url_rule.methods or ()):
        return request.full_path.rstrip("?")
    return None


def _expired_form(exc: CSRFError):
    """A form whose CSRF token is missing, expired or from another session.

    HTMX: a signed-in page (it sends ``X-CSRFToken``) whose session ended goes to the login
    page; any other page reloads itself, which gives it a fresh token, and says why. Without
    HTMX: a 400 page with a link back to the form.
    """
    if request.htmx:
        if "X-CSRFToken" in request.headers and not current_user.is_authenticated:
            return login_manager.unauthorized()
        flash(PAGE_RELOADED, "info")
        response = make_response(PAGE_RELOADED, 400)
        response.headers["HX-Refresh"] = "true"
        response.vary.add("HX-Request")
        return response
    return _render_error(400, exc.name, FORM_EXPIRED, back=_form_page())


def handle_http_exception(exc: HTTPException):
    code = exc.code or 500
    if isinstance(exc, CSRFError):
        return _expired_form(exc)
    message = _MESSAGES.get(code, exc.description or "")
    wait = _seconds_to_wait(exc) if code == 429 else None
    if wait is not None:
        message = TOO_MANY.format(when=try_again_in(wait))
    return _render_error(code, exc.name, message, retry_after=wait)


def handle_unexpected(exc: Exception):
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    current_app.logger.exception("Unhandled error", exc_info=exc)
    db.session.rollback()
    return _render_error(500, InternalServerError().name, _MESSAGES[500])


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
