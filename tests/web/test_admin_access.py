"""Every /admin route, discovered from the URL map (a new one is covered as it lands):
affiliates get 404 and anonymous visitors the login page, for every method, with and
without HX-Request, and nothing changes."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry
from tests.conftest import csrf_token, log_in
from tests.factories import make_user

HX = {"HX-Request": "true"}
_ARGUMENT = re.compile(r"<(?:([a-z]+)(?:\(([^)]*)\))?:)?[^<>]+>")


def _value(match: re.Match) -> str:
    """A value the argument's converter accepts: ``any(a, b)`` its first choice, a number
    for ``int``, else x1."""
    converter, choices = match.group(1), match.group(2)
    if converter == "any":
        return choices.split(",")[0].strip().strip("'\"")
    return "1" if converter == "int" else "x1"


def _admin_routes(app) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin"):
            continue
        path = _ARGUMENT.sub(_value, rule.rule)
        routes += [(method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return routes


def test_the_admin_routes_are_discovered(app):
    routes = _admin_routes(app)
    assert ("GET", "/admin/payouts") in routes and ("POST", "/admin/payouts/x1/approve") in routes
    assert len(routes) >= 15


@pytest.mark.parametrize("hx", [False, True], ids=["page", "htmx"])
def test_every_admin_route_is_a_404_for_affiliates(app, client, hx):
    log_in(client, make_user().email)
    token = csrf_token(client, "/dashboard")
    audited = db.session.scalar(select(func.count()).select_from(AuditEntry))
    answers = {
        (method, path): client.open(
            path, method=method, data={"csrf_token": token}, headers=HX if hx else {}
        ).status_code
        for method, path in _admin_routes(app)
    }
    assert {route: status for route, status in answers.items() if status != 404} == {}
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == audited


@pytest.mark.parametrize("hx", [False, True], ids=["page", "htmx"])
def test_every_admin_route_sends_anonymous_visitors_to_log_in(app, client, hx):
    token = csrf_token(client, "/login")
    wrong = {}
    for method, path in _admin_routes(app):
        response = client.open(
            path, method=method, data={"csrf_token": token}, headers=HX if hx else {}
        )
        location = response.headers.get("HX-Redirect" if hx else "Location", "")
        if not location.startswith("/login"):
            wrong[(method, path)] = (response.status_code, location)
    assert wrong == {}
