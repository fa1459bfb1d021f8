"""Every list's filters live in the URL: its form pushes them (hx-push-url), a GET with the
query string (a reload, a bookmark) shows the same filtered list with the filters filled in,
and a bad value in the URL gets a message, never a 500."""

from __future__ import annotations

import re

import pytest

from app.extensions import db
from app.services.ops import audit
from tests.conftest import log_in
from tests.factories import make_chain, make_payout, make_sale, make_user

HX = {"HX-Request": "true"}


def _pushes_url(page: str, action: str) -> bool:
    """Whether the element that sends ``action``'s filters pushes them into the URL."""
    tags = re.findall(rf'<(?:form|input)[^>]*hx-get="{re.escape(action)}"[^>]*>', page)
    return bool(tags) and all('hx-push-url="true"' in tag for tag in tags)


@pytest.fixture
def admin(client):
    user = make_user(username="boss", is_admin=True)
    log_in(client, user.email)
    return user


def test_admin_users_search_is_in_the_url(client, admin):
    make_user(username="zelda")
    make_user(username="yuri")
    page = client.get("/admin/users").get_data(as_text=True)
    assert _pushes_url(page, "/admin/users")
    reloaded = client.get("/admin/users?q=zel").get_data(as_text=True)
    assert 'value="zel"' in reloaded and ">zelda</a>" in reloaded and "yuri" not in reloaded
    long = client.get("/admin/users?q=" + "x" * 5000)
    assert long.status_code == 200 and "No user matches" in long.get_data(as_text=True)


def test_admin_commission_filters_are_in_the_url(client, admin):
    root, _middle, buyer = make_chain(3)
    make_sale(buyer, "100.00")
    page = client.get("/admin/commissions").get_data(as_text=True)
    assert _pushes_url(page, "/admin/commissions")
    reloaded = client.get(f"/admin/commissions?tier=2&user={root.username}").get_data(as_text=True)
    assert f'value="{root.username}"' in reloaded and 'value="2"' in reloaded
    assert reloaded.count("data-commission=") == 1
    bad = client.get("/admin/commissions?status=someday")
    assert bad.status_code == 422 and "Not a valid choice" in bad.get_data(as_text=True)


def test_admin_payout_filters_are_in_the_url(client, admin):
    root, buyer = make_chain(2)
    make_sale(buyer, "600.00", days_ago=40)
    make_payout(root)
    page = client.get("/admin/payouts").get_data(as_text=True)
    assert _pushes_url(page, "/admin/payouts")
    reloaded = client.get(f"/admin/payouts?user={root.username}").get_data(as_text=True)
    assert f'value="{root.username}"' in reloaded and "60.00 USD" in reloaded
    other = client.get("/admin/payouts?user=nobody-else").get_data(as_text=True)
    assert "60.00 USD" not in other and "match these filters" in other
    bad = client.get("/admin/payouts?created_from=someday", headers=HX)
    assert bad.status_code == 422 and "Not a valid date value" in bad.get_data(as_text=True)


def test_audit_log_filters_are_in_the_url_and_its_csv_link(client, admin):
    audit.record("test.one", subject_type="x", subject_id="1")
    audit.record("test.two", subject_type="x", subject_id="2")
    db.session.commit()
    page = client.get("/admin/audit").get_data(as_text=True)
    assert _pushes_url(page, "/admin/audit")
    query = "subject_type=x&amp;subject_id=2"
    fragment = client.get("/admin/audit?subject_type=x&subject_id=2", headers=HX)
    assert f'href="/admin/audit.csv?{query}"' in fragment.get_data(as_text=True)  # swapped part
    reloaded = client.get("/admin/audit?subject_type=x&subject_id=2").get_data(as_text=True)
    assert "test.two" in reloaded and "test.one" not in reloaded and 'value="2"' in reloaded
    bad = client.get("/admin/audit?created_to=31/12/2026")
    assert bad.status_code == 422 and "Not a valid date value" in bad.get_data(as_text=True)


@pytest.mark.parametrize("as_admin", [False, True])
def test_network_search_is_in_the_url(client, as_admin):
    root = make_user()
    make_user(referrer=root, username="zelda")
    make_user(referrer=root, username="yuri")
    if as_admin:
        log_in(client, make_user(is_admin=True).email)
        path = f"/admin/users/{root.id}/network/search"
    else:
        log_in(client, root.email)
        path = "/network/search"
    assert _pushes_url(client.get(path).get_data(as_text=True), path)
    reloaded = client.get(f"{path}?q=zel").get_data(as_text=True)
    assert 'value="zel"' in reloaded and 'class="match">zelda<' in reloaded
    assert "yuri" not in reloaded
    assert client.get(f"{path}?q=" + "%00" * 100).status_code < 500
