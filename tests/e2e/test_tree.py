"""An affiliate explores their downline: expand, show more, collapse, keyboard, search."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.e2e.conftest import screenshot
from tests.factories import make_user

pytestmark = pytest.mark.browser


def _log_in(page, live_server: str, email: str) -> None:
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server}/dashboard")


def test_affiliate_explores_and_searches_the_tree(live_server, page):
    viola = make_user(username="viola")
    amber = make_user(referrer=viola, username="amber")
    bruno = make_user(referrer=amber, username="bruno")
    for n in range(59):
        make_user(referrer=amber, username=f"fan{n:02d}")
    celia = make_user(referrer=bruno, username="celia")

    tree_requests = []
    page.on("request", lambda r: "/network?" in r.url and tree_requests.append(r.url))
    _log_in(page, live_server, viola.email)
    page.get_by_role("link", name="Network").click()
    tree = page.get_by_role("tree")
    root, amber_item = page.locator(f"#node-{viola.id}"), page.locator(f"#node-{amber.id}")
    assert root.get_attribute("aria-expanded") == "true"
    assert amber_item.get_attribute("aria-level") == "2"

    amber_item.locator("[data-toggle]").first.click()
    amber_group = page.locator(f"#children-{amber.id}")
    amber_group.locator(f"#node-{bruno.id}").wait_for()
    assert amber_item.get_attribute("aria-expanded") == "true"
    assert amber_group.locator(':scope > [role="treeitem"][id]').count() == 50

    page.locator(f"#node-{bruno.id} [data-toggle]").first.click()
    page.locator(f"#node-{celia.id}").wait_for()
    assert page.locator(f"#node-{celia.id}").get_attribute("aria-level") == "4"
    screenshot(page, "tree-1-three-levels")

    amber_group.get_by_role("link", name="Show more").click()
    amber_group.locator(':scope > [role="treeitem"][id]').nth(59).wait_for()
    assert amber_group.locator(':scope > [role="treeitem"][id]').count() == 60
    assert amber_group.get_by_role("link", name="Show more").count() == 0
    screenshot(page, "tree-2-show-more")

    # Collapsing hides the children without asking the server again.
    requests_before = len(tree_requests)
    amber_item.locator("[data-toggle]").first.click()
    assert amber_item.get_attribute("aria-expanded") == "false"
    assert not amber_group.is_visible()
    amber_item.locator("[data-toggle]").first.click()
    assert amber_group.is_visible()
    assert len(tree_requests) == requests_before

    # Keyboard: the tree is one tab stop; arrows move and open and close.
    root.focus()
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.id") == f"node-{amber.id}"
    page.keyboard.press("ArrowLeft")
    assert amber_item.get_attribute("aria-expanded") == "false"
    page.keyboard.press("ArrowRight")
    assert amber_item.get_attribute("aria-expanded") == "true"
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == f"node-{bruno.id}"
    assert tree.locator('[role="treeitem"][tabindex="0"]').count() == 1

    page.get_by_label("Find someone in this network by username").fill("cel")
    path = page.get_by_role("list", name="Path to celia")
    path.wait_for()
    assert path.get_by_role("link").all_inner_texts() == ["viola", "amber", "bruno", "celia"]
    screenshot(page, "tree-3-search")
    path.get_by_role("link", name="bruno").click()
    page.wait_for_url(f"{live_server}/network?node={bruno.id}")
    assert page.locator(f"#node-{bruno.id}").get_attribute("aria-expanded") == "true"
    assert page.locator(f"#node-{celia.id}").is_visible()
    screenshot(page, "tree-4-opened-at-bruno")
