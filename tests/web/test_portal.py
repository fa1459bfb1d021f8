"""The affiliate's dashboard and link page."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.extensions import db
from app.services.accounts.visitors import hash_ip
from tests.conftest import log_in
from tests.factories import make_chain, make_sale, make_user

HX = {"HX-Request": "true"}


@pytest.mark.parametrize("path", ["/dashboard", "/link", "/link/qr.svg", "/account/password"])
def test_portal_pages_need_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_dashboard_shows_network_and_zero_earnings(client):
    chain = make_chain(5)
    make_user(referrer=chain[0])
    log_in(client, chain[0].email)
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'data-stat="direct">2<' in html
    assert 'data-stat="network">4<' in html  # tiers 1-3 only: chain[1..3] and the extra user
    assert 'data-stat="pending">0.00 USD<' in html
    assert chain[4].username not in html  # tier 4 is beyond the max tier
    assert chain[3].username in html


def test_dashboard_totals_come_from_the_ledger(client):
    root, buyer = make_chain(2)
    make_sale(buyer, "125.00", days_ago=40)  # past the 30-day hold: available
    make_sale(buyer, "50.00")  # within the hold: pending
    log_in(client, root.email)
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'data-stat="available">12.50 USD<' in html
    assert 'data-stat="pending">5.00 USD<' in html
    assert 'data-stat="paid">0.00 USD<' in html


def test_link_page_has_the_link_qr_and_share_links(client):
    user = make_user()
    log_in(client, user.email)
    html = client.get("/link").get_data(as_text=True)
    link = f"http://localhost/r/{user.referral_code}"
    assert f'value="{link}" readonly' in html
    assert 'data-copy-target="#share-link"' in html
    for share in ("mailto:", "twitter.com/intent/tweet", "linkedin.com", "wa.me"):
        assert share in html
    svg = client.get("/link/qr.svg")
    assert svg.mimetype == "image/svg+xml" and b"<svg" in svg.data
    png = client.get("/link/qr.png?download=1")
    assert png.data.startswith(b"\x89PNG")
    assert f"referral-{user.referral_code}.png" in png.headers["Content-Disposition"]
    assert client.get("/link/qr.gif").status_code == 404


def _visit(app, user, ip: str) -> None:
    app.test_client().get(f"/r/{user.referral_code}", environ_overrides={"REMOTE_ADDR": ip})


def test_link_stats_count_visitors_signups_and_paying(client, app):
    user = make_user()
    for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"):
        _visit(app, user, ip)
    first = make_user(referrer=user, signup_ip_hash=hash_ip("10.0.0.1"))
    make_user(referrer=user, signup_ip_hash=hash_ip("10.0.0.2"))
    db.session.execute(
        text("UPDATE referrals SET status = 'completed' WHERE referred_user_id = :id"),
        {"id": first.id},
    )
    db.session.execute(
        text(
            "UPDATE referral_clicks SET clicked_on = clicked_on - 20 "
            "WHERE id = (SELECT min(id) FROM referral_clicks)"
        )
    )
    db.session.commit()
    log_in(client, user.email)
    week = client.get("/link?days=7", headers=HX)
    html = week.get_data(as_text=True)
    assert week.status_code == 200 and "<html" not in html and "HX-Request" in week.headers["Vary"]
    assert 'data-stat="clicks">3<' in html
    assert 'data-stat="signups">2<' in html
    assert 'data-stat="paying">1<' in html
    # 10.0.0.1 visited 20 days ago: outside the week's visitors, so not one who signed up.
    assert 'data-stat="signup-rate">33.33 %<' in html
    assert 'data-stat="paying-rate">50 %<' in html
    month = client.get("/link?days=30").get_data(as_text=True)
    assert "<!doctype html>" in month and 'data-stat="clicks">4<' in month
    assert 'data-stat="signup-rate">50 %<' in month


def test_visit_rate_counts_each_visitor_once_and_never_passes_100_percent(client, app):
    user = make_user()
    _visit(app, user, "10.0.0.1")
    # The same visitor on another day, and again today: two daily rows, one visitor.
    db.session.execute(text("UPDATE referral_clicks SET clicked_on = clicked_on - 1"))
    db.session.commit()
    _visit(app, user, "10.0.0.1")
    _visit(app, user, "10.0.0.1")
    for _ in range(3):  # one visitor, three accounts
        make_user(referrer=user, signup_ip_hash=hash_ip("10.0.0.1"))
    make_user(referrer=user)  # the code typed in: a sign-up without a visit
    log_in(client, user.email)
    html = client.get("/link?days=7", headers=HX).get_data(as_text=True)
    assert 'data-stat="clicks">1<' in html
    assert 'data-stat="signups">4<' in html
    assert 'data-stat="signup-rate">100 %<' in html
    assert 'data-stat="signed-up-visitors">1 of 1 unique visitor signed up' in html
    _visit(app, user, "10.0.0.2")
    _visit(app, user, "10.0.0.3")
    _visit(app, user, "10.0.0.4")
    html = client.get("/link?days=7", headers=HX).get_data(as_text=True)
    assert 'data-stat="clicks">4<' in html
    assert 'data-stat="signup-rate">25 %<' in html


def test_unknown_period_falls_back_to_30_days(client):
    user = make_user()
    log_in(client, user.email)
    html = client.get("/link?days=abc", headers=HX).get_data(as_text=True)
    assert 'aria-current="true">Last 30 days' in html


def test_audit_log_is_append_only():
    from sqlalchemy.exc import IntegrityError

    from app.services.ops import audit

    audit.record("test.entry", subject_type="x", subject_id="1")
    db.session.commit()
    for statement in ("UPDATE audit_log SET action = 'changed'", "DELETE FROM audit_log"):
        with pytest.raises(IntegrityError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
