"""One way to answer a page that HTMX may also ask for as a fragment."""

from __future__ import annotations

from flask import Response, make_response, render_template, request


def wants_fragment() -> bool:
    """An HTMX request that is not a boosted navigation wants only the fragment."""
    return bool(request.htmx) and not request.htmx.boosted


def render(page: str, fragment: str, status: int = 200, **context: object) -> Response:
    """Render ``fragment`` for HTMX, ``page`` (which includes the fragment) otherwise.

    Either way the response says ``Vary: HX-Request`` so caches keep the two apart.
    """
    template = fragment if wants_fragment() else page
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response
