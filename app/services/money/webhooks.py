"""Provider events: stored first, processed by workers, swept up when a job was lost.

The endpoint stores the verified event (unique per provider and event id: a redelivery is a
no-op) and commits before it answers 200; a drain job is requested after that commit. If
Redis is down then, the event stays unprocessed and the sweeper requests a drain later.
Draining locks events in batches (``SKIP LOCKED``: two workers take different ones), applies
their reports (idempotent upserts) and accrues all touched sales in one statement — a
crash midway rolls the batch back, and a rerun converges.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import ModuleType

from sqlalchemy import BigInteger, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from app.extensions import db
from app.models import User, WebhookEvent
from app.providers import (
    AccountReport,
    CustomerReport,
    DisputeReport,
    RefundReport,
    Report,
    TransferReversalReport,
    VerifiedEvent,
    lemonsqueezy,
    read_reports,
    stripe,
    stripe_connect,
)
from app.services.money.commissions import join_accruals, settle_sales
from app.services.money.sales import (
    SaleReport,
    existing_user_ids,
    link_customer,
    lock_payments,
    payment_keys,
    record_dispute,
    record_refund,
    record_sale,
)
from app.services.ops import audit
from app.services.payouts.reversals import apply_transfer_reversal
from app.services.payouts.stripe_accounts import apply_account_report

PROVIDER_MODULES: dict[str, ModuleType] = {
    "stripe": stripe,
    "lemon_squeezy": lemonsqueezy,
    "stripe_connect": stripe_connect,
}
MAX_ATTEMPTS = 10


_STORE = text(
    """
    INSERT INTO webhook_events (provider, event_id, event_type, payload)
    SELECT CAST(:provider AS varchar), CAST(:event_id AS varchar),
           CAST(:event_type AS varchar), CAST(:payload AS jsonb)
    WHERE NOT EXISTS (  -- processed long ago and archived (flask archive)
        SELECT 1 FROM webhook_events_archive WHERE provider = :provider AND event_id = :event_id
    )
    ON CONFLICT (provider, event_id) DO NOTHING
    RETURNING id
    """
)


def store_event(provider: str, event: VerifiedEvent) -> int | None:
    """The stored event's id, or None when it was already stored (a redelivery).

    The body is stored as received (one statement, no re-encoding of the parsed JSON)."""
    return db.session.execute(
        _STORE,
        {
            "provider": provider,
            "event_id": event.event_id,
            "event_type": event.event_type[:64],
            "payload": event.body,
        },
    ).scalar_one_or_none()


def _known(candidate: object, users: set[str]) -> str | None:
    return candidate if isinstance(candidate, str) and candidate in users else None


def apply_reports(reports: list[Report]) -> tuple[list[str], list[str]]:
    """Apply what events say. Returns the sales touched, and those whose refunds or
    disputes were reported (only these need their commissions realigned). User ids in the
    payloads come from outside: each is checked once, here."""
    touched: list[str] = []
    refunded: list[str] = []
    users = existing_user_ids(
        report.buyer_id if isinstance(report, SaleReport) else report.user_id
        for report in reports
        if isinstance(report, SaleReport | CustomerReport)
    )
    for report in reports:
        if isinstance(report, SaleReport):
            buyer_id = _known(report.buyer_id, users)
            # A payment naming both buyer and customer teaches us the customer too.
            touched += link_customer(report.provider, report.customer_id, buyer_id)
            touched.append(record_sale(replace(report, buyer_id=buyer_id)))
        elif isinstance(report, RefundReport):
            refunded.append(
                record_refund(
                    report.provider, report.external_id, report.refunded_total, report.aliases
                )
            )
        elif isinstance(report, DisputeReport):
            refunded.append(
                record_dispute(
                    report.provider,
                    report.external_id,
                    report.disputed,
                    is_closed=report.is_closed,
                    aliases=report.aliases,
                )
            )
        elif isinstance(report, CustomerReport):
            user_id = _known(report.user_id, users)
            touched += link_customer(report.provider, report.customer_id, user_id)
        elif isinstance(report, AccountReport):
            apply_account_report(report)
        elif isinstance(report, TransferReversalReport):
            apply_transfer_reversal(report)
    return touched + refunded, refunded


_CLAIM = text(
    """
    SELECT id FROM webhook_events
    WHERE processed_at IS NULL AND id <> ALL(:skip) AND attempts < :max_attempts
      AND dismissed_at IS NULL
    ORDER BY id LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
).bindparams(bindparam("skip", type_=ARRAY(BigInteger)))


