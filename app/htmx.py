"""One way to answer a page that HTMX may also ask for as a fragment."""

from __future__ import annotations

from flask import Response, make_response, redirect, render_template, request
from flask_wtf import FlaskForm
from werkzeug.urls import iri_to_uri


def wants_fragment() -> bool:
    """An HTMX request wants only the fragment, unless it is a boosted navigation or the
    restore of a page from history (a back button after ``hx-push-url``: htmx swaps the
    answer into the whole body)."""
    htmx = request.htmx
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render(page: str, fragment: str, status: int = 200, **context: object) -> Response:
    """Render ``fragment`` for HTMX, ``page`` (which includes the fragment) otherwise.

    Either way the response says ``Vary: HX-Request`` so caches keep the two apart.
    """
    template = fragment if wants_fragment() else page
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def render_form(
    page: str, fragment: str, form: FlaskForm, status: int | None = None, **context: object
) -> Response:
    """A form page: 200 when first shown, 422 when a submission had errors (page or fragment),
    or ``status`` when given (a refused attempt: 429, 503)."""
    if status is None:
        status = 422 if request.method == "POST" else 200
    return render(page, fragment, status=status, form=form, **context)


def redirect_to(location: str) -> Response:
    """After a successful HTMX form, send the whole page there; otherwise a plain 302.

    The location is sent as an ASCII URI (non-ASCII percent-encoded), as werkzeug does for
    ``Location``: a header outside Latin-1 is refused by gunicorn, losing the response.
    """
    if wants_fragment():
        response = make_response("", 200)
        response.headers["HX-Redirect"] = iri_to_uri(location)
        return response
    return redirect(location)
