"""The outbox: mails written with their event, sent once over real SMTP on loopback, retried
with backoff, kept for /dev/mail without MAIL_URL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from app.extensions import db
from app.jobs.mail import send_mail_job
from app.jobs.queueing import get_queue
from app.jobs.webhooks import sweep
from app.models import OutboxMail
from app.services.mail.outbox import MAX_ATTEMPTS, backoff, queue_mail
from tests.factories import make_user
from tests.signing import run_jobs


def _queue_welcome(user, **options) -> str:
    mail = queue_mail(user, "welcome", **options)
    db.session.commit()
    return mail.id


def _mail(mail_id: str) -> OutboxMail:
    db.session.rollback()
    return db.session.get(OutboxMail, mail_id)


def _make_due(mail_id: str) -> None:
    db.session.execute(
        update(OutboxMail)
        .where(OutboxMail.id == mail_id)
        .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    db.session.commit()


def test_a_queued_mail_arrives_once_with_both_parts(app, smtp_server):
    user = make_user()
    mail_id = _queue_welcome(user)
    run_jobs(app)

    [message] = smtp_server.messages
    assert message["To"] == user.email
    assert message["Subject"] == f"Welcome to Referral program, {user.username}"
    assert message.get_content_type() == "multipart/alternative"
    text_part = message.get_body(("plain",)).get_content()
    html_part = message.get_body(("html",)).get_content()
    link = f"http://localhost/r/{user.referral_code}"
    assert link in text_part
    assert link in html_part
    assert "<html" in html_part
    mail = _mail(mail_id)
    assert (mail.status, mail.attempts) == ("sent", 1)
    assert message["Message-ID"] == mail.message_id
    assert message["List-Unsubscribe"] is None  # an account mail


def test_a_rolled_back_event_queues_and_sends_nothing(app, smtp_server):
    user = make_user()
    queue_mail(user, "welcome")
    db.session.rollback()
    assert get_queue().count == 0
    assert db.session.scalar(select(OutboxMail.id)) is None


def test_the_job_run_twice_sends_once(app, smtp_server):
    mail_id = _queue_welcome(make_user())
    assert send_mail_job(mail_id) == "sent"
    assert send_mail_job(mail_id) == "nothing"
    run_jobs(app)  # the job the commit enqueued: a third run
    assert len(smtp_server.messages) == 1


def test_a_mail_claimed_by_another_worker_is_left_to_it(app, smtp_server):
    mail_id = _queue_welcome(make_user())
    with db.engine.connect() as other_worker:
        other_worker.execute(
            text("SELECT 1 FROM outbox WHERE id = :id FOR UPDATE"), {"id": mail_id}
        )
        assert send_mail_job(mail_id) == "nothing"  # SKIP LOCKED: not waiting for the lock
    assert smtp_server.messages == []


def test_a_refused_attempt_is_retried_with_backoff_and_arrives_once(app, smtp_server):
    smtp_server.refuse = 1
    mail_id = _queue_welcome(make_user())
    assert send_mail_job(mail_id) == "failed"
    mail = _mail(mail_id)
    assert mail.attempts == 1
    assert "451" in mail.last_error
    assert mail.next_attempt_at > datetime.now(UTC) + timedelta(seconds=50)

    assert send_mail_job(mail_id) == "nothing"  # not due yet
    assert sweep() is False
    _make_due(mail_id)
    assert sweep() is True  # the sweeper enqueues what is due
    run_jobs(app)
    assert len(smtp_server.messages) == 1
    mail = _mail(mail_id)
    assert (mail.status, mail.attempts, mail.last_error) == ("sent", 2, None)
    assert smtp_server.messages[0]["Message-ID"] == mail.message_id


@pytest.mark.parametrize("quit_reply", ["421 4.3.2 Shutting down", "500 5.5.1 Unexpected"])
def test_a_mail_taken_by_the_server_is_sent_whatever_it_answers_to_quit(
    app, smtp_server, quit_reply
):
    smtp_server.quit_reply = quit_reply
    mail_id = _queue_welcome(make_user())
    assert send_mail_job(mail_id) == "sent"
    _make_due(mail_id)
    sweep(older_than=timedelta(0))
    run_jobs(app)
    assert len(smtp_server.messages) == 1
    assert _mail(mail_id).status == "sent"


def test_an_unreachable_server_is_a_failed_attempt(app, smtp_server):
    app.config["MAIL_URL"] = "smtp://127.0.0.1:9?starttls=off"  # the fixture puts it back
    mail_id = _queue_welcome(make_user())
    assert send_mail_job(mail_id) == "failed"
    assert "ConnectionRefusedError" in _mail(mail_id).last_error


def test_a_permanent_refusal_is_dead_at_once(app, smtp_server):
    smtp_server.refuse, smtp_server.refusal = 1, "550 5.1.1 No such mailbox"
    mail_id = _queue_welcome(make_user())
    assert send_mail_job(mail_id) == "dead"
    assert "550" in _mail(mail_id).last_error
    assert sweep(older_than=timedelta(0)) is False  # never tried again


def test_a_5xx_before_the_message_is_retried_not_given_up(app, smtp_server):
    # A relay set up wrong refuses every sender alike: the mails wait for the fix.
    smtp_server.refuse_sender = 1
    mail_id = _queue_welcome(make_user())
    assert send_mail_job(mail_id) == "failed"
    assert "530" in _mail(mail_id).last_error
    db.session.execute(update(OutboxMail).values(next_attempt_at=datetime.now(UTC)))
    db.session.commit()
    assert send_mail_job(mail_id) == "sent"
    assert len(smtp_server.messages) == 1


def test_backoff_doubles_up_to_its_cap():
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert backoff(20) == timedelta(hours=12)


def test_the_last_allowed_attempt_refused_makes_the_mail_dead(app, smtp_server):
    smtp_server.refuse = 1
    mail_id = _queue_welcome(make_user())
    db.session.execute(update(OutboxMail).values(attempts=7))
    db.session.commit()
    assert send_mail_job(mail_id) == "dead"


def test_starttls_with_a_login(app, starttls_server):
    mail_id = _queue_welcome(make_user())
    assert send_mail_job(mail_id) == "sent"
    assert starttls_server.tls_used == [True]
    assert _mail(mail_id).status == "sent"


def test_a_mail_left_sending_by_a_dead_worker_is_sent_again(app, smtp_server):
    mail_id = _queue_welcome(make_user())
    db.session.execute(
        update(OutboxMail)
        .where(OutboxMail.id == mail_id)
        .values(status="sending", attempts=1, claimed_at=datetime.now(UTC) - timedelta(hours=1))
    )
    db.session.commit()
    assert send_mail_job(mail_id) == "nothing"  # being sent, as far as anyone knows
    assert sweep() is True
    run_jobs(app)
    [message] = smtp_server.messages
    mail = _mail(mail_id)
    assert (mail.status, mail.attempts) == ("sent", 2)
    assert message["Message-ID"] == mail.message_id


def test_a_mail_whose_workers_keep_dying_is_given_up_after_its_attempts(app, smtp_server):
    # A mail that kills its worker every time (e.g. its job timeout, mid-send) may arrive at
    # each attempt: after the last allowed one it is not sent again.
    mail_id = _queue_welcome(make_user())
    db.session.execute(
        update(OutboxMail)
        .where(OutboxMail.id == mail_id)
        .values(
            status="sending",
            attempts=MAX_ATTEMPTS,
            claimed_at=datetime.now(UTC) - timedelta(hours=1),
        )
    )
    db.session.commit()
    sweep()
    run_jobs(app)
    assert smtp_server.messages == []
    mail = _mail(mail_id)
    assert (mail.status, mail.attempts) == ("dead", MAX_ATTEMPTS)
    assert "worker stopped" in mail.last_error


def test_without_mail_url_mails_are_kept_not_sent(app, smtp_server):
    app.config["MAIL_URL"] = ""  # the fixture puts it back
    mail_id = _queue_welcome(make_user())
    assert send_mail_job(mail_id) == "kept"
    assert smtp_server.messages == []
    assert _mail(mail_id).status == "sent"


def test_other_categories_carry_the_unsubscribe_link_and_headers(app, smtp_server):
    user = make_user()
    _queue_welcome(user, category="network")
    run_jobs(app)
    [message] = smtp_server.messages
    link = message["List-Unsubscribe"].strip("<>")
    assert link.startswith("http://localhost/mail/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link in message.get_body(("plain",)).get_content()


def test_a_non_account_mail_needs_a_user(app):
    with pytest.raises(ValueError, match="needs a user"):
        queue_mail("someone@example.com", "welcome", category="network")


def test_a_queued_mail_cannot_be_rewritten(app):
    mail_id = _queue_welcome(make_user())
    with pytest.raises(DBAPIError, match="cannot change"):
        db.session.execute(
            update(OutboxMail).where(OutboxMail.id == mail_id).values(subject="Changed")
        )
        db.session.flush()
    db.session.rollback()
