"""No HTMX action fails silently: error answers and unreachable servers show a message, a
rate-limited login says when to try again, an expired form reloads and then submits, an
ended session goes to the login page."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import screenshot
from tests.factories import make_user

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}


def _log_in(page, live_server: str, email: str) -> None:
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server}/dashboard")


def _probe(page, url: str):
    """A button on the page that asks for ``url`` with hx-get (as a tree node or a filter
    does)."""
    page.evaluate(
        """(url) => {
          const button = document.createElement('button');
          button.id = 'probe';
          button.textContent = 'Probe';
          button.setAttribute('hx-get', url);
          button.setAttribute('hx-target', '#main');
          document.querySelector('main').prepend(button);
          htmx.process(button);
        }""",
        url,
    )
    return page.locator("#probe")


def _toast(page):
    return page.locator(".toasts .toast")


def test_a_404_to_an_htmx_request_shows_the_servers_message(live_server, browser):
    make_user(email="me@example.com")
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        _log_in(page, live_server, "me@example.com")
        probe = _probe(page, "/no/such/fragment")
        before = page.locator("main").inner_html()
        probe.click()
        toast = _toast(page)
        toast.wait_for()
        assert "We could not find that page" in toast.inner_text()
        region = page.get_by_role("alert").filter(has_text="We could not find that page")
        assert region.get_attribute("class") == "toasts"  # a live region: read out as it comes
        box = toast.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert page.locator("main").inner_html() == before  # nothing swapped
        screenshot(page, "errors-1-toast-404-360px")
        toast.get_by_role("button", name="Dismiss this message").click()
        assert _toast(page).count() == 0
    finally:
        context.close()


def test_unreachable_server_and_foreign_errors_show_a_message(live_server, page):
    make_user(email="me@example.com")
    _log_in(page, live_server, "me@example.com")
    page.route("**/offline", lambda route: route.abort("internetdisconnected"))
    _probe(page, "/offline").click()
    _toast(page).filter(has_text="Could not reach the server").wait_for()

    page.route("**/behind-a-proxy", lambda route: route.fulfill(status=502, body="Bad gateway"))
    page.locator("#probe").evaluate("(b) => b.remove()")
    _probe(page, "/behind-a-proxy").click()
    _toast(page).filter(has_text="error 502").wait_for()
    assert _toast(page).count() == 2


def test_a_rate_limited_login_says_when_to_try_again(live_server, page):
    make_user(email="me@example.com")
    page.goto(f"{live_server}/login")
    for _ in range(6):
        page.get_by_label("Email").fill("me@example.com")
        page.get_by_label("Password").fill("wrong-password")
        with page.expect_response(f"{live_server}/login"):
            page.get_by_role("button", name="Log in").click()
    message = page.locator("#login-form .form-error")
    assert re.fullmatch(
        r"Too many attempts\. Please try again in \d+ seconds?\.", message.inner_text()
    )
    assert message.is_visible()
    screenshot(page, "errors-2-rate-limited-login")


def test_an_expired_form_reloads_with_a_fresh_token_and_then_submits(live_server, page):
    make_user(email="me@example.com")
    page.goto(f"{live_server}/login")
    page.context.clear_cookies()  # the session (and the form's token with it) is gone
    page.get_by_label("Email").fill("me@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("This page had expired; it has been reloaded").wait_for()
    assert page.url == f"{live_server}/login"
    screenshot(page, "errors-3-expired-form-reloaded")
    page.get_by_label("Email").fill("me@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server}/dashboard")


def test_an_ended_session_sends_an_htmx_request_to_the_login_page(live_server, page):
    make_user(email="me@example.com")
    _log_in(page, live_server, "me@example.com")
    page.goto(f"{live_server}/network")
    page.context.clear_cookies()
    _probe(page, "/network/search?q=a").click()
    page.wait_for_url(re.compile(r"/login\?next="))
    assert page.get_by_text("Please log in to see that page.").is_visible()
    page.get_by_label("Email").fill("me@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server}/network")
