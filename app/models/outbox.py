"""The mail outbox: one row per mail, written in the transaction of the event it tells about.

The row holds the mail as rendered (subject, text and HTML parts, its Message-ID and
unsubscribe link), so every attempt sends the same bytes; the send job takes its id.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID_LENGTH, Base, IdMixin, TimestampMixin
from app.models.transitions import HasStatus, Transitions, sql_in

OUTBOX_TRANSITIONS = Transitions(
    "outbox mail",
    {
        # Waiting for its first attempt.
        "pending": frozenset({"sending"}),
        # Claimed by one worker, which is talking to the SMTP server.
        "sending": frozenset({"sent", "failed", "dead"}),
        # Refused for now (or its worker died mid-send): tried again at next_attempt_at.
        "failed": frozenset({"sending", "dead"}),
        "sent": frozenset(),
        # Refused for good, or out of attempts: logged as an error, the row keeps last_error.
        "dead": frozenset(),
    },
)
# "account" mails (password reset, email change, welcome) are never unsubscribed from.
ACCOUNT_CATEGORY = "account"
MAIL_CATEGORIES = frozenset({ACCOUNT_CATEGORY, "network", "earnings", "payouts", "flags"})
# Waiting for a worker: a sweeper looks for these when they wait too long.
WAITING_STATUSES = frozenset({"pending", "failed"})


class OutboxMail(HasStatus, IdMixin, TimestampMixin, Base):
    TRANSITIONS = OUTBOX_TRANSITIONS
    __tablename__ = "outbox"

    # Whose mail it is (null for a mail to an address alone); non-account mails need one, for
    # their unsubscribe link.
    user_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE")
    )
    recipient: Mapped[str] = mapped_column(String(254))
    # What the mail is (its template's name, e.g. "password_reset"), and its category for
    # unsubscribing.
    kind: Mapped[str] = mapped_column(String(40))
    category: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    # Fixed when the mail is queued: a resend carries the same one, so receivers can dedupe.
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    unsubscribe_url: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # When the current (or last) attempt started: a "sending" row older than the send
    # timeout lost its worker.
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"status IN ({sql_in(OUTBOX_TRANSITIONS.statuses)})", name="status"),
        CheckConstraint(f"category IN ({sql_in(MAIL_CATEGORIES)})", name="category"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        CheckConstraint("recipient LIKE '%_@_%'", name="recipient_shape"),
        CheckConstraint("(status = 'sent') = (sent_at IS NOT NULL)", name="sent_has_time"),
        CheckConstraint(
            "status NOT IN ('sending', 'sent', 'failed', 'dead') OR claimed_at IS NOT NULL",
            name="attempted_was_claimed",
        ),
        CheckConstraint(
            "status NOT IN ('failed', 'dead') OR last_error IS NOT NULL", name="failure_has_error"
        ),
        CheckConstraint(
            "CASE WHEN category = 'account' THEN unsubscribe_url IS NULL"
            " ELSE unsubscribe_url IS NOT NULL AND user_id IS NOT NULL END",
            name="unsubscribe_unless_account",
        ),
        # The sweeper's and the send job's look-up: mails still waiting, by when they are due.
        Index(
            "ix_outbox_waiting_next_attempt_at",
            next_attempt_at,
            postgresql_where=text(f"status IN ({sql_in(WAITING_STATUSES)})"),
        ),
        Index("ix_outbox_user_id", user_id),
        # /dev/mail lists the newest first.
        Index("ix_outbox_created_at", "created_at"),
    )

    def __repr__(self) -> str:
        return f"<OutboxMail {self.kind} to {self.recipient} {self.status}>"
