"""A new affiliate gets a welcome mail with their shared link (an account mail)."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import User
from tests.conftest import registration_form
from tests.factories import PASSWORD
from tests.signing import run_jobs


def _register(client, email: str, password: str = PASSWORD):
    data = registration_form(client, email=email, password=password, confirm=password)
    return client.post("/register", data=data)


def test_registering_mails_a_welcome_with_the_shared_link(app, client, smtp_server):
    assert _register(client, "newbie@example.com").status_code == 302
    run_jobs(app)
    user = db.session.scalars(select(User).where(User.username == "newbie")).one()
    [message] = smtp_server.to("newbie@example.com")
    link = f"http://localhost/r/{user.referral_code}"
    assert link in message.get_body(("plain",)).get_content()
    assert link in message.get_body(("html",)).get_content()
    assert "Welcome to Referral program" in message["Subject"]
    assert message["List-Unsubscribe"] is None


def test_a_refused_registration_mails_nothing(app, client, smtp_server):
    assert _register(client, "newbie@example.com", "short").status_code == 422
    run_jobs(app)
    assert smtp_server.messages == []
