"""Stripe Connect onboarding from /payouts, against the fake Stripe through the official SDK:
open an Express account, go to its onboarding link, come back ready."""

from __future__ import annotations

import threading
import time

import requests
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, PayoutAccount
from app.services.payouts.stripe_accounts import COUNTRY_REJECTED, STRIPE_DOWN, open_stripe_account
from tests.conftest import csrf_token, log_in
from tests.factories import make_user

HX = {"HX-Request": "true"}
RETURN_URL = "http://localhost/payouts/stripe/return"
REFRESH_URL = "http://localhost/payouts/stripe/refresh"


def _start(client, country: str = "DE", headers: dict | None = None, token: str | None = None):
    data = {"csrf_token": token or csrf_token(client, "/payouts"), "country": country}
    return client.post("/payouts/stripe", data=data, headers=headers or {})


def _account(user_id: str) -> PayoutAccount | None:
    db.session.expire_all()
    return db.session.scalars(
        select(PayoutAccount).where(
            PayoutAccount.user_id == user_id, PayoutAccount.provider == "stripe"
        )
    ).one_or_none()


def _rows() -> int:
    return db.session.scalar(select(func.count()).select_from(PayoutAccount))


def _onboard(link: str) -> str:
    """A browser at Stripe's onboarding page: where Stripe sends it back to."""
    response = requests.get(link, allow_redirects=False, timeout=5)
    assert response.status_code == 302
    return response.headers["Location"]


def test_setting_up_opens_an_express_account_and_redirects_to_its_link(client, fake_stripe):
    user = make_user()
    log_in(client, user.email)
    response = _start(client, "DE")
    assert response.status_code == 302
    assert response.headers["Location"].startswith(f"{fake_stripe.url}/fake/onboard/")

    account = _account(user.id)
    assert account.stripe_account_id.startswith("acct_") and account.country == "DE"
    assert not account.is_ready and account.restriction == "requirements.past_due"
    (at_stripe,) = fake_stripe.accounts()
    assert at_stripe["id"] == account.stripe_account_id
    assert (at_stripe["type"], at_stripe["country"], at_stripe["email"]) == (
        "express",
        "DE",
        user.email,
    )
    assert at_stripe["capabilities"] == {"transfers": "inactive"}
    assert at_stripe["metadata"] == {"user_id": user.id}
    entry = db.session.scalars(select(AuditEntry)).all()[-1]
    assert entry.action == "payout_account.stripe_opened" and entry.actor_id == user.id
    assert entry.details["stripe_account_id"] == account.stripe_account_id

    html = client.get("/payouts").get_data(as_text=True)
    assert "Setup not finished." in html and "Continue setup" in html
    assert "Set up payouts with Stripe" not in html


def test_htmx_start_sends_the_whole_page_to_stripe(client, fake_stripe):
    user = make_user()
    log_in(client, user.email)
    response = _start(client, "FR", headers=HX)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].startswith(f"{fake_stripe.url}/fake/onboard/")
    assert _account(user.id).country == "FR"


def test_a_double_submit_opens_one_account(client, fake_stripe):
    user = make_user()
    log_in(client, user.email)
    token = csrf_token(client, "/payouts")
    first, second = _start(client, token=token), _start(client, token=token)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] != second.headers["Location"]  # a link each, one account
    assert len(fake_stripe.accounts()) == 1 and _rows() == 1


def test_two_requests_racing_store_one_account(app, fake_stripe):
    """Both pass the "no account yet" check; the idempotency key makes Stripe answer both with
    one account, and the unique row makes the later insert wait, then give way."""
    user = make_user()
    opened: dict[str, str] = {}
    first_done = threading.Event()

    def first() -> None:
        with app.app_context():
            opened["first"] = open_stripe_account(user, "DE").stripe_account_id
            first_done.set()
            time.sleep(0.5)  # the second request checks and inserts meanwhile
            db.session.commit()

    def second() -> None:
        first_done.wait(5)
        with app.app_context():
            opened["second"] = open_stripe_account(user, "DE").stripe_account_id
            db.session.commit()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert opened["first"] == opened["second"]
    assert fake_stripe.post_count("/v1/accounts") == 2  # both asked; Stripe replayed one
    assert len(fake_stripe.accounts()) == 1 and _rows() == 1
    actions = db.session.scalars(select(AuditEntry.action)).all()
    assert actions.count("payout_account.stripe_opened") == 1


def test_onboarding_then_the_return_route_makes_the_account_ready(client, fake_stripe):
    user = make_user()
    log_in(client, user.email)
    link = _start(client, "DE").headers["Location"]
    assert _onboard(link) == RETURN_URL

    response = client.get("/payouts/stripe/return")
    assert response.status_code == 302 and response.headers["Location"] == "/payouts"
    account = _account(user.id)
    assert account.is_ready and account.payouts_enabled and account.transfers_active
    assert account.restriction is None and account.stripe_updated_at is not None
    html = client.get("/payouts").get_data(as_text=True)
    assert "Your Stripe account is ready to receive payouts." in html
    assert "Ready to receive payouts" in html and 'data-stripe="country">Germany<' in html
    assert "Continue setup" not in html


def test_returning_without_finishing_says_what_is_missing(client, fake_stripe):
    user = make_user()
    log_in(client, user.email)
    _start(client, "DE")  # the user never finishes Stripe's pages
    client.get("/payouts/stripe/return")
    html = client.get("/payouts").get_data(as_text=True)
    assert "Your Stripe account is not ready yet. Stripe needs more information" in html
    assert not _account(user.id).is_ready


