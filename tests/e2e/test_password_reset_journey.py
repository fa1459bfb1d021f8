"""On a phone: forget the password, reset it from the mail that arrived over SMTP, log in;
change the email address from the account page."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import screenshot
from tests.factories import make_user
from tests.signing import run_jobs

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
_LINK = re.compile(r"http://localhost(/(?:password/reset|account/email/confirm)/\S+)")


def _path_in_mail(app, inbox, address: str) -> str:
    run_jobs(app)
    [message] = inbox.to(address)
    return _LINK.search(message.get_body(("plain",)).get_content()).group(1)


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_forget_the_password_and_reset_it_from_the_mail(app, live_server, browser, smtp_server):
    user = make_user(username="forgetful")
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        page.goto(f"{live_server}/login")
        page.get_by_role("link", name="Forgot your password?").click()
        page.get_by_label("Email").fill(user.email)
        screenshot(page, "reset-1-forgot")
        page.get_by_role("button", name="Send me a link").click()
        page.get_by_text("If an account exists for that address").wait_for()  # htmx swap
        assert _fits(page)
        screenshot(page, "reset-2-sent")

        page.goto(live_server + _path_in_mail(app, smtp_server, user.email))
        page.get_by_label("New password", exact=True).fill("short")
        page.get_by_label("Confirm new password").fill("short")
        page.get_by_role("button", name="Set password").click()
        page.get_by_text("Use at least 10 characters.").wait_for()
        page.get_by_label("New password", exact=True).fill("a-fresh-long-password")
        page.get_by_label("Confirm new password").fill("a-fresh-long-password")
        assert _fits(page)
        screenshot(page, "reset-3-new-password")
        page.get_by_role("button", name="Set password").click()
        page.wait_for_url(f"{live_server}/login")
        page.get_by_text("Your password is set").wait_for()

        page.get_by_label("Email").fill(user.email)
        page.get_by_label("Password").fill("a-fresh-long-password")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{live_server}/dashboard")
        screenshot(page, "reset-4-logged-in")
    finally:
        context.close()


def test_change_the_email_address_on_a_phone(app, live_server, browser, smtp_server):
    user = make_user(username="mover")
    context = browser.new_context(viewport={"width": 360, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{live_server}/login")
        page.get_by_label("Email").fill(user.email)
        page.get_by_label("Password").fill("correct-horse-battery")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{live_server}/dashboard")
        page.goto(f"{live_server}/account")
        assert _fits(page)
        page.get_by_label("New email address").fill(user.email)
        page.get_by_label("Current password").fill("correct-horse-battery")
        page.get_by_role("button", name="Change email").click()
        page.get_by_text("That is already your address.").wait_for()  # 422, swapped
        page.get_by_label("New email address").fill("mover-new@example.com")
        page.get_by_label("Current password").fill("correct-horse-battery")
        page.get_by_role("button", name="Change email").click()
        page.get_by_text("We sent a link to mover-new@example.com").wait_for()
        screenshot(page, "email-1-account")

        page.goto(live_server + _path_in_mail(app, smtp_server, "mover-new@example.com"))
        page.get_by_role("button", name="Use this address").click()
        page.get_by_text("Your email address is now mover-new@example.com.").wait_for()
        assert _fits(page)
        screenshot(page, "email-2-changed")
    finally:
        context.close()
