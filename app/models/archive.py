"""Archive tables: processed provider events and old link clicks moved out of the live tables
by ``flask archive`` (``app/services/ops/archive.py``), row for row with their ids, so the
live tables stay small and nothing is lost."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID_LENGTH, Base


class ArchivedWebhookEvent(Base):
    """A processed ``webhook_events`` row. Unique by (provider, event_id) like the live table:
    a redelivery of an archived event is recognised (``store_event``) and not stored again."""

    __tablename__ = "webhook_events_archive"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(SmallInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    archived_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (
        UniqueConstraint(
            "provider", "event_id", name="uq_webhook_events_archive_provider_event_id"
        ),
    )


class ArchivedReferralClick(Base):
    """A ``referral_clicks`` row older than the live window (deleted with its referrer)."""

    __tablename__ = "referral_clicks_archive"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    referrer_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    visitor_hash: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(512))
    clicked_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    archived_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
