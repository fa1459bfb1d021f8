"""A new affiliate sets up Stripe payouts in a browser at phone width, against the fake
Stripe: start, Stripe's (fake) onboarding page, back on /payouts, ready."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import screenshot
from tests.e2e.test_commission_journey import _log_in
from tests.e2e.test_payouts_page import _fits
from tests.factories import make_user

pytestmark = pytest.mark.browser


def test_a_new_affiliate_onboards_with_stripe_at_360_px(public_base_url, page, fake_stripe):
    live_server = public_base_url
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.set_viewport_size({"width": 360, "height": 800})
    user = make_user(username="sam")
    _log_in(page, live_server, user.email)
    page.goto(f"{live_server}/payouts")
    assert _fits(page)

    page.get_by_role("button", name="Set up payouts with Stripe").click()
    page.get_by_text("Choose the country of your bank account from the list.").wait_for()
    page.get_by_label("Country of your bank account").select_option("IE")
    page.get_by_role("button", name="Set up payouts with Stripe").click()
    # htmx sends the page to the fake's onboarding link, which comes back to our return route.
    page.wait_for_url(f"{live_server}/payouts")
    page.get_by_text("Your Stripe account is ready to receive payouts.").wait_for()
    assert page.get_by_text("Ready to receive payouts", exact=True).is_visible()
    assert page.locator('[data-stripe="country"]').inner_text() == "Ireland"
    (account,) = fake_stripe.accounts()
    assert account["country"] == "IE" and account["payouts_enabled"] is True
    assert _fits(page)
    assert [e for e in errors if "status of 422" not in e] == []
    screenshot(page, "stripe-onboarded-360")
