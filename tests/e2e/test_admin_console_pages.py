"""The admin console's pages (issue 12) in a browser, with data in every table: at 360 px the
document never scrolls sideways (wide tables scroll inside their own box) and every form
control can be reached; screenshots at phone and desktop width. Without JavaScript a tier's
rate and a settings section still save as plain forms."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.jobs.queueing import get_queue
from app.models import Commission, ReferralFlag
from app.services.accounts.moderation import set_suspended
from app.services.program.program import get_settings, list_tiers
from app.services.reports.refresh import refresh_reports
from tests.e2e.conftest import screenshot, unreachable_controls
from tests.e2e.test_commission_journey import _log_in
from tests.e2e.test_payouts_page import _fits
from tests.factories import make_payout, make_sale, make_user
from tests.signing import run_jobs
from tests.web.test_admin_health import _parked
from tests.web.test_admin_health_panels import fail_loudly

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 800}
DESKTOP = {"width": 1280, "height": 800}
SIMULATED = "/admin/tiers/simulate?max_tier=3&days=90&rate_1=12&rate_2=5&rate_3=2.5"

# The pages screenshotted at 360 px and at desktop width (console-<name>-360.png and
# console-<name>-desktop.png), and checked at 360 px with the others below.
SCREENSHOT_PAGES = {
    "settings": "/admin/settings",
    "tiers": SIMULATED,
    "reports": "/admin/reports",
    "health": "/admin/health",
    "audit": "/admin/audit",
}

# Panels HTMX loads after the page (hx-trigger="load"), gone once they have all arrived.
_LOADING = '[hx-trigger="load"], .htmx-request'
# Stacked tables (one block per row on a phone) fit their box: nothing to scroll sideways.
_STACKED_TOO_WIDE = """() => [...document.querySelectorAll('table.stack')]
  .filter((table) => table.parentElement.scrollWidth > table.parentElement.clientWidth).length"""


def _console_data(app) -> dict[str, str]:
    """An earner with an upline, commissions, a flag, a payout and audit entries; a parked
    provider event and a failed job. The paths of the pages that show them."""
    tessa = make_user(username="tessa")
    dina = make_user(referrer=tessa, username="dina")
    bruce = make_user(referrer=dina, username="bruce")
    make_sale(bruce, "1234.56", days_ago=40, provider="stripe", external_id="pi_3PqLongPaymentId")
    make_sale(bruce, "99.90", days_ago=2)
    make_payout(dina, method="lemon_squeezy")
    db.session.add(ReferralFlag(referred_user_id=bruce.id, referrer_id=dina.id, reason="same_ip"))
    boss = make_user(username="boss", is_admin=True)
    set_suspended(dina, True, boss, "Checking a chargeback with the payment provider")
    set_suspended(dina, False, boss, "The chargeback was the bank's mistake")
    _parked()
    db.session.commit()
    get_queue().enqueue(fail_loudly, "e2e")
    run_jobs(app)
    refresh_reports()
    db.session.commit()
    commission = db.session.scalars(select(Commission.id).where(Commission.user_id == dina.id))
    return {
        "email": boss.email,
        "user": f"/admin/users/{dina.id}",
        "commission": f"/admin/commissions/{commission.first()}",
    }


def _open(page, url: str) -> None:
    assert page.goto(url).status == 200, url
    page.locator(_LOADING).first.wait_for(state="detached")


def _phone_problems(page) -> list[str]:
    problems = unreachable_controls(page)
    if not _fits(page):
        problems.append(f"{page.evaluate('document.documentElement.scrollWidth')} px wide")
    if page.evaluate(_STACKED_TOO_WIDE):
        problems.append("a stacked table scrolls sideways")
    return problems


def test_every_admin_page_fits_360_px_with_every_control_reachable(app, live_server, page):
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    paths = _console_data(app)
    _log_in(page, live_server, paths["email"])
    # Each page, and what it shows with its data (so it is measured with its data).
    pages = {path: "main" for path in SCREENSHOT_PAGES.values()} | {
        "/admin/settings": "#settings-payouts select",
        "/admin/tiers": "#tiers tbody tr",
        SIMULATED: "#simulator td",
        paths["user"]: "tr[data-flag], tr[data-payout], tr[data-audit]",
        "/admin/commissions": "tr[data-commission]",
        paths["commission"]: "#tier-path li, tr[data-entry]",
        "/admin/reports": "svg.bar-chart rect",
        "/admin/audit": "tr[data-audit]",
        "/admin/health": 'tr[id^="parked-"]',
        "/admin/health/database": "#health-database table",
        "/admin/health/queues": 'tr[id^="failed-"]',
    }
    page.set_viewport_size(PHONE)
    problems = {}
    for path, shows in pages.items():
        _open(page, live_server + path)
        assert page.locator(shows).count() > 0, path
        if found := _phone_problems(page):
            problems[path] = found
    assert problems == {}
    for name, path in SCREENSHOT_PAGES.items():
        for label, size in (("360", PHONE), ("desktop", DESKTOP)):
            page.set_viewport_size(size)
            _open(page, live_server + path)
            screenshot(page, f"console-{name}-{label}")
    assert errors == []


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
