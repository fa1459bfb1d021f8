"""Reading the audit log for the admin viewer: filtered keyset pages, newest first, and every
matching entry for the CSV export. Each filter is served by an index of ``audit_log``
(``created_at, id``; ``actor_id, created_at, id``; ``subject_type, subject_id, created_at,
id``; ``action`` by prefix), so a page costs the same on the first and the millionth entry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, select, tuple_

from app.extensions import db
from app.models import AuditEntry, User
from app.pagination import Cursor
from app.services.accounts.accounts import find_user_by_email

PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditFilter:
    """Every field optional. ``actor_id`` is a user id (the view resolves a username or an
    email); ``action`` is a prefix (``payout.`` matches every payout action); the dates are
    inclusive days (UTC)."""

    actor_id: str | None = None
    action: str | None = None
    subject_type: str | None = None
    subject_id: str | None = None
    created_from: date | None = None
    created_to: date | None = None


@dataclass(frozen=True)
class AuditRow:
    id: int
    created_at: datetime
    action: str
    actor_id: str | None
    actor: str | None  # the actor's username; None for the system
    subject_type: str | None
    subject_id: str | None
    ip_hash: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    next_cursor: Cursor | None  # the last row shown when there are older ones


def find_actor(needle: str) -> str | None:
    """The id of the user with this email (however spelled) or username (any case), or None."""
    needle = needle.strip()
    if "@" in needle:
        user = find_user_by_email(needle)
        return user.id if user else None
    return db.session.scalar(select(User.id).where(func.lower(User.username) == needle.lower()))


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _query(wanted: AuditFilter) -> Select:
    query = select(
        AuditEntry.id,
        AuditEntry.created_at,
        AuditEntry.action,
        AuditEntry.actor_id,
        User.username.label("actor"),
        AuditEntry.subject_type,
        AuditEntry.subject_id,
        AuditEntry.ip_hash,
        AuditEntry.details,
    ).outerjoin(User, User.id == AuditEntry.actor_id)
    if wanted.actor_id:
        query = query.where(AuditEntry.actor_id == wanted.actor_id)
    if wanted.action:
        query = query.where(AuditEntry.action.startswith(wanted.action, autoescape=True))
    if wanted.subject_type:
        query = query.where(AuditEntry.subject_type == wanted.subject_type)
    if wanted.subject_id:
        query = query.where(AuditEntry.subject_id == wanted.subject_id)
    if wanted.created_from:
        query = query.where(AuditEntry.created_at >= _day_start(wanted.created_from))
    # The last representable day has no next day: it bounds nothing.
    if wanted.created_to and wanted.created_to < date.max:
        end = _day_start(wanted.created_to + timedelta(days=1))
        query = query.where(AuditEntry.created_at < end)
    return query.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())


def find_entries(wanted: AuditFilter, before: Cursor | None = None) -> AuditPage:
    """Newest first, ``PAGE_SIZE`` at a time, continuing before ``before`` (keyset on
    ``(created_at, id)``, never OFFSET). A cursor whose id is not a number answers ValueError."""
    query = _query(wanted)
    if before:
        position = tuple_(before.created_at, int(before.id))
        query = query.where(tuple_(AuditEntry.created_at, AuditEntry.id) < position)
    rows = [AuditRow(**row._mapping) for row in db.session.execute(query.limit(PAGE_SIZE + 1))]
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return AuditPage(rows, Cursor(rows[-1].created_at, str(rows[-1].id)) if more else None)


def iter_entries(wanted: AuditFilter) -> Iterator[AuditRow]:
    """Every matching entry, newest first, from a server-side cursor (for the export)."""
    result = db.session.execute(
        _query(wanted).execution_options(yield_per=1000, stream_results=True)
    )
    for row in result:
        yield AuditRow(**row._mapping)