def claim_events(limit: int, skip: Collection[int] = ()) -> list[int]:
    """Lock up to ``limit`` unprocessed events, oldest first, that no one else holds and
    that have not failed ``MAX_ATTEMPTS`` times (those are parked: they wait for a person,
    see ``retry_parked_event``) nor been dismissed."""
    params = {"skip": list(skip), "limit": limit, "max_attempts": MAX_ATTEMPTS}
    return list(db.session.scalars(_CLAIM, params))


def process_events(event_pks: list[int]) -> int:
    """Apply these events, each once: locked, their reports applied in order, then every
    sale they touched accrued in one set-based statement and realigned with its refunds.
    Returns how many were processed (already processed ones are skipped); caller commits.
    Batches run in parallel (the accruals lock shared, ``join_accruals``); each locks the
    keys of every payment its events name (``lock_payments``) before it changes any sale,
    so two batches naming one payment take turns instead of locking its rows in opposite
    orders."""
    join_accruals()
    events = db.session.scalars(
        select(WebhookEvent)
        .where(
            WebhookEvent.id.in_(event_pks),
            WebhookEvent.processed_at.is_(None),
            WebhookEvent.dismissed_at.is_(None),  # dismissed while a batch was retried
        )
        .order_by(WebhookEvent.id)
        .with_for_update()
    ).all()
    reports = [
        report
        for event in events
        for report in read_reports(PROVIDER_MODULES[event.provider], event.payload)
    ]
    lock_payments(
        payment_keys(report.provider, report.external_id, report.aliases)
        for report in reports
        if isinstance(report, SaleReport | RefundReport | DisputeReport)
    )
    touched, reported = apply_reports(reports)
    settle_sales(touched, reported)
    now = datetime.now(UTC)
    for event in events:
        event.processed_at = now
        event.attempts += 1
    return len(events)


def record_failure(event_pk: int, error: str, *, is_final: bool = False) -> None:
    """Note a failed attempt (in its own transaction, after the failed one rolled back). A
    final failure (a malformed event: retrying cannot change it) parks the event at once."""
    attempts = MAX_ATTEMPTS if is_final else WebhookEvent.attempts + 1
    db.session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_pk)
        .values(attempts=attempts, last_error=error[:2000])
    )


def has_stale_events(older_than: timedelta) -> bool:
    """Whether an event a drain would claim has waited longer than ``older_than`` (its job
    was lost, or fails). Parked and dismissed events do not count: no drain takes them."""
    return bool(
        db.session.scalar(
            text(
                "SELECT EXISTS (SELECT 1 FROM webhook_events WHERE processed_at IS NULL "
                "AND attempts < :max_attempts AND dismissed_at IS NULL "
                "AND received_at < clock_timestamp() - :age)"
            ),
            {"age": older_than, "max_attempts": MAX_ATTEMPTS},
        )
    )


# Parked: failed MAX_ATTEMPTS times, so no drain claims it; it waits for a person.
_PARKED = (
    WebhookEvent.processed_at.is_(None),
    WebhookEvent.dismissed_at.is_(None),
    WebhookEvent.attempts >= MAX_ATTEMPTS,
)
PARKED_LISTED = 200


def parked_events(limit: int = PARKED_LISTED) -> list[WebhookEvent]:
    """The parked events, oldest first, at most ``limit``."""
    return list(
        db.session.scalars(
            select(WebhookEvent).where(*_PARKED).order_by(WebhookEvent.id).limit(limit)
        )
    )


def _decide_parked(
    event_pk: int, action: str, admin: User, **values: object
) -> WebhookEvent | None:
    # One conditional UPDATE: of two admins deciding at once, exactly one does.
    event = db.session.scalars(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_pk, *_PARKED)
        .values(**values)
        .returning(WebhookEvent)
    ).one_or_none()
    if event is None:
        return None
    audit.record(
        action,
        actor_id=admin.id,
        subject_type="webhook_event",
        subject_id=str(event.id),
        provider=event.provider,
        event_id=event.event_id,
        event_type=event.event_type,
        last_error=(event.last_error or "")[:500] or None,
    )
    return event


def retry_parked_event(event_pk: int, admin: User) -> WebhookEvent | None:
    """Put a parked event back in line: its attempts start again from 0 (its last error is
    kept until the next try). Audited. None, changing nothing, when it is not parked (any
    more). The caller requests a drain after the commit."""
    return _decide_parked(event_pk, "webhook.retried", admin, attempts=0)


def dismiss_parked_event(event_pk: int, admin: User) -> WebhookEvent | None:
    """Give up on a parked event: it is never claimed again and no alarm counts it; the row
    stays, with who dismissed it and when. Audited. None, changing nothing, when it is not
    parked (any more)."""
    return _decide_parked(
        event_pk, "webhook.dismissed", admin, dismissed_at=func.now(), dismissed_by=admin.id
    )
