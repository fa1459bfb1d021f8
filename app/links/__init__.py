"""Shared referral links: ``/r/<code>`` counts the click, attributes, and welcomes."""

from flask import Blueprint

bp = Blueprint("links", __name__)

from app.links import routes  # noqa: E402, F401
