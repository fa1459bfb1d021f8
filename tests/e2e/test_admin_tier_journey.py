"""An admin raises tier 1's rate in a browser: types it into the tier's row and watches the
what-if simulator beside the editor follow the draft, saves the row (HTMX swaps it), records
a sale, and finds the new rate on the commission it accrued, in the list and on its receipt."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot
from tests.e2e.test_commission_journey import _log_in
from tests.factories import make_sale, make_user
from tests.signing import run_jobs

pytestmark = pytest.mark.browser


def _rows(table) -> list[list[str]]:
    """The text of each body row's cells (its header cell first) of a table's locator."""
    rows = table.locator("tbody tr").all()
    return [[text.strip() for text in row.locator("th, td").all_inner_texts()] for row in rows]


def test_a_new_tier_rate_tried_saved_and_paid_on_the_next_sale(app, live_server, page):
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    admin = make_user(username="boss", is_admin=True)
    tessa = make_user(username="tessa")
    dina = make_user(referrer=tessa, username="dina")
    bruce = make_user(referrer=dina, username="bruce")
    make_sale(bruce, "200.00", days_ago=3)  # paid 10 % (20.00) to dina, 5 % (10.00) to tessa

    _log_in(page, live_server, admin.email)
    page.goto(f"{live_server}/admin/tiers")
    row = page.locator("#tiers tbody tr").first
    simulator = page.locator("#simulator")
    row.get_by_label("Tier 1 rate (%)").fill("12")  # the simulator follows the row's draft
    simulator.get_by_text("Last 30 days: 200.00 USD of sales").wait_for()
    assert simulator.get_by_label("Draft tier 1 rate (%)", exact=True).input_value() == "12"
    assert _rows(simulator.locator("table").nth(0)) == [
        ["Tier 1", "20.00 USD", "24.00 USD", "4.00 USD"],
        ["Tier 2", "10.00 USD", "10.00 USD", "0.00 USD"],
        ["Total", "30.00 USD", "34.00 USD", "4.00 USD"],
        ["Share of revenue paid out", "15.00 %", "17.00 %", ""],
    ]
    assert _rows(simulator.locator("table").nth(1)) == [
        ["dina", "20.00 USD", "24.00 USD", "4.00 USD"]  # tessa's tier 2 is unchanged
    ]
    assert row.get_by_label("Tier 1 rate (%)").input_value() == "12"  # the draft row kept
    screenshot(page, "tier-journey-1-simulated")

    row.evaluate("row => { row.dataset.before = 'save'; }")
    row.get_by_role("button", name="Save tier 1").click()
    row.get_by_text("Saved.").wait_for()
    assert row.get_attribute("data-before") is None  # a new row in its place
    assert row.get_by_label("Tier 1 rate (%)").input_value() == "12"
    # ... and no new page: the simulator still shows the draft's figures.
    assert simulator.get_by_text("Last 30 days: 200.00 USD of sales").is_visible()
    screenshot(page, "tier-journey-2-saved")

    page.goto(f"{live_server}/admin/sales/new")
    page.get_by_label("Buyer (username or email)").fill("bruce")
    page.get_by_label("Amount paid").fill("250.00")
    page.get_by_role("button", name="Record sale").click()
    page.wait_for_url(f"{live_server}/admin/sales")
    run_jobs(app)  # the worker accrues the sale

    page.goto(f"{live_server}/admin/commissions")
    page.get_by_label("Tier", exact=True).fill("1")
    page.get_by_label("Tier", exact=True).press("Enter")
    expect(page.locator("tr[data-commission]")).to_have_count(2)  # tier 2's are filtered out
    listed = [cells[1:5] for cells in _rows(page.locator("table.commissions"))]
    assert listed == [
        ["dina", "bruce", "1", "30.00 USD"],  # 12 % of 250.00, the new sale first
        ["dina", "bruce", "1", "20.00 USD"],  # 10 % of 200.00: accrued before, unchanged
    ]
    screenshot(page, "tier-journey-3-commissions")

    page.locator("tr[data-commission]").first.get_by_role("link").click()
    page.wait_for_url(f"{live_server}/admin/commissions/*")
    assert page.locator('[data-receipt="amount"]').inner_text() == "30.00 USD"
    terms = page.locator('[data-receipt="terms"]').inner_text()
    assert terms == "Tier 1 at 12 % of 250.00 USD (excluding tax) = 30.00 USD."
    path = page.locator("#tier-path li").all_inner_texts()
    assert path == ["bruce (buyer)", "tier 1: dina"]
    assert page.locator('tr[data-entry="accrual"] td').nth(2).inner_text() == "30.00 USD"
    screenshot(page, "tier-journey-4-receipt")
    assert errors == []
