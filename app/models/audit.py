"""The append-only audit log: the database refuses UPDATE and DELETE on it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID_LENGTH, Base


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    action: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="RESTRICT")
    )
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    ip_hash: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    # The admin viewer pages newest first by (created_at, id) under each filter: one index
    # per filter ends in those columns, so a page is an index range, never a sort of all rows.
    __table_args__ = (
        Index("ix_audit_log_created_at_id", "created_at", "id"),
        Index("ix_audit_log_actor", "actor_id", "created_at", "id"),
        Index("ix_audit_log_subject", "subject_type", "subject_id", "created_at", "id"),
        # Equality (one action, newest first) and prefix (LIKE 'payout.%') whatever the
        # database's collation.
        Index(
            "ix_audit_log_action_pattern",
            "action",
            "created_at",
            "id",
            postgresql_ops={"action": "varchar_pattern_ops"},
        ),
    )
