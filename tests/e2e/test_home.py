from __future__ import annotations

import pytest

from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.browser


def test_home_page_renders_with_htmx_loaded(live_server, page):
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(live_server + "/")
    assert page.get_by_role("heading", name="How commissions work").is_visible()
    assert page.evaluate("typeof htmx !== 'undefined' && htmx.version.startsWith('2.0.')")
    path = screenshot(page, "home")
    assert path.stat().st_size > 1000
    assert errors == []  # no CSP violations or script errors


def test_a_checkbox_sits_beside_its_label(live_server, page):
    page.goto(live_server + "/login")
    box = page.get_by_label("Remember me").bounding_box()
    label = page.locator("label[for=remember]").bounding_box()
    assert label["x"] > box["x"] + box["width"]  # to its right ...
    assert label["y"] < box["y"] + box["height"] and box["y"] < label["y"] + label["height"]
