"""A new affiliate gets paid, end to end, in a browser: onboards with the (fake) Stripe,
requests a payout, and watches a real worker process send it until the badge says Paid,
without reloading; the admin sees it in the queue, and the statement lists its commissions."""

from __future__ import annotations

import os
import signal

import pytest

from tests.e2e.conftest import screenshot
from tests.e2e.test_commission_journey import _log_in
from tests.e2e.test_payouts_page import _fits
from tests.factories import make_sale, make_user
from tests.payout_sending import worker_process

pytestmark = pytest.mark.browser


def test_a_new_affiliate_is_paid_and_the_admin_sees_it(public_base_url, page, app, fake_stripe):
    live_server = public_base_url
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.set_viewport_size({"width": 360, "height": 800})
    nora = make_user(username="nora")
    buyer = make_user(referrer=nora, username="ben")
    make_sale(buyer, "450.00", days_ago=40)  # past the hold: 45.00 available
    make_sale(buyer, "250.00", days_ago=35)  # 25.00 more
    admin = make_user(username="boss", is_admin=True)

    _log_in(page, live_server, nora.email)
    page.goto(f"{live_server}/payouts")
    page.get_by_label("Country of your bank account").select_option("US")
    page.get_by_role("button", name="Set up payouts with Stripe").click()
    page.wait_for_url(f"{live_server}/payouts")
    page.get_by_text("Your Stripe account is ready to receive payouts.").wait_for()

    worker = worker_process(app, fake_stripe, burst=False)
    try:
        page.get_by_label("Paid by").select_option("stripe")
        page.get_by_role("button", name="Request payout").click()
        badge = page.locator("tr[data-payout] .payout-status").first
        badge.wait_for()
        screenshot(page, "payout-journey-1-requested-360")
        # The worker sends it; the badge polls and turns to Paid on its own.
        page.locator("tr[data-payout] .badge-completed").wait_for(timeout=30_000)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    (transfer,) = fake_stripe.transfers()
    assert transfer["amount"] == 7000 and transfer["currency"] == "usd"
    assert page.locator('[data-stat="available"]').inner_text() == "0.00 USD"
    assert _fits(page)
    screenshot(page, "payout-journey-2-paid-360")

    page.locator("tr[data-payout] a").first.click()
    page.wait_for_url(f"{live_server}/payouts/*")
    assert page.locator('[data-line="commission"]').count() == 2
    assert page.locator('[data-total="payout"]').inner_text() == "70.00 USD"
    assert page.locator('[data-statement="reference"]').inner_text() == transfer["id"]
    screenshot(page, "payout-journey-3-statement-360")

    page.set_viewport_size({"width": 1280, "height": 900})
    _log_in(page, live_server, admin.email)
    page.goto(f"{live_server}/admin/payouts")
    row = page.locator("tr", has_text="nora")
    assert "completed" in row.inner_text()
    screenshot(page, "payout-journey-4-admin-queue")
    row.get_by_role("link").first.click()
    page.wait_for_url(f"{live_server}/admin/payouts/*")
    assert page.locator('[data-line="commission"]').count() == 2
    assert transfer["id"] in page.content()
    screenshot(page, "payout-journey-5-admin-payout")
    assert [e for e in errors if "status of 422" not in e] == []
