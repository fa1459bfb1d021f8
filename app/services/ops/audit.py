"""Writing to the append-only audit log, beside the change it records (same transaction)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry


def record(
    action: str,
    *,
    actor_id: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    ip_hash: str | None = None,
    **details: Any,
) -> AuditEntry:
    """Add an audit entry to the session; it commits (or rolls back) with the change itself."""
    entry = AuditEntry(
        action=action,
        actor_id=actor_id,
        subject_type=subject_type,
        subject_id=subject_id,
        ip_hash=ip_hash,
        details={k: v for k, v in details.items() if v is not None},
    )
    db.session.add(entry)
    return entry


def record_own(action: str, user_id: str, ip_hash: str | None = None, **details: Any) -> AuditEntry:
    """An action a user took on their own account (actor and subject are the user)."""
    return record(
        action,
        actor_id=user_id,
        subject_type="user",
        subject_id=user_id,
        ip_hash=ip_hash,
        **details,
    )


def entries_about(subject_type: str, subject_id: str, limit: int = 50) -> list[AuditEntry]:
    """The newest audit entries about one subject (the ``(subject_type, subject_id)`` index)."""
    return list(
        db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.subject_type == subject_type, AuditEntry.subject_id == subject_id)
            .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
            .limit(limit)
        )
    )
