"""The affiliate's downline tree and the search in it."""

from flask import Blueprint

bp = Blueprint("tree", __name__)

from app.tree import routes  # noqa: E402, F401
