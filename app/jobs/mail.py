"""Sending outbox mails from workers: the job takes the mail's id; run twice, it sends once."""

from __future__ import annotations

import smtplib

from flask import current_app

from app.extensions import db
from app.services.mail import outbox
from app.services.mail.smtp import PermanentRefusal, build_message, parse_mail_url, send_message
from app.services.program.identity import program_name


def send_mail_job(mail_id: str) -> str:
    """Send one outbox mail: "sent", "failed" (due again after its backoff, enqueued by the
    sweeper), "dead", "kept" (no ``MAIL_URL``: development) or "nothing" (not waiting, not
    due, or claimed by another worker).

    Two commits: the claim (``sending``) before the SMTP server is called, so no other
    worker sends it meanwhile; the outcome after. A worker that dies between the two leaves
    the row ``sending``; the sweeper gives it back after ``SENDING_TIMEOUT`` and it is sent
    again, with the same Message-ID. The job never raises for a refusal: the row's backoff,
    not RQ's retry, decides when it is tried again."""
    mail = outbox.claim_mail(mail_id)
    if mail is None:
        db.session.rollback()
        return "nothing"
    db.session.commit()
    config = current_app.config
    if not config["MAIL_URL"]:
        outbox.record_sent(mail)
        db.session.commit()
        current_app.logger.info("Mail %s kept for /dev/mail (no MAIL_URL)", mail_id)
        return "kept"
    message = build_message(mail, config["MAIL_FROM"], program_name())
    try:
        send_message(parse_mail_url(config["MAIL_URL"]), message)
    except PermanentRefusal as exc:
        outbox.record_failure(mail, str(exc), is_permanent=True)
    except (smtplib.SMTPException, OSError) as exc:
        outbox.record_failure(mail, f"{type(exc).__name__}: {exc}")
    else:
        outbox.record_sent(mail)
    status = mail.status
    db.session.commit()
    if status == "dead":
        current_app.logger.error("Mail %s given up: %s", mail_id, mail.last_error)
    return status
