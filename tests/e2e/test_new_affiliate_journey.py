"""A new affiliate on a phone, from a shared link to a password reset: read what is offered,
accept the terms, register, follow the first-session checklist until it is gone, forget the
password, reset it from the mail that arrived over SMTP, log in. A screenshot of each step
(test-artifacts/new-affiliate-*.png, 390 px wide)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import User
from app.services.program.settings import parse_section, save_section
from tests.e2e.conftest import screenshot
from tests.factories import make_user
from tests.signing import run_jobs

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
PASSWORD = "a-good-long-password"
_RESET_LINK = re.compile(r"http://localhost(/password/reset/\S+)")


def _step(page, name: str) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
    screenshot(page, f"new-affiliate-{name}")


def _brand_the_program() -> None:
    form = {
        "program_name": "Acme Partners",
        "program_description": "Recommend Acme Notes and earn on every payment.",
        "product_name": "Acme Notes",
        "product_url": "https://acme.example/notes",
        "accent_color": "",
    }
    save_section("identity", parse_section("identity", form), actor_id=None)
    db.session.commit()


def _own_code() -> str:
    db.session.rollback()  # a fresh snapshot: the live server made the account
    return db.session.scalars(select(User.referral_code).where(User.username == "newcomer")).one()


def test_a_new_affiliate_joins_on_a_phone_and_resets_the_password(
    app, live_server, browser, smtp_server
):
    _brand_the_program()
    sharer = make_user(username="sharer")
    phone = browser.new_context(viewport=PHONE)
    friend = browser.new_context(viewport=PHONE)
    page = phone.new_page()
    try:
        # The shared link says what is offered and what a referrer earns.
        page.goto(f"{live_server}/r/{sharer.referral_code}")
        offer = page.locator("#offer")
        assert offer.get_by_role("heading", name="sharer invited you to Acme Partners").is_visible()
        assert offer.get_by_role("link", name="Acme Notes").is_visible()
        assert re.search(r"You earn \d+(\.\d+)? % of every payment", offer.inner_text())
        assert page.title().endswith("Acme Partners")
        _step(page, "1-offer")

        page.get_by_role("link", name="Program terms").click()
        page.wait_for_url(f"{live_server}/terms")
        _step(page, "2-terms")
        page.go_back()

        # Registration needs the terms accepted; one round of errors shows them all.
        page.get_by_role("link", name="Join now").click()
        page.get_by_label("Username").fill("newcomer")
        page.get_by_label("Email").fill("newcomer@example.com")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Confirm password").fill(PASSWORD)
        page.get_by_role("button", name="Create my account").click()
        page.get_by_text("Accept the program terms to join.").wait_for()  # 422, swapped by htmx
        _step(page, "3-terms-required")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Confirm password").fill(PASSWORD)
        page.get_by_label("I have read and accept the program terms").check()
        _step(page, "4-register")
        page.get_by_role("button", name="Create my account").click()
        page.wait_for_url(f"{live_server}/dashboard")

        # The checklist: the terms are done at sign-up; the rest tick from what really happens.
        checklist = page.locator("#checklist")
        assert "(1 of 4 done)" in checklist.inner_text()
        _step(page, "5-checklist")
        checklist.get_by_role("button", name="Copy").click()
        page.locator("#step-copy.done").wait_for()

        friend.new_page().goto(f"{live_server}/r/{_own_code()}")  # someone opens the link
        page.reload()
        assert page.locator("#step-share.done").is_visible()
        assert "(3 of 4 done)" in page.locator("#checklist").inner_text()
        _step(page, "6-shared")

        page.get_by_role("link", name="Tell us where to pay you").click()
        page.wait_for_url(f"{live_server}/payouts")
        page.get_by_label("Payee name").fill("New Comer")
        page.get_by_label("Payee email").fill("newcomer@example.com")
        page.get_by_label("PayPal address").fill("newcomer@example.com")
        page.get_by_role("button", name="Save payee details").click()
        page.get_by_text("Your payee details are saved.").wait_for()
        _step(page, "7-payouts")
        page.goto(f"{live_server}/dashboard")
        assert page.locator("#checklist").count() == 0  # every step done: the guide is gone
        _step(page, "8-checklist-done")

        # Log out from the phone's menu, forget the password, reset it from the mail.
        page.locator("details.menu > summary").click()
        page.get_by_role("button", name="Log out").click()
        page.goto(f"{live_server}/login")
        page.get_by_role("link", name="Forgot your password?").click()
        page.get_by_label("Email").fill("newcomer@example.com")
        page.get_by_role("button", name="Send me a link").click()
        page.get_by_text("If an account exists for that address").wait_for()
        _step(page, "9-forgot")

        run_jobs(app)
        mail = next(m for m in smtp_server.to("newcomer@example.com") if "password" in m["Subject"])
        assert "Acme Partners" in mail.get_body(("plain",)).get_content()
        assert mail.get_body(("html",)) is not None
        path = _RESET_LINK.search(mail.get_body(("plain",)).get_content()).group(1)
        page.goto(live_server + path)
        page.get_by_label("New password", exact=True).fill("a-fresh-long-password")
        page.get_by_label("Confirm new password").fill("a-fresh-long-password")
        _step(page, "10-new-password")
        page.get_by_role("button", name="Set password").click()
        page.wait_for_url(f"{live_server}/login")

        page.get_by_label("Email").fill("newcomer@example.com")
        page.get_by_label("Password").fill("a-fresh-long-password")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{live_server}/dashboard")
        _step(page, "11-logged-in")
    finally:
        phone.close()
        friend.close()
