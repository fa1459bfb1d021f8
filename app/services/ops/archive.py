"""Moving old rows out of the live tables: processed provider events and referral clicks
older than a cutoff go to their archive tables (``app/models/archive.py``).

Each batch is one statement, ``DELETE … RETURNING`` feeding an ``INSERT`` into the archive,
so a row is in exactly one of the two tables at every commit: a batch that fails or is
interrupted rolls back whole, and running again carries on. Unprocessed, parked and
dismissed events stay live (they still need a person or a worker)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from app.extensions import db

# The oldest rows first, by primary key; SKIP LOCKED leaves a row a worker holds to later.
_MOVE_EVENTS = text(
    """
    WITH moved AS (
        DELETE FROM webhook_events WHERE id IN (
            SELECT id FROM webhook_events
            WHERE processed_at < :cutoff
            ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED
        )
        RETURNING id, provider, event_id, event_type, payload, received_at, processed_at,
                  attempts, last_error
    )
    INSERT INTO webhook_events_archive (id, provider, event_id, event_type, payload,
                                        received_at, processed_at, attempts, last_error)
    SELECT id, provider, event_id, event_type, payload, received_at, processed_at, attempts,
           last_error
    FROM moved
    """
)
_MOVE_CLICKS = text(
    """
    WITH moved AS (
        DELETE FROM referral_clicks WHERE id IN (
            SELECT id FROM referral_clicks
            WHERE created_at < :cutoff
            ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED
        )
        RETURNING id, referrer_id, visitor_hash, user_agent, clicked_on, created_at
    )
    INSERT INTO referral_clicks_archive (id, referrer_id, visitor_hash, user_agent,
                                         clicked_on, created_at)
    SELECT id, referrer_id, visitor_hash, user_agent, clicked_on, created_at FROM moved
    """
)
MOVES = {"webhook_events": _MOVE_EVENTS, "referral_clicks": _MOVE_CLICKS}


@dataclass(frozen=True)
class Batch:
    table: str
    moved: int


def archive_batch(table: str, cutoff: datetime, batch_size: int) -> Batch:
    """Move up to ``batch_size`` of ``table``'s rows older than ``cutoff`` into its archive
    (the caller commits: one transaction per batch). ``moved`` is 0 when none are left."""
    result = db.session.execute(MOVES[table], {"cutoff": cutoff, "batch": batch_size})
    return Batch(table, result.rowcount)
