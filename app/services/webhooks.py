"""Provider events: stored first, processed by workers, swept up when a job was lost.

The endpoint stores the verified event (unique per provider and event id: a redelivery is a
no-op) and commits before it answers 200; processing is enqueued after that commit. If
Redis is down then, the event stays unprocessed and the sweeper enqueues it later.
Processing locks the event row, so two workers never apply one event at once, and applies
reports that are themselves idempotent upserts — a crash midway and a rerun converge.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import ModuleType

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert

from app.extensions import db
from app.models import WebhookEvent
from app.providers import (
    CustomerReport,
    DisputeReport,
    RefundReport,
    Report,
    VerifiedEvent,
    lemonsqueezy,
    stripe,
)
from app.services.commissions import settle_sales
from app.services.sales import SaleReport, link_customer, record_dispute, record_refund, record_sale

PROVIDER_MODULES: dict[str, ModuleType] = {"stripe": stripe, "lemon_squeezy": lemonsqueezy}


def store_event(provider: str, event: VerifiedEvent) -> int | None:
    """The stored event's id, or None when it was already stored (a redelivery)."""
    return db.session.execute(
        insert(WebhookEvent)
        .values(
            provider=provider,
            event_id=event.event_id,
            event_type=event.event_type[:64],
            payload=event.payload,
        )
        .on_conflict_do_nothing(constraint="uq_webhook_events_provider_event_id")
        .returning(WebhookEvent.id)
    ).scalar_one_or_none()


def apply_reports(reports: list[Report]) -> list[str]:
    """Apply what an event says; returns the sales it touched."""
    touched: list[str] = []
    for report in reports:
        if isinstance(report, SaleReport):
            touched.append(record_sale(report))
        elif isinstance(report, RefundReport):
            touched.append(
                record_refund(report.provider, report.external_id, report.refunded_total)
            )
        elif isinstance(report, DisputeReport):
            touched.append(record_dispute(report.provider, report.external_id, report.disputed))
        elif isinstance(report, CustomerReport):
            link_customer(report.provider, report.customer_id, report.user_id)
    return touched


def process_event(event_pk: int) -> bool:
    """Apply one stored event, once. Returns False when it was already processed."""
    event = db.session.scalars(
        select(WebhookEvent).where(WebhookEvent.id == event_pk).with_for_update()
    ).one_or_none()
    if event is None or event.processed_at is not None:
        return False
    settle_sales(apply_reports(PROVIDER_MODULES[event.provider].reports(event.payload)))
    event.processed_at = datetime.now(UTC)
    event.attempts += 1
    return True


def record_failure(event_pk: int, error: str) -> None:
    """Note a failed attempt (in its own transaction, after the failed one rolled back)."""
    db.session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_pk)
        .values(attempts=WebhookEvent.attempts + 1, last_error=error[:2000])
    )


def unprocessed_event_ids(older_than: timedelta, limit: int = 1000) -> list[int]:
    """Events still waiting after ``older_than`` (their job was lost, or is failing)."""
    return list(
        db.session.scalars(
            text(
                "SELECT id FROM webhook_events WHERE processed_at IS NULL "
                "AND received_at < clock_timestamp() - :age ORDER BY received_at LIMIT :limit"
            ),
            {"age": older_than, "limit": limit},
        )
    )
