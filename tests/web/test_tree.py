"""The tree pages: full pages without HTMX, fragments with it, 404 outside the downline."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event

from app.extensions import db
from tests.conftest import log_in
from tests.factories import make_chain, make_user

HX = {"HX-Request": "true"}
_ITEM = re.compile(r'<li role="treeitem" id="node-([^"]+)"')
_MORE = re.compile(r'class="show-more"[^>]*>\s*<a href="([^"]+)"')


def _items(html: str) -> list[str]:
    return _ITEM.findall(html)


@pytest.mark.parametrize("path", ["/network", "/network/search?q=a"])
def test_tree_pages_need_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_an_htmx_request_without_a_session_reloads_into_the_login_page(client):
    response = client.get("/network?node=abc", headers=HX)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].startswith("/login?next=")
    assert response.get_data(as_text=True) == ""


def test_tree_page_opens_at_the_viewer_with_their_direct_referrals(client):
    root, child, grandchild = make_chain(3)
    other = make_user(referrer=root)
    log_in(client, root.email)
    response = client.get("/network")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    assert 'role="tree"' in html and "<html" in html
    assert _items(html) == [root.id, child.id, other.id]
    assert grandchild.id not in html  # one level at a time
    # Every expand works without JavaScript: a plain link to the page opened at that node.
    assert f'<a class="toggle" href="/network?node={child.id}"' in html


def test_expand_answers_a_fragment_with_htmx_and_a_page_without(client):
    root, child, grandchild = make_chain(3)
    log_in(client, root.email)
    fragment = client.get(f"/network?node={child.id}", headers=HX)
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200
    assert "HX-Request" in fragment.headers["Vary"]
    assert "<html" not in html and 'role="tree"' not in html
    assert _items(html) == [grandchild.id]
    assert 'aria-level="3"' in html

    page = client.get(f"/network?node={child.id}").get_data(as_text=True)
    assert "<html" in page
    assert _items(page) == [root.id, child.id, grandchild.id]
    assert page.count('aria-expanded="true"') == 2  # the path is open down to the node


def test_show_more_walks_a_120_child_node_in_keyset_pages(client):
    root = make_user()
    children = [make_user(referrer=root) for _ in range(120)]
    log_in(client, root.email)
    html = client.get("/network").get_data(as_text=True)
    seen = _items(html)[1:]
    pages = 1
    while (more := _MORE.search(html)) is not None:
        url = more.group(1).replace("&amp;", "&")
        assert "after=" in url and "offset" not in url
        html = client.get(url, headers=HX).get_data(as_text=True)
        seen += _items(html)
        pages += 1
    assert pages == 3
    assert seen == [c.id for c in children]  # join order, no gaps, no repeats


def test_show_more_without_javascript_is_a_page_of_the_next_children(client):
    root = make_user()
    children = [make_user(referrer=root) for _ in range(55)]
    log_in(client, root.email)
    more = _MORE.search(client.get("/network").get_data(as_text=True)).group(1)
    page = client.get(more.replace("&amp;", "&")).get_data(as_text=True)
    assert "<html" in page
    assert _items(page) == [root.id] + [c.id for c in children[50:]]


def test_affiliates_see_down_to_the_max_tier_only(client):
    chain = make_chain(5)
    log_in(client, chain[0].email)
    html = client.get(f"/network?node={chain[3].id}").get_data(as_text=True)
    assert "beyond the tiers you can see" in html
    assert f'href="/network?node={chain[4].id}"' not in html
    assert (
        client.get(f"/network?node={chain[3].id}", headers=HX).get_data(as_text=True).strip() == ""
    )


@pytest.mark.parametrize("headers", [{}, HX], ids=["page", "fragment"])
def test_nodes_outside_the_visible_downline_answer_404(client, headers):
    chain = make_chain(6)
    stranger = make_user()
    log_in(client, chain[1].email)
    # An upline, tier 4 (beyond the max tier), another network, ids that do not exist.
    for node in (chain[0].id, chain[5].id, stranger.id, "nope", "x" * 300):
        response = client.get(f"/network?node={node}", headers=headers)
        assert response.status_code == 404
        assert ("<html" in response.get_data(as_text=True)) == (not headers)
    assert client.get(f"/network?node={chain[4].id}", headers=headers).status_code == 200


@pytest.mark.parametrize("after", ["garbage", "12.", "9" * 30 + ".x", "-1.x" + "y" * 40])
def test_a_bad_page_cursor_is_a_400_not_a_crash(client, after):
    root = make_user()
    log_in(client, root.email)
    assert client.get(f"/network?node={root.id}&after={after}").status_code == 400


def test_search_shows_each_match_with_a_clickable_path(client):
    root, child, grandchild = make_chain(3)
    match = make_user(referrer=grandchild, username="zelda")
    make_user(username="zeus")  # outside the downline
    log_in(client, root.email)
    page = client.get("/network/search?q=ze")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html
    for step in (root, child, grandchild, match):
        assert f'href="/network?node={step.id}"' in html
    assert "zeus" not in html

    fragment = client.get("/network/search?q=ze", headers=HX)
    assert "<html" not in fragment.get_data(as_text=True)
    assert "HX-Request" in fragment.headers["Vary"]
    assert "zelda" in fragment.get_data(as_text=True)
    assert "No one in this network" in client.get("/network/search?q=zeu").get_data(as_text=True)


def test_admin_sees_any_users_whole_downline(client):
    admin = make_user(is_admin=True)
    chain = make_chain(6)
    log_in(client, admin.email)
    base = f"/admin/users/{chain[0].id}/network"
    html = client.get(f"{base}?node={chain[4].id}").get_data(as_text=True)
    assert _items(html) == [c.id for c in chain]  # tier 5 listed under tier 4
    fragment = client.get(f"{base}?node={chain[4].id}", headers=HX).get_data(as_text=True)
    assert _items(fragment) == [chain[5].id]
    search = client.get(f"{base}/search?q={chain[5].username}").get_data(as_text=True)
    assert f'href="{base}?node={chain[5].id}"' in search
    assert client.get(f"{base}?node={admin.id}").status_code == 404  # not below this user
    assert client.get("/admin/users/nobody/network").status_code == 404
    users = client.get(f"/admin/users?q={chain[0].username}").get_data(as_text=True)
    assert f'href="{base}"' in users


@pytest.mark.parametrize("headers", [{}, HX], ids=["page", "fragment"])
def test_admin_pages_answer_404_to_affiliates(client, headers):
    root, child = make_chain(2)
    log_in(client, root.email)
    for path in ("/admin/", "/admin/users", f"/admin/users/{child.id}/network"):
        assert client.get(path, headers=headers).status_code == 404


def test_tree_requests_read_in_autocommit(client):
    """No BEGIN/ROLLBACK around the reads: psycopg keeps its prepared statements."""
    root, child = make_chain(2)
    log_in(client, root.email)
    node_url = f"/network?node={child.id}"
    levels = []

    def record(conn, *_args) -> None:
        levels.append(conn.get_execution_options().get("isolation_level"))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert client.get(node_url, headers=HX).status_code == 200
        assert client.get("/network/search?q=u").status_code == 200
        assert levels and set(levels) == {"AUTOCOMMIT"}  # the user load included
        levels.clear()
        client.get("/dashboard")  # an ordinary view, for contrast
        assert "AUTOCOMMIT" not in levels
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
