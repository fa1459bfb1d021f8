"""Error pages: a full page, or a fragment for HTMX, for every HTTP error and for crashes."""

from __future__ import annotations

from flask import Flask, current_app
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from app.extensions import db
from app.htmx import render

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


def _render_error(code: int, title: str, message: str):
    return render(
        "errors/page.html",
        "errors/_error.html",
        status=code,
        code=code,
        title=title,
        message=message,
    )


def handle_http_exception(exc: HTTPException):
    code = exc.code or 500
    message = _MESSAGES.get(code, exc.description or "")
    if isinstance(exc, CSRFError):
        message = (
            "This form has expired or was sent from another site. Reload the page and try again."
        )
    return _render_error(code, exc.name, message)


def handle_unexpected(exc: Exception):
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    current_app.logger.exception("Unhandled error", exc_info=exc)
    db.session.rollback()
    return _render_error(500, InternalServerError().name, _MESSAGES[500])


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
