"""A new affiliate's first session: joining needs the terms in force accepted (recorded on
the user), and the dashboard's checklist ticks itself from what really happened (a copy
recorded by the copy button, a visit through the link, a payout account, the terms) and
disappears when every step is done."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from app.extensions import db
from app.models import User
from app.services.program.terms import publish_terms
from tests.conftest import csrf_token, log_in, registration_form
from tests.factories import make_payout_account, make_user, set_program

HX = {"HX-Request": "true"}


def _join(client, headers=None, **overrides: str):
    data = registration_form(client, **overrides)
    return client.post("/register", data=data, headers=headers or {})


def _users() -> int:
    return db.session.scalar(select(func.count()).select_from(User))


def _step_done(html: str, key: str) -> bool:
    step = re.search(rf'<li class="step( done)?" id="step-{key}">', html)
    assert step, f"no step {key}"
    return bool(step.group(1))


def test_the_form_links_the_terms_and_shows_their_version(client):
    html = client.get("/register").get_data(as_text=True)
    assert 'name="terms_version" type="hidden" value="1"' in html
    assert re.search(r'accept the <a href="/terms"[^>]*>program terms</a> \(version 1\)', html)


def test_joining_without_accepting_the_terms_is_refused(client):
    for headers in ({}, HX):
        answer = _join(client, headers, accept_terms="")
        assert answer.status_code == 422
        assert "Accept the program terms to join." in answer.get_data(as_text=True)
    assert _users() == 0


def test_terms_errors_come_with_the_other_errors_in_one_answer(client):
    unticked = _join(client, HX, accept_terms="", password="short", confirm="short")
    assert unticked.status_code == 422
    body = unticked.get_data(as_text=True)
    assert "Accept the program terms to join." in body and "Use at least 10 characters." in body
    publish_terms("Version two.", actor_id=None)
    db.session.commit()
    stale = _join(client, HX, terms_version="1", password="short", confirm="short")
    body = stale.get_data(as_text=True)
    assert "The terms were updated" in body and "Use at least 10 characters." in body
    assert _users() == 0


def test_joining_records_the_accepted_version_and_time(client):
    assert _join(client).status_code == 302
    user = db.session.scalars(select(User)).one()
    assert user.terms_version == 1 and user.terms_accepted_at is not None


def test_a_version_that_changed_while_signing_up_is_not_accepted_unseen(client):
    page_token = csrf_token(client, "/register")  # the form shows version 1
    publish_terms("Version two.", actor_id=None)
    db.session.commit()
    answer = _join(client, HX, csrf_token=page_token, terms_version="1")
    body = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "The terms were updated" in body
    assert 'name="terms_version" type="hidden" value="2"' in body
    checkbox = re.search(r'<input[^>]*id="accept_terms"[^>]*>', body).group(0)
    assert " checked " not in checkbox  # to be ticked again, knowingly
    assert _users() == 0
    assert _join(client, terms_version="2").status_code == 302
    assert db.session.scalars(select(User.terms_version)).one() == 2


def test_the_checklist_ticks_from_real_state_and_disappears_when_done(client, app):
    assert _join(client).status_code == 302
    user = db.session.scalars(select(User)).one()
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'id="checklist"' in html and "(1 of 4 done)" in html
    assert _step_done(html, "terms")  # accepted when joining
    assert not any(_step_done(html, key) for key in ("copy", "share", "payouts"))

    # The copy button posts (with its CSRF token) and gets the checklist back.
    token = csrf_token(client, "/dashboard")
    assert client.post("/link/copied", headers=HX).status_code == 400
    copied = client.post("/link/copied", data={"csrf_token": token}, headers=HX)
    fragment = copied.get_data(as_text=True)
    assert copied.status_code == 200 and fragment.lstrip().startswith("<section")
    assert _step_done(fragment, "copy") and "(2 of 4 done)" in fragment
    # Without JavaScript the same form says "I've copied it" and goes back to the dashboard.
    plain = client.post("/link/copied", data={"csrf_token": token})
    assert plain.status_code == 302 and plain.headers["Location"] == "/dashboard"

    # A visit through the link, by someone else.
    app.test_client().get(f"/r/{user.referral_code}")
    html = client.get("/dashboard").get_data(as_text=True)
    assert _step_done(html, "share") and not _step_done(html, "payouts")

    # A Stripe account opened but not finished (onboarding left, or Stripe will not pay it
    # yet): the earnings cannot reach the affiliate, so the step is not done.
    make_payout_account(user, "stripe", ready=False)
    html = client.get("/dashboard").get_data(as_text=True)
    assert not _step_done(html, "payouts") and "(3 of 4 done)" in html
    make_payout_account(user, "lemon_squeezy")  # payee details: payable
    html = client.get("/dashboard").get_data(as_text=True)
    assert 'id="checklist"' not in html and "Get started" not in html


def test_the_checklist_asks_for_the_terms_in_force(client):
    user = make_user()  # made before terms existed: accepted none
    log_in(client, user.email)
    html = client.get("/dashboard").get_data(as_text=True)
    assert not _step_done(html, "terms")
    assert 'href="/terms?next=/dashboard"' in html
    token = csrf_token(client, "/terms")
    client.post("/terms/accept", data={"csrf_token": token, "version": "1"})
    assert _step_done(client.get("/dashboard").get_data(as_text=True), "terms")


def test_the_copy_form_works_without_javascript_and_the_link_page_button_records_too(client):
    assert _join(client).status_code == 302
    html = client.get("/dashboard").get_data(as_text=True)
    form = re.search(r'<form method="post" action="/link/copied".*?</form>', html, re.S).group(0)
    assert 'name="csrf_token"' in form
    assert re.search(
        r'<button type="submit" data-copy-target="#checklist-link"[^>]*>I\'ve copied it', form
    )
    link_page = client.get("/link").get_data(as_text=True)
    assert 'data-copy-target="#share-link" hx-post="/link/copied"' in link_page


def test_help_explains_tier_hold_period_and_held_without_script(client):
    log_in(client, make_user().email)
    set_program(hold_days=45)
    html = client.get("/dashboard").get_data(as_text=True)
    assert "What is a tier?" in html and "What is the hold period?" in html
    assert "waits 45 days after the sale" in html
    assert html.count('<details class="help">') >= 2
