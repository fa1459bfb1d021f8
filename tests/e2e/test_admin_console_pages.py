"""The admin console without JavaScript: a tier's rate and a settings section still save as
plain forms. (Its pages at 360 and 1280 px: tests/e2e/test_layout.py.)"""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.services.program.program import get_settings, list_tiers
from tests.e2e.test_commission_journey import _log_in
from tests.factories import make_user

pytestmark = pytest.mark.browser


def test_without_javascript_a_tier_rate_and_a_settings_section_save(browser, live_server):
    boss = make_user(username="boss", is_admin=True)
    tier_2 = next(tier for tier in list_tiers() if tier.level == 2)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        _log_in(page, live_server, boss.email)
        page.goto(f"{live_server}/admin/tiers")
        page.locator("#tiers").get_by_label("Tier 2 rate (%)").fill("4.5")
        page.get_by_role("button", name="Save tier 2").click()
        page.wait_for_url(f"{live_server}/admin/tiers")
        expect(page.get_by_text("Tier 2: Saved.")).to_be_visible()
        assert page.locator("#tiers").get_by_label("Tier 2 rate (%)").input_value() == "4.5"

        page.goto(f"{live_server}/admin/settings")
        page.get_by_label("Minimum payout").fill("25.50")
        page.get_by_role("button", name="Save payouts").click()
        page.wait_for_url(f"{live_server}/admin/settings")
        expect(page.get_by_text("Payouts: Saved.")).to_be_visible()
    finally:
        context.close()
    db.session.rollback()
    assert tier_2.commission_rate == Decimal("0.045")
    assert get_settings().min_payout_amount == Decimal("25.50")
