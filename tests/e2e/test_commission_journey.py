"""An admin records a sale; the worker accrues; each of the three uplines sees their share."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import screenshot
from tests.factories import make_user
from tests.signing import run_jobs

pytestmark = pytest.mark.browser


def _log_in(page, live_server: str, email: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server}/dashboard")


def test_admin_sale_reaches_three_tiers_of_uplines(app, live_server, page):
    admin = make_user(username="boss", is_admin=True)
    top = make_user(username="tessa")
    middle = make_user(referrer=top, username="milo")
    direct = make_user(referrer=middle, username="dina")
    buyer = make_user(referrer=direct, username="bruce")

    _log_in(page, live_server, admin.email)
    page.goto(f"{live_server}/admin/sales/new")
    page.get_by_label("Buyer (username or email)").fill(buyer.username)
    page.get_by_label("Amount paid").fill("400.00")
    page.get_by_role("button", name="Record sale").click()
    page.wait_for_url(f"{live_server}/admin/sales")
    page.get_by_text("Sale recorded for bruce").wait_for()
    assert page.get_by_text("waiting for the worker").is_visible()
    screenshot(page, "commission-1-sale-recorded")

    run_jobs(app)  # the worker
    page.reload()
    assert page.get_by_role("cell", name="accrued").is_visible()

    expected = {direct: ("1", "40.00 USD"), middle: ("2", "20.00 USD"), top: ("3", "10.00 USD")}
    for user, (tier, amount) in expected.items():
        _log_in(page, live_server, user.email)
        page.get_by_role("link", name="Commissions").click()
        row = page.locator("tr[data-commission]")
        assert row.count() == 1
        cells = row.first.locator("td").all_inner_texts()
        assert cells[2:4] == ["bruce", tier]
        assert cells[6] == amount
        assert page.locator('[data-stat="pending"]').count() == 0  # that is the dashboard's
        page.get_by_role("link", name="Dashboard").click()
        assert page.locator('[data-stat="pending"]').inner_text() == amount
        screenshot(page, f"commission-2-tier-{tier}-dashboard")
    page.goto(f"{live_server}/commissions")
    assert page.locator("svg.bar-chart rect").count() == 1
    screenshot(page, "commission-3-chart")
