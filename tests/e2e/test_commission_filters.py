"""Filters applied with HTMX live in the URL: a reload keeps them and the CSV link carries them."""

from __future__ import annotations

import csv
import io
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.conftest import screenshot
from tests.e2e.test_commission_journey import _log_in
from tests.factories import make_chain, make_sale, make_user

pytestmark = pytest.mark.browser


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_filters_pushed_to_the_url_survive_a_reload_and_reach_the_csv(live_server, page):
    root, direct, buyer = make_chain(3)
    other = make_user(referrer=root)
    make_sale(direct, "100.00", days_ago=40, external_id="tier1-available")
    make_sale(buyer, "100.00", days_ago=40, external_id="tier2-available")
    make_sale(other, "100.00", external_id="tier1-in-hold")
    _log_in(page, live_server, root.email)
    page.goto(f"{live_server}/commissions")
    assert page.locator("tr[data-commission]").count() == 3

    page.get_by_label("Status").select_option("available")  # htmx: on change
    page.wait_for_url(lambda url: _query(url).get("status") == ["available"])
    assert page.locator("tr[data-commission]").count() == 2
    page.get_by_role("spinbutton", name="Tier").fill("1")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(lambda url: _query(url).get("tier") == ["1"])
    page.locator("#commission-totals", has_text="Total of 1 commission").wait_for()
    csv_link = page.locator("#commissions-csv")
    assert _query(csv_link.get_attribute("href")) == {"status": ["available"], "tier": ["1"]}
    screenshot(page, "commission-filters-1-filtered")

    page.reload()
    assert _query(page.url) == {"status": ["available"], "tier": ["1"]}
    assert page.get_by_label("Status").input_value() == "available"
    assert page.get_by_role("spinbutton", name="Tier").input_value() == "1"
    assert page.locator("tr[data-commission]").count() == 1
    href = page.locator("#commissions-csv").get_attribute("href")
    assert _query(href) == {"status": ["available"], "tier": ["1"]}
    answer = page.request.get(f"{live_server}{href}")
    rows = list(csv.DictReader(io.StringIO(answer.text())))
    assert [(r["sale_reference"], r["status"], r["tier"]) for r in rows] == [
        ("tier1-available", "available", "1")
    ]
    screenshot(page, "commission-filters-2-reloaded")


def test_network_search_is_in_the_url_after_typing(live_server, page):
    root = make_user()
    make_user(referrer=root, username="zelda")
    make_user(referrer=root, username="yuri")
    _log_in(page, live_server, root.email)
    page.goto(f"{live_server}/network/search")
    page.get_by_label("Find someone in this network by username").fill("zel")
    page.wait_for_url(lambda url: _query(url).get("q") == ["zel"])
    page.reload()
    assert page.locator(".search-results .match").all_inner_texts() == ["zelda"]


def test_the_legend_and_the_list_fit_a_phone(live_server, page):
    root, buyer = make_chain(2)
    make_sale(buyer, "100.00", days_ago=40)
    page.set_viewport_size({"width": 360, "height": 800})
    _log_in(page, live_server, root.email)
    page.goto(f"{live_server}/commissions")
    page.get_by_text("What the statuses and dates mean").click()
    page.get_by_text("Held for review", exact=False).first.wait_for()
    screenshot(page, "commission-filters-3-legend-360")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
