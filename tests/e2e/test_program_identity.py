"""The program's identity in a browser: an admin names the program, uploads an SVG logo
(through htmx) and picks an accent colour; the header shows the logo and name, buttons take
the colour from the theme stylesheet (no inline style, nothing refused by the CSP), and the
shared link's page says what is offered at 390 px. A bad upload shows its reason."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import screenshot
from tests.e2e.test_commission_journey import _log_in
from tests.e2e.test_payouts_page import _fits
from tests.factories import make_user
from tests.images import svg

pytestmark = pytest.mark.browser


def test_an_admin_brands_the_program_and_a_visitor_sees_it(live_server, page, tmp_path):
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    make_user(username="boss", email="boss@example.com", is_admin=True)
    sharer = make_user(username="sharer")
    _log_in(page, live_server, "boss@example.com")
    page.goto(f"{live_server}/admin/settings")

    identity = page.locator("#settings-identity")
    identity.get_by_label("Program name").fill("Acme Partners")
    identity.get_by_label("Product name").fill("Acme Notes")
    identity.get_by_label("Product web address").fill("https://acme.example/notes")
    identity.get_by_label("Accent colour").fill("#1a5c3b")
    identity.get_by_role("button", name="Save program identity").click()
    page.locator("#settings-identity [role=status]").wait_for()

    bad = tmp_path / "logo.png"
    bad.write_bytes(svg("<script>alert(1)</script>"))
    page.get_by_label("Upload a logo").set_input_files(str(bad))
    page.get_by_role("button", name="Upload logo").click()
    page.get_by_text("a <script> element is not allowed").wait_for()  # 422, swapped by htmx

    good = tmp_path / "logo.svg"
    good.write_bytes(svg())
    page.get_by_label("Upload a logo").set_input_files(str(good))
    page.get_by_role("button", name="Upload logo").click()
    page.get_by_text("Logo saved.").wait_for()

    page.context.clear_cookies()
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{live_server}/r/{sharer.referral_code}")
    assert page.title() == "You're invited · Acme Partners"
    brand = page.locator("a.brand")
    assert brand.inner_text().strip() == "Acme Partners"
    assert brand.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.get_by_role("link", name="Acme Notes").get_attribute("href") == (
        "https://acme.example/notes"
    )
    join = page.get_by_role("link", name="Join now")
    assert join.evaluate("a => getComputedStyle(a).backgroundColor") == "rgb(26, 92, 59)"
    assert _fits(page)
    screenshot(page, "identity-landing-390")
    # Only the refused upload's answer; nothing refused by the CSP, no script error.
    assert [e for e in errors if "status of 422" not in e] == []
