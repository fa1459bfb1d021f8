"""The reports page in a browser at phone width: it fits, the range form swaps the reports
(and shows a bad range's reason in place), and "Refresh now" answers in place, all under the
strict CSP. (Its screenshots: tests/e2e/test_layout.py.)"""

from __future__ import annotations

import pytest

from app.extensions import db
from app.services.reports.refresh import refresh_reports
from tests.e2e.test_commission_journey import _log_in
from tests.e2e.test_payouts_page import _fits
from tests.factories import make_user
from tests.web.test_admin_reports import _sales

pytestmark = pytest.mark.browser


def test_reports_at_360_px_range_swap_bad_range_and_refresh(live_server, page):
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    _sales()
    refresh_reports()
    db.session.commit()
    admin = make_user(is_admin=True)
    page.set_viewport_size({"width": 360, "height": 800})
    _log_in(page, live_server, admin.email)
    page.get_by_text("Menu", exact=True).click()  # the header's links, folded at 360 px
    page.get_by_role("link", name="Reports").click()
    page.get_by_role("heading", name="Top affiliates").wait_for()
    assert page.locator("svg.bar-chart").count() == 6
    assert _fits(page)

    page.get_by_label("Period").select_option("90")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"{live_server}/admin/reports?period=90*")
    page.get_by_text("400.00 USD").first.wait_for()
    assert _fits(page)

    page.get_by_label("Period").select_option("custom")
    page.get_by_role("button", name="Show").click()
    page.get_by_text("Give the first and the last day.").wait_for()  # the 422 swapped in
    assert [e for e in errors if "status of 422" not in e] == []

    errors.clear()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/admin/reports")
    page.get_by_role("button", name="Refresh now").click()
    page.get_by_text("the figures change as soon as a worker has run it").wait_for()
    assert page.url == f"{live_server}/admin/reports"
    assert errors == []
