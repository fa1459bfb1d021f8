"""Mail preferences on the account page, and the unsubscribe link of a real mail: no login,
GET confirms, POST (or RFC 8058's one-click POST) turns the category off; a forged link, or
another account's while signed in, is refused with nothing changed."""

from __future__ import annotations

from markupsafe import escape
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, OutboxMail
from app.services.accounts.tokens import FORGED, OTHER_ACCOUNT, make_token
from app.services.mail.notifications import queue_if_wanted
from app.services.mail.preferences import opted_out
from app.services.mail.unsubscribe import PURPOSE, unsubscribe_url
from tests.conftest import csrf_token, log_in
from tests.factories import make_user
from tests.signing import run_jobs

HX = {"HX-Request": "true"}


def _save(client, headers=None, **checked):
    data = {"csrf_token": csrf_token(client, "/account")}
    data.update({f"mail-{name}": "y" for name, on in checked.items() if on})
    return client.post("/account/mail-preferences", data=data, headers=headers)


def _off(user) -> set[str]:
    db.session.rollback()
    return opted_out(user.id)


def _mailed_link(app, smtp_server, user, category="earnings") -> str:
    """The unsubscribe link of a mail that really went out, as a path."""
    queue_if_wanted(user, "welcome", {}, category)
    db.session.commit()
    run_jobs(app)
    [message] = smtp_server.to(user.email)
    link = message["List-Unsubscribe"].strip("<>")
    assert link in message.get_body(("html",)).get_content()
    return link.removeprefix("http://localhost")


def test_the_account_page_shows_every_category_on(client):
    user = make_user()
    log_in(client, user.email)
    page = client.get("/account").get_data(as_text=True)
    assert 'id="mail-preferences"' in page
    for name in ("network", "earnings", "payouts", "flags"):
        assert f'checked id="mail-{name}" name="mail-{name}" type="checkbox"' in page


def test_preferences_are_saved_with_htmx_and_without(client):
    user = make_user()
    log_in(client, user.email)
    response = _save(client, HX, network=True, payouts=True, flags=True)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    fragment = response.get_data(as_text=True)
    assert "Your mail preferences are saved." in fragment
    assert "<html" not in fragment
    assert 'hint" id="mail-earnings" name="mail-earnings"' in fragment  # not checked
    assert 'checked id="mail-network"' in fragment
    assert _off(user) == {"earnings"}

    response = _save(client, network=True, earnings=True)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account#mail-preferences"
    assert _off(user) == {"payouts", "flags"}
    actions = db.session.scalars(
        select(AuditEntry.action).where(AuditEntry.subject_id == user.id)
    ).all()
    assert actions.count("user.mail_preferences_changed") == 2


def test_saving_needs_a_csrf_token_and_a_login(client):
    user = make_user()
    response = client.post(
        "/account/mail-preferences", data={"csrf_token": csrf_token(client, "/login")}
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    log_in(client, user.email)
    response = client.post("/account/mail-preferences", data={}, headers=HX)
    assert response.status_code == 400
    assert _off(user) == set()


def test_the_mailed_link_asks_then_unsubscribes_without_a_login(app, client, smtp_server):
    user = make_user()
    path = _mailed_link(app, smtp_server, user)
    page = client.get(path)
    assert page.status_code == 200
    assert "Stop “Commissions earned” mails to" in page.get_data(as_text=True)
    assert _off(user) == set()  # a mail scanner opening the link changes nothing

    response = client.post(path)
    assert response.status_code == 200
    assert "gets no more “Commissions earned” mails" in response.get_data(as_text=True)
    assert _off(user) == {"earnings"}
    assert client.post(path).status_code == 200  # twice: still off, no error
    entry = db.session.scalar(
        select(AuditEntry).where(AuditEntry.action == "user.mail_unsubscribed")
    )
    assert entry.details == {"category": "earnings", "via": "link"}


def test_one_click_post_from_a_mail_client(app, client, smtp_server):
    user = make_user()
    path = _mailed_link(app, smtp_server, user, "payouts")
    response = client.post(
        path,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert _off(user) == {"payouts"}
    entry = db.session.scalar(
        select(AuditEntry).where(AuditEntry.action == "user.mail_unsubscribed")
    )
    assert entry.details == {"category": "payouts", "via": "one-click"}
    # Off: the next payout mail is not queued at all.
    assert queue_if_wanted(user, "welcome", {}, "payouts") is None
    db.session.commit()
    queued = select(func.count()).select_from(OutboxMail).where(OutboxMail.category == "payouts")
    assert db.session.scalar(queued) == 1  # the mail whose link was used


def test_a_tampered_link_is_refused_and_changes_nothing(app, client, smtp_server):
    user = make_user()
    path = _mailed_link(app, smtp_server, user)
    tampered = path[:-2] + ("AA" if not path.endswith("AA") else "BB")
    answers = (client.get(tampered), client.post(tampered), client.post(tampered, headers=HX))
    for response in answers:
        assert response.status_code in (400, 422)
        assert str(escape(FORGED)) in response.get_data(as_text=True)
    assert _off(user) == set()


def test_forged_links_are_refused(app, client):
    user = make_user()
    links = [
        "/mail/unsubscribe/not-a-token",
        "/mail/unsubscribe/%C3%A9.x",
        # signed, but for another purpose (a password reset link's token)
        "/mail/unsubscribe/" + make_token("password-reset", {"u": user.id, "c": "earnings"}),
        # signed for unsubscribing, but account mails cannot be turned off
        "/mail/unsubscribe/" + make_token(PURPOSE, {"u": user.id, "c": "account"}),
        "/mail/unsubscribe/" + make_token(PURPOSE, {"u": "nobody", "c": "earnings"}),
        "/mail/unsubscribe/" + make_token(PURPOSE, ["not", "a", "dict"]),
    ]
    for link in links:
        assert client.get(link).status_code == 400
        response = client.post(link, data="List-Unsubscribe=One-Click")
        assert response.status_code == 422
        assert str(escape(FORGED)) in response.get_data(as_text=True)
    assert _off(user) == set()


def test_another_accounts_link_is_refused_while_signed_in(app, client):
    owner, other = make_user(), make_user()
    path = unsubscribe_url(owner, "network").removeprefix("http://localhost")
    log_in(client, other.email)
    assert client.get(path).status_code == 400
    response = client.post(path)
    assert response.status_code == 422
    assert str(escape(OTHER_ACCOUNT)) in response.get_data(as_text=True)
    assert _off(owner) == set()
    assert _off(other) == set()