def test_the_refresh_route_gives_a_new_link(client, fake_stripe):
    user = make_user()
    log_in(client, user.email)
    first_link = _start(client, "DE").headers["Location"]
    response = client.get("/payouts/stripe/refresh")
    assert response.status_code == 302
    second_link = response.headers["Location"]
    assert second_link.startswith(f"{fake_stripe.url}/fake/onboard/")
    assert second_link != first_link
    assert _onboard(second_link) == RETURN_URL
    assert _onboard(second_link) == REFRESH_URL  # single-use: Stripe sends them to refresh
    assert fake_stripe.post_count("/v1/account_links") == 2


def test_another_user_only_ever_acts_on_their_own_account(app, client, fake_stripe):
    owner = make_user()
    log_in(client, owner.email)
    link = _start(client, "DE").headers["Location"]
    _onboard(link)  # the owner's account is ready at Stripe, not yet here
    before = _account(owner.id)
    stored_at, account_id = before.stripe_updated_at, before.stripe_account_id

    other = app.test_client()
    log_in(other, make_user().email)
    for path in ("/payouts/stripe/return", "/payouts/stripe/refresh"):
        response = other.get(f"{path}?account={account_id}")
        assert response.status_code == 302 and response.headers["Location"] == "/payouts"
    assert "You have no Stripe account yet" in other.get("/payouts").get_data(as_text=True)
    assert fake_stripe.post_count("/v1/account_links") == 1  # no link for the other user
    after = _account(owner.id)
    assert after.stripe_updated_at == stored_at and not after.is_ready
    assert _rows() == 1


def test_an_invalid_country_is_422_and_creates_nothing(client, fake_stripe):
    user = make_user()
    log_in(client, user.email)
    for country in ("XX", "", "de", "DE' OR 1=1", "KP"):
        response = _start(client, country, headers=HX)
        assert response.status_code == 422, country
        assert COUNTRY_REJECTED in response.get_data(as_text=True)
    assert _start(client, "XX").status_code == 422  # without HTMX: the page, 422
    assert fake_stripe.post_count() == 0 and _rows() == 0


def test_a_missing_csrf_token_is_refused(client, fake_stripe):
    log_in(client, make_user().email)
    assert client.post("/payouts/stripe", data={"country": "DE"}).status_code == 400
    assert fake_stripe.post_count() == 0 and _rows() == 0


def test_stripe_down_on_start_keeps_nothing_and_a_retry_works(client, fake_stripe):
    """Stripe keeps a 500 for its idempotency key: the retry must use a new key, or it would
    get the same 500 for a day."""
    user = make_user()
    log_in(client, user.email)
    fake_stripe.faults.inject("server_error", path="/v1/accounts")
    response = _start(client, "DE", headers=HX)
    assert response.status_code == 503
    assert STRIPE_DOWN in response.get_data(as_text=True)
    assert _rows() == 0 and fake_stripe.accounts() == []
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0

    response = _start(client, "DE", headers=HX)
    assert response.headers["HX-Redirect"].startswith(f"{fake_stripe.url}/fake/onboard/")
    assert len(fake_stripe.accounts()) == 1 and _rows() == 1


def test_a_timeout_on_start_retries_with_the_same_key_and_adopts_the_account(
    app, client, fake_stripe
):
    """The account was opened but the answer was lost: the retry's key is the same, so Stripe
    replays that account instead of opening a second one."""
    app.config["STRIPE_TIMEOUT"] = 0.5
    user = make_user()
    log_in(client, user.email)
    fake_stripe.faults.inject("timeout_after_success", path="/v1/accounts", stall_seconds=2)
    assert _start(client, "DE").status_code == 503
    assert _rows() == 0 and len(fake_stripe.accounts()) == 1
    assert _start(client, "DE").status_code == 302
    assert len(fake_stripe.accounts()) == 1
    assert _account(user.id).stripe_account_id == fake_stripe.accounts()[0]["id"]


def test_a_failed_link_keeps_the_account_and_continue_setup_works(client, fake_stripe):
    user = make_user()
    log_in(client, user.email)
    fake_stripe.faults.inject("server_error", path="/v1/account_links")
    response = _start(client, "DE")
    assert response.status_code == 503 and STRIPE_DOWN in response.get_data(as_text=True)
    assert _rows() == 1  # opened at Stripe: kept, never opened twice
    assert "Continue setup" in client.get("/payouts").get_data(as_text=True)
    response = client.get("/payouts/stripe/refresh")
    assert response.headers["Location"].startswith(f"{fake_stripe.url}/fake/onboard/")
    assert len(fake_stripe.accounts()) == 1


def test_without_a_stripe_key_nothing_is_sent(client):
    log_in(client, make_user().email)
    response = _start(client, "DE", headers=HX)
    assert response.status_code == 503
    assert "not available on this site yet" in response.get_data(as_text=True)
    assert _rows() == 0


def test_without_javascript_the_page_lets_its_form_lead_to_stripe(app, client, fake_stripe):
    """Browsers apply ``form-action`` to the redirect after a form: the payouts page names
    Stripe's onboarding site; other pages keep ``'self'`` only."""
    log_in(client, make_user().email)
    policy = client.get("/payouts").headers["Content-Security-Policy"]
    assert f"form-action 'self' {fake_stripe.url};" in policy
    assert "form-action 'self';" in client.get("/dashboard").headers["Content-Security-Policy"]
    app.config["STRIPE_API_BASE"] = "https://api.stripe.com"
    policy = client.get("/payouts").headers["Content-Security-Policy"]
    assert "form-action 'self' https://connect.stripe.com;" in policy
