"""The payouts page in a browser at phone width: the payee form through htmx, no overflow."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import screenshot
from tests.e2e.test_commission_journey import _log_in
from tests.factories import make_user

pytestmark = pytest.mark.browser


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_payee_details_at_360_px_through_htmx(live_server, page):
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.set_viewport_size({"width": 360, "height": 800})
    user = make_user(username="pat")
    _log_in(page, live_server, user.email)
    page.goto(f"{live_server}/payouts")
    assert _fits(page)

    page.get_by_label("Payee name").fill("Pat Payee")
    page.get_by_label("Payee email").fill("pat@example.com")
    page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 01")
    page.get_by_role("button", name="Save payee details").click()
    page.get_by_text("check digits do not match").wait_for()  # the 422 swapped in
    page.get_by_label("IBAN").fill("DE89 3704 0044 0532 0130 00")
    page.get_by_role("button", name="Save payee details").click()
    page.get_by_text("Your payee details are saved.").wait_for()
    assert page.url == f"{live_server}/payouts"  # swapped in place, no navigation
    assert page.get_by_text("DE** **** **** **** **30 00").first.is_visible()
    page.get_by_text("Change payee details").click()
    assert page.get_by_label("IBAN").input_value() == ""
    assert _fits(page)
    # Only the 422 itself; no CSP violation or script error. Checked before the screenshot:
    # Playwright's full-page capture makes later htmx swaps report blocked inline styles.
    assert [e for e in errors if "status of 422" not in e] == []
    screenshot(page, "payouts-saved-360")
