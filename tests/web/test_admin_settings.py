"""The admin settings page: who may see it, each section saved with and without HTMX, bad
input (422, nothing changed), CSRF, and consequences shown before saving."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry
from app.services.program.program import get_settings
from app.services.program.settings import SECTIONS
from tests.conftest import csrf_token, log_in
from tests.factories import make_chain, make_sale, make_user
from tests.services.test_program_settings import form_of

HX = {"HX-Request": "true"}


def _post(client, section: str, headers=None, **overrides: str):
    data = {"csrf_token": csrf_token(client, "/admin/settings"), **form_of(section, **overrides)}
    return client.post(f"/admin/settings/{section}", data=data, headers=headers or {})


def _audits() -> int:
    return db.session.scalar(
        select(func.count()).where(AuditEntry.action == "program.settings_changed")
    )


def _fresh():
    db.session.rollback()
    return get_settings()


def test_every_settings_route_is_a_404_for_non_admins(client):
    affiliate = make_user()
    log_in(client, affiliate.email)
    token = csrf_token(client, "/payouts")
    for headers in ({}, HX):
        assert client.get("/admin/settings", headers=headers).status_code == 404
        assert client.post("/admin/settings", headers=headers).status_code == 404
        for section in SECTIONS:
            data = {"csrf_token": token, **form_of(section, min_payout_amount="1")}
            path = f"/admin/settings/{section}"
            assert client.post(path, data=data, headers=headers).status_code == 404, path
            assert client.get(path, headers=headers).status_code == 404, path
        assert client.post("/admin/settings/nope", headers=headers).status_code == 404
    assert _fresh().min_payout_amount == Decimal(50) and _audits() == 0


def test_anonymous_visitors_are_sent_to_log_in(client):
    page = client.get("/admin/settings")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    fragment = client.get("/admin/settings", headers=HX)
    assert "/login" in fragment.headers["HX-Redirect"]
    token = csrf_token(client, "/login")
    for headers in ({}, HX):
        answer = client.post("/admin/settings/payouts", data={"csrf_token": token}, headers=headers)
        assert "/login" in answer.headers.get("Location", answer.headers.get("HX-Redirect", ""))
    assert _audits() == 0


def test_a_save_needs_the_csrf_token(client, admin):
    for headers in ({}, HX):
        data = form_of("payouts", min_payout_amount="10")
        assert client.post("/admin/settings/payouts", data=data, headers=headers).status_code == 400
    assert _fresh().min_payout_amount == Decimal(50) and _audits() == 0


def test_the_page_shows_every_setting_in_sections(client, admin):
    page = client.get("/admin/settings").get_data(as_text=True)
    for section, (_, fields) in SECTIONS.items():
        assert f'id="settings-{section}"' in page
        assert f'hx-post="/admin/settings/{section}"' in page
        for field in fields:
            assert f'name="{field.name}"' in page
    assert 'value="10"' in page  # the default rate, as a percentage


def test_htmx_save_swaps_the_section_and_audits(client, admin):
    answer = _post(client, "payouts", HX, min_payout_amount="25.50", payout_frequency="weekly")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "HX-Request" in answer.headers["Vary"]
    assert "<html" not in body and body.lstrip().startswith("<section")
    assert 'id="settings-payouts"' in body and "Saved." in body and 'value="25.5"' in body
    settings = _fresh()
    assert settings.min_payout_amount == Decimal("25.50") and settings.payout_frequency == "weekly"
    entry = db.session.scalars(select(AuditEntry)).one()
    assert entry.actor_id == admin.id
    assert entry.details["changes"]["payout_frequency"] == {"old": "monthly", "new": "weekly"}


def test_without_javascript_a_save_redirects_to_the_page(client, admin):
    answer = _post(client, "holds", refund_window_days="14", hold_days="21")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/settings")
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "Refunds and holds: Saved." in page
    assert (_fresh().refund_window_days, _fresh().hold_days) == (14, 21)


@pytest.mark.parametrize("headers", [HX, {}])
def test_bad_input_is_a_422_with_inline_errors_and_changes_nothing(client, admin, headers):
    answer = _post(client, "tiers", headers, max_tier_level="0", default_commission_rate="150")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert ("<html" in body) == (not headers)
    assert "A whole number from 1 to 10." in body and "Between 0 and 100 %." in body
    assert 'value="150"' in body and 'aria-invalid="true"' in body
    settings = _fresh()
    assert settings.max_tier_level == 3 and settings.default_commission_rate == Decimal("0.1")
    assert _audits() == 0


def test_raising_the_max_tier_shows_the_backfill_before_saving(client, admin):
    make_chain(6)
    answer = _post(client, "tiers", HX, max_tier_level="4")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "backfills 2 referral rows (tiers 4-4)" in body and "Confirm and save" in body
    assert _fresh().max_tier_level == 3 and _audits() == 0
    confirm = body.split('name="confirm" value="')[1].split('"')[0]
    # A confirmation of other consequences is shown again, not saved.
    answer = _post(client, "tiers", HX, max_tier_level="5", confirm=confirm)
    assert "Confirm and save" in answer.get_data(as_text=True)
    assert _fresh().max_tier_level == 3
    answer = _post(client, "tiers", HX, max_tier_level="4", confirm=confirm)
    assert "Saved." in answer.get_data(as_text=True)
    assert _fresh().max_tier_level == 4 and _audits() == 1


def test_currency_change_after_a_sale_is_refused_inline(client, admin):
    _root, buyer = make_chain(2)
    make_sale(buyer)
    answer = _post(client, "commissions", HX, currency="EUR")
    assert answer.status_code == 422
    assert "relabelled, not converted" in answer.get_data(as_text=True)
    assert _fresh().currency == "USD" and _audits() == 0
