"""Public pages: the program's home page, its terms, logo and theme."""

from flask import Blueprint

bp = Blueprint("main", __name__)

from app.main import program, routes  # noqa: E402, F401
