"""/dev/mail: admins read kept mails while no MAIL_URL is set; everyone else gets a 404."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.services.mail.outbox import queue_mail
from tests.conftest import log_in
from tests.factories import make_user


@pytest.fixture
def mail(app):
    user = make_user(username="welcomed")
    mail = queue_mail(user, "welcome")
    db.session.commit()
    return mail


def test_an_admin_reads_the_list_and_one_mail_with_both_parts(client, admin, mail):
    listing = client.get("/dev/mail").get_data(as_text=True)
    assert "Welcome to Referral program, welcomed" in listing
    assert f"/dev/mail/{mail.id}" in listing

    page = client.get(f"/dev/mail/{mail.id}").get_data(as_text=True)
    assert "Your shared link" in page  # the text part
    assert f'<iframe class="mail-html" sandbox src="/dev/mail/{mail.id}/html"' in page

    html = client.get(f"/dev/mail/{mail.id}/html")
    assert html.status_code == 200
    assert "<html" in html.get_data(as_text=True)
    policy = html.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox;")
    assert "script-src" not in policy and "default-src 'none'" in policy


@pytest.mark.parametrize("path", ["/dev/mail", "/dev/mail/{id}", "/dev/mail/{id}/html"])
@pytest.mark.parametrize("hx", [False, True])
def test_anyone_but_an_admin_gets_a_404(client, mail, path, hx):
    headers = {"HX-Request": "true"} if hx else {}
    url = path.format(id=mail.id)
    assert client.get(url, headers=headers).status_code == 404  # anonymous
    log_in(client, make_user().email)
    assert client.get(url, headers=headers).status_code == 404  # an affiliate


def test_with_mail_url_set_even_an_admin_gets_a_404(app, client, admin, mail):
    saved, app.config["MAIL_URL"] = app.config["MAIL_URL"], "smtp://127.0.0.1:9?starttls=off"
    try:
        assert client.get("/dev/mail").status_code == 404
        assert client.get(f"/dev/mail/{mail.id}").status_code == 404
    finally:
        app.config["MAIL_URL"] = saved


def test_an_unknown_mail_is_a_404(client, admin):
    assert client.get("/dev/mail/nosuchmail").status_code == 404
    assert client.get("/dev/mail/nosuchmail/html").status_code == 404
