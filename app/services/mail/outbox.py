"""The outbox: mails written in the transaction of their event, each sent once.

``queue_mail`` renders the mail, adds its row and has ``send_mail_job`` enqueued once the
transaction commits (dropped with it on rollback). A send claims the row first
(``claim_mail``: ``FOR UPDATE SKIP LOCKED`` and a status check, committed as ``sending``),
so a job run twice, or two workers, send it once. A refused attempt waits with exponential
backoff (``record_failure``); the workers' sweeper enqueues what is due (``mails_due``) and
gives back rows whose worker died mid-send (``reclaim_stale``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import case, select, update

from app.extensions import db
from app.models import OUTBOX_TRANSITIONS, OutboxMail, User
from app.models.base import new_id
from app.models.outbox import ACCOUNT_CATEGORY, MAIL_CATEGORIES, WAITING_STATUSES
from app.services.mail.rendering import render_mail
from app.services.mail.smtp import sender_domain
from app.services.mail.unsubscribe import unsubscribe_url

# Attempts before a mail is given up (about a day and a half of backoff in all).
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=60)
BACKOFF_CAP = timedelta(hours=12)
# A row still "sending" this long after its claim lost its worker (the SMTP timeout is far
# shorter): it is given back as failed and sent again.
SENDING_TIMEOUT = timedelta(minutes=10)


def queue_mail(
    recipient: User | str,
    kind: str,
    template: str | None = None,
    context: Mapping[str, Any] | None = None,
    category: str = ACCOUNT_CATEGORY,
    *,
    user: User | None = None,
) -> OutboxMail:
    """Render ``mail/<template>`` (default: ``kind``) and add it to the outbox, to be sent
    after the current transaction commits (nothing is sent if it rolls back).

    ``recipient`` is a user (their current address) or an address; ``user`` names whose mail
    an address gets (e.g. a new address to confirm). The templates see ``context`` plus
    ``user``. Mails outside the ``account`` category need a user: they carry the link of
    ``unsubscribe_url(user, category)``. Flushes only."""
    if category not in MAIL_CATEGORIES:
        raise ValueError(f"unknown mail category {category!r}")
    if isinstance(recipient, User):
        user, address = recipient, recipient.email
    else:
        address = recipient
    unsubscribe = None
    if category != ACCOUNT_CATEGORY:
        if user is None:
            raise ValueError(f"a {category!r} mail needs a user to unsubscribe")
        unsubscribe = unsubscribe_url(user, category)
    rendered = render_mail(template or kind, {**(context or {}), "user": user}, unsubscribe)
    mail_id = new_id()
    mail = OutboxMail(
        id=mail_id,
        user_id=user.id if user else None,
        recipient=address,
        kind=kind,
        category=category,
        subject=rendered.subject,
        body_text=rendered.text,
        body_html=rendered.html,
        message_id=f"<{mail_id}@{sender_domain(current_app.config)}>",
        unsubscribe_url=unsubscribe,
    )
    db.session.add(mail)
    db.session.flush()
    request_send(mail.id)
    return mail


def request_send(mail_id: str) -> None:
    """Have a worker send this mail once the current transaction commits."""
    # Imported here: the job module imports this one.
    from app.jobs.mail import send_mail_job
    from app.jobs.queueing import enqueue_after_commit

    enqueue_after_commit(send_mail_job, mail_id)


def claim_mail(mail_id: str) -> OutboxMail | None:
    """Take a waiting mail that is due for an attempt: ``sending``, one more attempt. ``None``
    when it is sent, dead, being sent, not due yet or locked by another worker's claim. The
    caller commits before talking to the SMTP server, so no other worker claims it meanwhile."""
    mail = db.session.execute(
        select(OutboxMail)
        .where(
            OutboxMail.id == mail_id,
            OutboxMail.status.in_(WAITING_STATUSES),
            OutboxMail.next_attempt_at <= _now(),
        )
        .with_for_update(skip_locked=True)
    ).scalar_one_or_none()
    if mail is None:
        return None
    mail.transition_to("sending")
    mail.attempts += 1
    mail.claimed_at = _now()
    db.session.flush()
    return mail


def record_sent(mail: OutboxMail) -> None:
    mail.transition_to("sent")
    mail.sent_at = _now()
    mail.last_error = None
    db.session.flush()


def record_failure(mail: OutboxMail, error: str, *, is_permanent: bool = False) -> None:
    """A refused attempt: ``failed`` and due again after ``backoff(attempts)``, or ``dead``
    when the refusal is permanent or the attempts are used up. Flushes only."""
    mail.last_error = error[:2000]
    if is_permanent or mail.attempts >= MAX_ATTEMPTS:
        mail.transition_to("dead")
    else:
        mail.transition_to("failed")
        mail.next_attempt_at = _now() + backoff(mail.attempts)
    db.session.flush()


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, 8 ... minutes after the ``attempts``-th attempt, at most ``BACKOFF_CAP``."""
    return min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)


def mails_due(pending_after: timedelta = timedelta(0), limit: int = 1000) -> list[str]:
    """Ids of waiting mails whose time has come, oldest first: failed attempts whose backoff
    is over, and mails pending for ``pending_after`` (their job was lost: Redis down after
    the commit, a worker gone). Read-only."""
    now = _now()
    return list(
        db.session.scalars(
            select(OutboxMail.id)
            .where(
                OutboxMail.status.in_(WAITING_STATUSES),
                OutboxMail.next_attempt_at
                <= case((OutboxMail.status == "pending", now - pending_after), else_=now),
            )
            .order_by(OutboxMail.next_attempt_at)
            .limit(limit)
        )
    )


def reclaim_stale(timeout: timedelta = SENDING_TIMEOUT) -> int:
    """Give back mails left ``sending`` longer than ``timeout`` (their worker died): failed,
    due now. Whether the dead worker's message reached the server is unknown, so such a mail
    may arrive twice, with the same Message-ID. One whose attempts are used up is ``dead``
    instead (logged), so a mail that kills its worker every time is not sent without end.
    How many were given back or given up. Flushes only."""
    is_used_up = OutboxMail.attempts >= MAX_ATTEMPTS
    rows = db.session.execute(
        update(OutboxMail)
        .where(OutboxMail.status == "sending", OutboxMail.claimed_at < _now() - timeout)
        .where(OutboxMail.status.in_(OUTBOX_TRANSITIONS.sources_of("failed")))
        .where(OutboxMail.status.in_(OUTBOX_TRANSITIONS.sources_of("dead")))
        .values(
            status=case((is_used_up, "dead"), else_="failed"),
            next_attempt_at=_now(),
            last_error=case(
                (is_used_up, "The worker stopped while sending, at the last attempt: given up."),
                else_="The worker stopped while sending; sent again.",
            ),
        )
        .returning(OutboxMail.id, OutboxMail.status)
    ).all()
    for mail_id, status in rows:
        if status == "dead":
            current_app.logger.error("Mail %s given up: its worker stopped while sending", mail_id)
    return len(rows)


def recent_mails(limit: int = 100) -> list[OutboxMail]:
    """The newest mails first, for /dev/mail."""
    return list(
        db.session.scalars(
            select(OutboxMail)
            .order_by(OutboxMail.created_at.desc(), OutboxMail.id.desc())
            .limit(limit)
        )
    )


def _now() -> datetime:
    return datetime.now(UTC)
