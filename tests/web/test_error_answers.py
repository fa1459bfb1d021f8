"""How errors reach the user: an HTMX error answer carries its message in an ``app:error``
event and is never swapped; a 429 says when to try again; an expired form reloads the page
(HTMX) or links back to it; an ended session sends HTMX to the login page."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from flask import abort
from werkzeug.exceptions import Conflict, TooManyRequests

from app import create_app
from app.errors import ERROR_EVENT, PAGE_RELOADED
from app.extensions import limiter
from app.services.accounts.throttles import try_again_in
from tests.conftest import csrf_token, log_in
from tests.factories import PASSWORD, make_user

HX = {"HX-Request": "true"}
_NOT_ASCII = "Déjà traité — rien n'a changé."
_WAIT = re.compile(r"Please try again in (\d+) seconds?\.")


@pytest.fixture(scope="module")
def failing_app(app):
    """An app like the shared one, plus routes that fail in each way."""
    failing = create_app(dict(app.config))

    def boom():
        raise RuntimeError("kaboom")

    def conflict():
        raise Conflict(description=_NOT_ASCII)

    def too_many():
        raise TooManyRequests(retry_after=150)

    failing.add_url_rule("/_test/abort/<int:code>", "abort", lambda code: abort(code))
    failing.add_url_rule("/_test/boom", "boom", boom)
    failing.add_url_rule("/_test/conflict", "conflict", conflict)
    failing.add_url_rule("/_test/too-many", "too_many", too_many)
    failing.add_url_rule("/_test/limited", "limited", limiter.limit("1 per minute")(lambda: "ok"))
    failing.config["PROPAGATE_EXCEPTIONS"] = False
    return failing


@pytest.fixture
def failing_client(failing_app):
    return failing_app.test_client()


def _event(response) -> dict:
    return json.loads(response.headers["HX-Trigger"])[ERROR_EVENT]


@pytest.mark.parametrize(
    ("path", "code", "message"),
    [
        ("/_test/abort/403", 403, "You do not have access to this page."),
        ("/_test/abort/404", 404, "We could not find that page."),
        ("/_test/abort/405", 405, "That action is not available here."),
        ("/_test/boom", 500, "Something went wrong on our side."),
    ],
)
def test_an_htmx_error_answer_carries_its_message_and_is_not_swapped(
    failing_client, path, code, message
):
    fragment = failing_client.get(path, headers=HX)
    assert fragment.status_code == code
    event = _event(fragment)
    assert event["status"] == code and event["message"].startswith(message)
    assert fragment.headers["HX-Reswap"] == "none"
    assert "<html" not in fragment.get_data(as_text=True)

    page = failing_client.get(path)
    assert page.status_code == code
    assert "HX-Trigger" not in page.headers and "HX-Reswap" not in page.headers
    assert message in page.get_data(as_text=True)


def test_the_event_header_is_ascii_whatever_the_message(failing_client):
    response = failing_client.get("/_test/conflict", headers=HX)
    response.headers["HX-Trigger"].encode("ascii")
    assert _event(response) == {"message": _NOT_ASCII, "status": 409}


def test_a_429_says_when_to_try_again_with_and_without_htmx(failing_client):
    for headers in (HX, {}):
        response = failing_client.get("/_test/too-many", headers=headers)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "150"
        assert "Please try again in 3 minutes." in response.get_data(as_text=True)
    message = _event(failing_client.get("/_test/too-many", headers=HX))["message"]
    assert message == "Too many attempts. Please try again in 3 minutes."


def test_flask_limiter_429_says_when_to_try_again(failing_client):
    assert failing_client.get("/_test/limited").status_code == 200
    for headers in (HX, {}):
        response = failing_client.get("/_test/limited", headers=headers)
        assert response.status_code == 429
        wait = int(_WAIT.search(response.get_data(as_text=True)).group(1))
        assert 0 < wait <= 61
        assert 0 < int(response.headers["Retry-After"]) <= 61
    assert _WAIT.search(_event(failing_client.get("/_test/limited", headers=HX))["message"])


@pytest.mark.parametrize("hx", [False, True], ids=["page", "htmx"])
def test_a_rate_limited_login_says_when_to_try_again(client, hx):
    make_user(email="me@example.com")
    data = {"csrf_token": csrf_token(client, "/login"), "email": "me@example.com", "password": "x"}
    headers = HX if hx else {}
    statuses = [client.post("/login", data=data, headers=headers).status_code for _ in range(6)]
    assert statuses == [422] * 5 + [429]
    refused = client.post("/login", data=data, headers=headers)
    html = refused.get_data(as_text=True)
    wait = int(_WAIT.search(html).group(1))
    assert 0 < wait <= 60 and 0 < int(refused.headers["Retry-After"]) <= 60
    # The form comes back with the message in it (htmx swaps 429 forms in place).
    assert 'id="login-form"' in html and "HX-Reswap" not in refused.headers
    assert html.lstrip().startswith("<form") is hx


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0.2, "in 1 second"),
        (42, "in 42 seconds"),
        (90, "in 90 seconds"),
        (91, "in 2 minutes"),
        (120, "in 2 minutes"),
        (3599, "in 60 minutes"),
        (5400, "in 90 minutes"),
        (7200, "in 2 hours"),
    ],
)
def test_try_again_in_rounds_up(seconds, said):
    assert try_again_in(seconds) == said


def test_an_expired_htmx_form_reloads_the_page_and_says_so(client):
    csrf_token(client, "/login")  # the visitor has a session, but the form's token is stale
    data = {"csrf_token": "stale", "email": "me@example.com", "password": PASSWORD}
    response = client.post("/login", data=data, headers=HX)
    assert response.status_code == 400
    assert response.headers["HX-Refresh"] == "true"
    assert "HX-Request" in response.headers["Vary"]
    reloaded = client.get("/login").get_data(as_text=True)
    assert "This page had expired; it has been reloaded" in reloaded
    assert PAGE_RELOADED in reloaded.replace("&#8212;", "—")


def test_an_expired_form_without_javascript_is_a_400_page_with_a_link_back(client):
    data = {"csrf_token": "stale", "email": "me@example.com", "password": PASSWORD}
    own = client.post("/login", data=data, headers={"Referer": "http://localhost/login?next=/x"})
    assert own.status_code == 400
    html = own.get_data(as_text=True)
    assert "<!doctype html>" in html and "form has expired" in html
    assert '<a href="/login?next=/x">Open the form again</a>' in html
    foreign = client.post("/login", data=data, headers={"Referer": "https://evil.example/login"})
    assert '<a href="/login">Open the form again</a>' in foreign.get_data(as_text=True)
    assert "HX-Refresh" not in own.headers and "HX-Refresh" not in foreign.headers


def test_an_expired_session_on_a_signed_in_page_goes_to_the_login_page(client):
    """A signed-in page sends its token in X-CSRFToken; when the session has ended the post
    fails its CSRF check, and htmx is sent to log in, back to the page afterwards."""
    headers = {**HX, "X-CSRFToken": "stale", "HX-Current-URL": "http://localhost/account"}
    response = client.post("/account/sessions/end-others", headers=headers)
    assert response.headers["HX-Redirect"] == f"/login?next={quote('/account', safe='')}"
    assert "Please log in to see that page." in client.get("/login").get_data(as_text=True)


def test_an_htmx_request_without_a_session_comes_back_to_its_page_after_login(client):
    make_user(email="me@example.com")
    headers = {**HX, "HX-Current-URL": "http://localhost/network?node=abc"}
    response = client.get("/network/search?q=a", headers=headers)
    location = response.headers["HX-Redirect"]
    assert location == f"/login?next={quote('/network?node=abc', safe='')}"
    data = {"csrf_token": csrf_token(client, location), "email": "me@example.com"}
    logged_in = client.post(location, data={**data, "password": PASSWORD})
    assert logged_in.headers["Location"] == "/network?node=abc"


def test_a_signed_in_user_with_a_stale_htmx_form_reloads(client):
    log_in(client, make_user(email="me@example.com").email)
    response = client.post("/account/sessions/end-others", headers={**HX, "X-CSRFToken": "x"})
    assert response.status_code == 400 and response.headers["HX-Refresh"] == "true"
