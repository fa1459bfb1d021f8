"""The payouts page in a browser at phone width: the payee form through htmx, the balances,
a payout's badge polling until it is paid, its statement on screen and in print; no overflow."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.extensions import db
from app.services.money.commissions import adjust_for_refunds
from app.services.money.sales import record_refund
from app.services.payouts.payouts import complete_payout, start_processing
from tests.e2e.conftest import screenshot
from tests.e2e.test_commission_journey import _log_in
from tests.factories import make_chain, make_payout, make_sale, make_user

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


def test_balances_history_polling_and_the_statement_at_360_px(live_server, page):
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    status_requests: list[str] = []
    page.on("request", lambda r: status_requests.append(r.url) if "/status" in r.url else None)
    page.set_viewport_size({"width": 360, "height": 800})
    root, buyer = make_chain(2)
    first_sale = make_sale(buyer, "1234.00", days_ago=45, provider="stripe", external_id="pi_e2e")
    make_payout(root, complete=True)  # 123.40
    record_refund("stripe", "pi_e2e", Decimal("617.00"))  # half: 61.70 clawed back
    adjust_for_refunds(first_sale)
    db.session.commit()
    make_sale(buyer, "2468.00", days_ago=40)
    make_sale(buyer, "99.90", days_ago=2)  # pending: 9.99
    payout = make_payout(root)  # 185.10, pending: its badge polls
    _log_in(page, live_server, root.email)
    page.goto(f"{live_server}/payouts")
    assert page.locator('[data-stat="pending"]').inner_text() == "9.99 USD"
    assert page.locator("[data-available-on]").count() == 1
    badge = page.locator(f'tr[data-payout="{payout.id}"] .payout-status')
    assert badge.inner_text().strip() == "Pending"
    assert _fits(page)
    screenshot(page, "payouts-balances-360")

    start_processing(payout)
    complete_payout(payout, "tr_e2e")
    db.session.commit()
    page.locator(f'tr[data-payout="{payout.id}"] .badge-completed').wait_for(timeout=6000)
    polled = len(status_requests)
    assert polled >= 1
    page.wait_for_timeout(2500)  # the final answer (286, no trigger) stopped the polling
    assert len(status_requests) == polled

    page.get_by_role("link", name=payout.created_at.strftime("%Y-%m-%d")).first.click()
    page.wait_for_url(f"{live_server}/payouts/{payout.id}")
    assert page.locator('[data-total="payout"]').inner_text() == "185.10 USD"
    assert page.locator('[data-total="clawbacks"]').inner_text() == "-61.70 USD"
    assert page.locator('[data-line="commission"]').count() == 1
    assert page.get_by_role("button", name="Print").is_visible()  # shown by app.js
    assert _fits(page)
    screenshot(page, "payout-statement-360")
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    assert not page.get_by_role("button", name="Print").is_visible()
    assert not page.get_by_role("link", name="Download CSV").is_visible()
    assert page.locator("#statement-totals").is_visible()
    screenshot(page, "payout-statement-print")
    assert errors == []
