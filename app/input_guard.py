"""Input PostgreSQL cannot store: refused with a 400 before any view sees it.

A NUL character cannot be stored in PostgreSQL text (psycopg refuses to send it), so a query
parameter or form field holding one would otherwise fail deep inside a query as a 500.
"""

from __future__ import annotations

from flask import Flask, abort, request


def refuse_nul_characters() -> None:
    values = list(request.args.values())
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        values += request.form.values()
    if any("\x00" in value for value in values) or "\x00" in request.path:
        abort(400)


def init_app(app: Flask) -> None:
    app.before_request(refuse_nul_characters)
