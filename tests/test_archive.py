"""``flask archive --older-than``: processed provider events and old clicks move to their
archive tables in batches, row for row; nothing is lost, even when a batch fails midway;
an archived event redelivered by its provider is not stored again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    ArchivedReferralClick,
    ArchivedWebhookEvent,
    AuditEntry,
    ReferralClick,
    WebhookEvent,
)
from app.providers import VerifiedEvent
from app.services.money.webhooks import store_event
from tests.factories import make_user

NOW = datetime.now(UTC)


def _event(n: int, days_ago: int, *, processed: bool = True, dismissed_by=None) -> WebhookEvent:
    at = NOW - timedelta(days=days_ago)
    event = WebhookEvent(
        provider="stripe",
        event_id=f"evt_{n}",
        event_type="checkout.session.completed",
        payload={"id": f"evt_{n}", "n": n},
        received_at=at,
        processed_at=at if processed else None,
        attempts=1,
        last_error="timeout once" if n == 1 else None,
        dismissed_at=at if dismissed_by else None,
        dismissed_by=dismissed_by.id if dismissed_by else None,
    )
    db.session.add(event)
    return event


def _click(referrer, n: int, days_ago: int) -> None:
    at = NOW - timedelta(days=days_ago)
    db.session.add(
        ReferralClick(
            referrer_id=referrer.id,
            visitor_hash=f"{n:064d}",
            user_agent="Mozilla/5.0",
            clicked_on=at.date(),
            created_at=at,
        )
    )


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _ids(model) -> list[int]:
    return sorted(db.session.scalars(select(model.id)))


def _data(runner_admin=None):
    admin = runner_admin or make_user(is_admin=True)
    old = [_event(n, 200 + n) for n in range(1, 6)]
    keep = [_event(6, 10), _event(7, 300, processed=False)]
    keep.append(_event(8, 300, processed=False, dismissed_by=admin))
    referrer = make_user()
    for n in range(3):
        _click(referrer, n, 181 + n)
    _click(referrer, 9, 30)
    db.session.commit()
    return [_columns(e) for e in old], [e.id for e in keep]


def _columns(event: WebhookEvent) -> dict:
    return {c.key: getattr(event, c.key) for c in WebhookEvent.__table__.columns}


def test_archive_moves_old_rows_in_batches_and_loses_none(runner):
    old, keep = _data()
    events, clicks = _count(WebhookEvent), _count(ReferralClick)
    result = runner.invoke(args=["archive", "--older-than", "180d", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "webhook_events: 5 rows archived in 3 batches." in result.output
    assert "referral_clicks: 3 rows archived in 2 batches." in result.output
    db.session.expire_all()
    assert _ids(ArchivedWebhookEvent) == [e["id"] for e in old]
    assert _ids(WebhookEvent) == keep  # recent, unprocessed, dismissed
    assert _count(WebhookEvent) + _count(ArchivedWebhookEvent) == events
    assert _count(ReferralClick) == 1 and _count(ReferralClick) + _count(
        ArchivedReferralClick
    ) == clicks  # fmt: skip
    for original in old:
        moved = db.session.get(ArchivedWebhookEvent, original["id"])
        for column in ("provider", "event_id", "event_type", "payload", "received_at"):
            assert getattr(moved, column) == original[column], column
        assert (moved.processed_at, moved.last_error) == (
            original["processed_at"],
            original["last_error"],
        )
    oldest = db.session.scalars(select(ArchivedReferralClick).order_by(ArchivedReferralClick.id))
    assert [c.clicked_on for c in oldest] == [
        (NOW - timedelta(days=181 + n)).date() for n in range(3)
    ]
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "archive.ran")).one()
    assert entry.details["webhook_events"] == 5 and entry.details["referral_clicks"] == 3
    again = runner.invoke(args=["archive", "--older-than", "180d"])
    assert "webhook_events: 0 rows archived in 0 batches." in again.output


def test_a_failed_batch_leaves_every_row_in_exactly_one_table(runner):
    old, _keep = _data()
    # A stray archive row with the id of the third oldest event: the batch that carries it
    # fails on the archive's primary key, after its DELETE ran.
    db.session.add(
        ArchivedWebhookEvent(
            id=old[2]["id"], provider="lemon_squeezy", event_id="stray", event_type="x",
            payload={}, received_at=NOW, processed_at=NOW, attempts=0,
        )
    )  # fmt: skip
    db.session.commit()
    total = _count(WebhookEvent) + _count(ArchivedWebhookEvent)
    result = runner.invoke(args=["archive", "--older-than", "180d", "--batch-size", "2"])
    assert result.exit_code == 1 and "pk_webhook_events_archive" in str(result.exception)
    db.session.rollback()
    assert _count(WebhookEvent) + _count(ArchivedWebhookEvent) == total
    assert {old[0]["id"], old[1]["id"]} < set(_ids(ArchivedWebhookEvent))  # the first batch stays
    assert {e["id"] for e in old[2:]} < set(_ids(WebhookEvent))  # the failed batch rolled back
    db.session.delete(db.session.get(ArchivedWebhookEvent, old[2]["id"]))
    db.session.commit()
    assert runner.invoke(args=["archive", "--older-than", "180d"]).exit_code == 0
    assert _count(WebhookEvent) + _count(ArchivedWebhookEvent) == total - 1
    assert _count(WebhookEvent) == 3


def test_an_archived_event_redelivered_is_not_stored_again(runner):
    _data()
    assert runner.invoke(args=["archive", "--older-than", "180d"]).exit_code == 0
    body = json.dumps({"id": "evt_1"})
    redelivered = VerifiedEvent("evt_1", "checkout.session.completed", {"id": "evt_1"}, body)
    assert store_event("stripe", redelivered) is None
    fresh = VerifiedEvent("evt_new", "checkout.session.completed", {"id": "evt_new"}, body)
    assert store_event("stripe", fresh) is not None
    db.session.commit()
    assert _count(WebhookEvent) == 4


def test_archive_refuses_an_age_that_is_not_days(runner):
    for raw in ("180", "6m", "0d", "-5d"):
        result = runner.invoke(args=["archive", "--older-than", raw])
        assert result.exit_code == 2 and "a number of days, like 180d" in result.output, raw
    assert _count(AuditEntry) == 0
