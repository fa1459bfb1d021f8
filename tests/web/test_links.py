"""Shared links: count the click, set the attribution cookie, welcome; unknown codes 404."""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.models import ReferralClick
from app.services.network.referral_links import ATTRIBUTION_COOKIE
from tests.factories import make_user


def _clicks() -> int:
    return db.session.scalar(select(func.count()).select_from(ReferralClick))


def test_link_counts_a_visitor_once_a_day_and_sets_the_cookie(client):
    referrer = make_user(username="sharer")
    response = client.get(f"/r/{referrer.referral_code}", headers={"User-Agent": "Firefox"})
    assert response.status_code == 200
    assert "sharer invited you" in response.get_data(as_text=True)
    cookie = client.get_cookie(ATTRIBUTION_COOKIE)
    assert cookie.value == referrer.referral_code
    assert "Max-Age=2592000" in response.headers["Set-Cookie"]  # the 30-day default window
    assert "HttpOnly" in response.headers["Set-Cookie"]
    client.get(f"/r/{referrer.referral_code}")
    assert _clicks() == 1
    click = db.session.scalars(select(ReferralClick)).one()
    assert click.user_agent == "Firefox"
    assert len(click.visitor_hash) == 64 and "127.0.0.1" not in click.visitor_hash


def test_another_visitor_counts_again(client, app):
    referrer = make_user()
    client.get(f"/r/{referrer.referral_code}")
    app.test_client().get(
        f"/r/{referrer.referral_code}", environ_overrides={"REMOTE_ADDR": "10.9.8.7"}
    )
    assert _clicks() == 2


def test_last_click_wins(client):
    first, second = make_user(), make_user()
    client.get(f"/r/{first.referral_code}")
    client.get(f"/r/{second.referral_code}")
    assert client.get_cookie(ATTRIBUTION_COOKIE).value == second.referral_code


def test_unknown_or_malformed_code_is_a_friendly_404_that_sets_nothing(client):
    for code in ("ZZZZZZZZ", "not-a-code!", "x" * 300):
        response = client.get(f"/r/{code}")
        assert response.status_code == 404
        assert "doesn't work" in response.get_data(as_text=True)
        assert "Set-Cookie" not in response.headers
    assert _clicks() == 0


def test_next_goes_only_to_paths_on_this_site(client):
    code = make_user().referral_code
    assert client.get(f"/r/{code}?next=/register").headers["Location"] == "/register"
    for evil in ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:x"):
        response = client.get(f"/r/{code}", query_string={"next": evil})
        assert response.status_code == 200  # the landing page, no redirect
