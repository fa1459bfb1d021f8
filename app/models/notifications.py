"""Notification mails: who opted out of which category, what waits for the daily digests,
and which digests were sent (at most one per user, kind and day)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID_LENGTH, Base
from app.models.outbox import ACCOUNT_CATEGORY, MAIL_CATEGORIES
from app.models.transitions import sql_in

# The categories a user may turn off: every one but account mails.
OPTIONAL_CATEGORIES = MAIL_CATEGORIES - {ACCOUNT_CATEGORY}
# What the daily digests tell about, and the category each one's mail belongs to.
DIGEST_CATEGORIES = {"referral_joined": "network", "commission_earned": "earnings"}


class MailOptOut(Base):
    """A user who turned a category off: its mails are not queued for them."""

    __tablename__ = "mail_opt_outs"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    category: Mapped[str] = mapped_column(String(20), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"category IN ({sql_in(OPTIONAL_CATEGORIES)})", name="category"),
    )


class MailNotice(Base):
    """Something a daily digest will tell ``user_id`` about, written by triggers in the
    transaction of the event itself (migration 0022): a user who joined with their link
    (tier 1 only: ``users.referred_by``), or a commission they earned. A digest deletes the
    notices it told about."""

    __tablename__ = "mail_notices"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(20))
    referred_user_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE")
    )
    commission_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("commissions.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"kind IN ({sql_in(DIGEST_CATEGORIES)})", name="kind"),
        CheckConstraint(
            "(kind = 'referral_joined') = (referred_user_id IS NOT NULL)"
            " AND (kind = 'commission_earned') = (commission_id IS NOT NULL)",
            name="subject_of_kind",
        ),
        # The digest job's look-up: whose notices of a kind wait, oldest first.
        Index("ix_mail_notices_kind_user_id", kind, user_id, id),
    )


class MailDigest(Base):
    """A digest sent: the key makes it one per user, kind and (UTC) day, however often the
    job runs."""

    __tablename__ = "mail_digests"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    mail_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("outbox.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (CheckConstraint(f"kind IN ({sql_in(DIGEST_CATEGORIES)})", name="kind"),)
