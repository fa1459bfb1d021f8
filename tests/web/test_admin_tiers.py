"""The tier editor pages: who may see them, inline edit with and without HTMX, add,
deactivate/reactivate, bad input and the cap (422, nothing changed), warnings, CSRF."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, MLMTier
from tests.conftest import csrf_token, log_in
from tests.factories import make_chain, make_sale, make_user

HX = {"HX-Request": "true"}


def _tier(level: int) -> MLMTier:
    db.session.rollback()
    return db.session.scalars(select(MLMTier).where(MLMTier.level == level)).one()


def _audits() -> int:
    return db.session.scalar(select(func.count()).where(AuditEntry.action.like("program.tier_%")))


def _post(client, path: str, headers=None, **data: str):
    token = csrf_token(client, "/admin/tiers")
    return client.post(path, data={"csrf_token": token, **data}, headers=headers or {})


def test_every_tier_route_is_a_404_for_non_admins(client):
    tier = _tier(2)
    log_in(client, make_user().email)
    token = csrf_token(client, "/payouts")
    data = {"csrf_token": token, "commission_rate": "1", "level": "3"}
    posts = [
        f"/admin/tiers/{tier.id}",
        f"/admin/tiers/{tier.id}/deactivate",
        f"/admin/tiers/{tier.id}/reactivate",
        "/admin/tiers",
    ]
    for headers in ({}, HX):
        assert client.get("/admin/tiers", headers=headers).status_code == 404
        for path in posts:
            assert client.post(path, data=data, headers=headers).status_code == 404, path
        assert client.get(posts[0], headers=headers).status_code == 404
        simulate = "/admin/tiers/simulate?max_tier=3&days=30&rate_1=10"
        assert client.get(simulate, headers=headers).status_code == 404
    assert _tier(2).is_active and _tier(2).commission_rate == Decimal("0.05") and _audits() == 0


def test_anonymous_visitors_are_sent_to_log_in(client):
    assert "/login" in client.get("/admin/tiers").headers["Location"]
    assert "/login" in client.get("/admin/tiers", headers=HX).headers["HX-Redirect"]


def test_edits_need_the_csrf_token(client, admin):
    tier = _tier(2)
    for headers in ({}, HX):
        answer = client.post(
            f"/admin/tiers/{tier.id}", data={"commission_rate": "1"}, headers=headers
        )
        assert answer.status_code == 400
        assert client.post(f"/admin/tiers/{tier.id}/deactivate", headers=headers).status_code == 400
    assert _tier(2).commission_rate == Decimal("0.05") and _audits() == 0


def test_the_page_lists_the_tiers_as_editable_rows(client, admin):
    page = client.get("/admin/tiers").get_data(as_text=True)
    for level, rate in ((1, "10"), (2, "5"), (3, "2.5")):
        tier = _tier(level)
        assert f'id="tier-{tier.id}"' in page and f'value="{rate}"' in page
        assert f'hx-post="/admin/tiers/{tier.id}"' in page
    assert "at most 50 % of a sale together" in page


def test_inline_edit_swaps_the_row(client, admin):
    tier = _tier(2)
    answer = _post(
        client, f"/admin/tiers/{tier.id}", HX, commission_rate="4.5", description="Tier two"
    )
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "HX-Request" in answer.headers["Vary"]
    assert body.lstrip().startswith(f'<tr id="tier-{tier.id}"') and "Saved." in body
    assert 'value="4.5"' in body
    assert _tier(2).commission_rate == Decimal("0.045") and _audits() == 1


def test_without_javascript_an_edit_redirects_and_warnings_are_shown(client, admin):
    tier = _tier(3)
    answer = _post(client, f"/admin/tiers/{tier.id}", commission_rate="7.5")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/tiers")
    page = client.get("/admin/tiers").get_data(as_text=True)
    assert "Tier 3: Tier 3 pays more (7.5 %) than tier 2 (5 %) above it." in page
    assert _tier(3).commission_rate == Decimal("0.075")


@pytest.mark.parametrize("headers", [HX, {}])
@pytest.mark.parametrize(
    ("rate", "message"),
    [("101", "Between 0 and 100 %."), ("45", "above the cap of 50 %"), ("x", "Enter a number")],
)
def test_bad_input_and_the_cap_are_a_422_and_change_nothing(client, admin, headers, rate, message):
    tier = _tier(2)
    answer = _post(client, f"/admin/tiers/{tier.id}", headers, commission_rate=rate)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 422 and message in body
    assert ("<html" in body) == (not headers) and f'value="{rate}"' in body
    assert _tier(2).commission_rate == Decimal("0.05") and _audits() == 0


def test_deactivate_and_reactivate_swap_the_row(client, admin):
    tier = _tier(3)
    answer = _post(client, f"/admin/tiers/{tier.id}/deactivate", HX)
    assert answer.status_code == 200 and "Reactivate" in answer.get_data(as_text=True)
    assert not _tier(3).is_active
    answer = _post(client, f"/admin/tiers/{tier.id}/reactivate")
    assert answer.status_code == 302 and _tier(3).is_active and _audits() == 2


def test_adding_a_tier(client, admin):
    answer = _post(client, "/admin/tiers", HX, level="3", commission_rate="1")
    assert answer.status_code == 422 and "Tier 3 exists" in answer.get_data(as_text=True)
    answer = _post(client, "/admin/tiers", HX, level="5", commission_rate="1")
    assert answer.status_code == 422 and "from 1 to the max tier, 3" in answer.get_data(
        as_text=True
    )
    _tier(3)  # (rolls back the test session)
    db.session.execute(MLMTier.__table__.delete().where(MLMTier.level == 3))
    db.session.commit()
    answer = _post(client, "/admin/tiers", HX, level="3", commission_rate="2", description="Third")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and body.lstrip().startswith(
        '<section class="card" id="tiers"'
    )
    assert "Added." in body and _tier(3).commission_rate == Decimal("0.02") and _audits() == 1


def test_the_simulator_answers_beside_the_editor_and_writes_nothing(client, admin):
    a, b, c, d = make_chain(4)
    make_sale(d, "200.00", days_ago=2)
    page = client.get("/admin/tiers").get_data(as_text=True)
    assert 'id="simulator"' in page and 'hx-get="/admin/tiers/simulate"' in page
    query = "/admin/tiers/simulate?max_tier=2&days=30&rate_1=12&rate_2=5&rate_3=2.5"
    answer = client.get(query, headers=HX)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and body.lstrip().startswith(
        '<section class="card" id="simulator"'
    )
    assert "200.00 USD of sales" in body
    assert "35.00 USD" in body and "17.50 %" in body  # today: 10 + 5 + 2.5 %
    assert "34.00 USD" in body and "17.00 %" in body  # draft: 12 + 5 %, tier 3 cut
    # A loses 5.00, C gains 4.00, B is unchanged (not listed).
    assert body.index(a.username) < body.index(c.username) and b.username not in body
    full = client.get(query)
    assert full.status_code == 200 and "<html" in full.get_data(as_text=True)
    assert _audits() == 0 and _tier(1).commission_rate == Decimal("0.1")


@pytest.mark.parametrize("headers", [HX, {}])
def test_a_bad_draft_is_a_422_with_its_errors(client, admin, headers):
    answer = client.get("/admin/tiers/simulate?max_tier=99&days=7&rate_1=x", headers=headers)
    body = answer.get_data(as_text=True)
    assert answer.status_code == 422 and ("<html" in body) == (not headers)
    assert "A whole number from 1 to 10." in body and "The last 30 or 90 days." in body
    assert "Enter a number" in body


def test_the_rate_typed_in_a_row_is_the_simulators_draft_for_its_tier(client, admin):
    d = make_chain(4)[-1]
    make_sale(d, "200.00", days_ago=2)
    page = client.get("/admin/tiers").get_data(as_text=True)
    assert 'hx-get="/admin/tiers/simulate?edited_level=1"' in page
    # What the row's input sends: its own value beside the simulator's form.
    query = (
        "/admin/tiers/simulate?edited_level=1&commission_rate=12"
        "&max_tier=2&days=30&rate_1=10&rate_2=5"
    )
    body = client.get(query, headers=HX).get_data(as_text=True)
    assert "34.00 USD" in body and "17.00 %" in body  # draft: 12 + 5 %
    assert 'id="draft-rate_1" name="rate_1" value="12"' in body
