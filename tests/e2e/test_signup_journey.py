"""A new user arrives through a shared link, joins, and shares their own link."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import User
from tests.e2e.conftest import screenshot
from tests.factories import make_user

pytestmark = pytest.mark.browser


def test_new_user_joins_through_a_shared_link(live_server, browser):
    sharer = make_user(username="sharer")
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        page.goto(f"{live_server}/r/{sharer.referral_code}")
        assert page.get_by_role("heading", name="sharer invited you").is_visible()
        screenshot(page, "journey-1-landing")
        page.get_by_role("link", name="Join now").click()

        assert page.get_by_label("Referral code").input_value() == sharer.referral_code
        page.get_by_label("Username").fill("newcomer")
        page.get_by_label("Email").fill("newcomer@example.com")
        page.get_by_label("Password", exact=True).fill("short")
        page.get_by_label("Confirm password").fill("short")
        page.get_by_label("I have read and accept the program terms").check()
        page.get_by_role("button", name="Create my account").click()
        page.get_by_text("Use at least 10 characters.").wait_for()  # swapped in by htmx (422)
        screenshot(page, "journey-2-errors")

        page.get_by_label("Password", exact=True).fill("a-good-long-password")
        page.get_by_label("Confirm password").fill("a-good-long-password")
        page.get_by_role("button", name="Create my account").click()
        page.wait_for_url(f"{live_server}/dashboard")
        assert page.get_by_role("heading", name="Hello, newcomer").is_visible()
        checklist = page.locator("#checklist")
        assert "(1 of 4 done)" in checklist.inner_text()  # the terms, accepted when joining
        screenshot(page, "journey-3-dashboard")
        # With JavaScript the checklist's button copies the link and records it (htmx).
        checklist.get_by_role("button", name="Copy").click()
        page.locator("#step-copy.done").wait_for()
        assert "(2 of 4 done)" in page.locator("#checklist").inner_text()

        page.get_by_role("link", name="My link").click()
        page.get_by_role("button", name="Copy").click()
        page.get_by_role("button", name="Copied").wait_for()
        newcomer = db.session.scalars(select(User).where(User.username == "newcomer")).one()
        expected = f"http://localhost/r/{newcomer.referral_code}"
        assert page.evaluate("navigator.clipboard.readText()") == expected
        assert newcomer.referred_by == sharer.id
        qr = page.get_by_role("img", name="QR code for your referral link")
        qr.wait_for()
        # Loaded and decoded (waited for: on a busy machine the image comes after the page).
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=qr.element_handle()
        )

        page.get_by_role("link", name="Last 7 days").click()
        page.wait_for_url("**/link?days=7")
        assert page.locator(".periods [aria-current=true]").inner_text() == "Last 7 days"
        screenshot(page, "journey-4-link")
    finally:
        context.close()
