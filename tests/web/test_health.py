"""Liveness, readiness and the provider events alarm: each for its own audience."""

from __future__ import annotations

import pytest
from redis import Redis
from sqlalchemy import text

from app.extensions import db
from app.jobs.mail import send_mail_job
from app.services.mail.outbox import queue_mail
from app.services.money.webhooks import MAX_ATTEMPTS, dismiss_parked_event
from tests.factories import make_user


@pytest.fixture
def redis_down(app, monkeypatch):
    monkeypatch.setitem(app.extensions, "redis", Redis.from_url("redis://127.0.0.1:1/0"))


def _event(event_id: str, *, minutes_ago: int = 0, attempts: int = 0) -> None:
    db.session.execute(
        text(
            "INSERT INTO webhook_events (provider, event_id, event_type, payload, received_at, "
            "attempts, last_error) VALUES ('stripe', :event_id, 'invoice.paid', '{}', "
            "now() - make_interval(mins => :minutes), :attempts, "
            "'ConnectionError: Error 111 connecting to 10.0.0.7:6379')"
        ),
        {"event_id": event_id, "minutes": minutes_ago, "attempts": attempts},
    )
    db.session.commit()


def test_healthz_is_liveness_only_and_green_whatever_the_dependencies(client, redis_down):
    _event("evt_parked", minutes_ago=60, attempts=MAX_ATTEMPTS)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_is_green_on_a_migrated_database(client):
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "redis": True,
        "migrations": True,
    }


def test_readyz_is_503_when_redis_is_down_and_names_only_the_error_class(client, redis_down):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "fail"
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["redis"]["error"] == "ConnectionError"
    assert set(body["checks"]["redis"]) == {"ok", "error", "ms"}
    assert body["checks"]["database"]["ok"] is True
    assert "127.0.0.1" not in response.get_data(as_text=True)


def test_readyz_is_503_when_migrations_are_behind(client):
    head = db.session.scalar(text("SELECT version_num FROM alembic_version"))
    db.session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    db.session.commit()
    try:
        response = client.get("/readyz")
    finally:
        db.session.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
        db.session.commit()
    assert response.status_code == 503
    assert response.get_json()["checks"]["migrations"] == {
        "ok": False,
        "ms": response.get_json()["checks"]["migrations"]["ms"],
    }


def test_a_parked_event_or_a_backlog_leaves_readyz_green_and_raises_the_alarm(client):
    _event("evt_parked", minutes_ago=60, attempts=MAX_ATTEMPTS)
    assert client.get("/readyz").status_code == 200
    response = client.get("/monitor/webhooks")
    assert response.status_code == 503
    webhooks = response.get_json()["checks"]["webhooks"]
    assert (webhooks["ok"], webhooks["waiting"], webhooks["parked"]) == (False, 0, 1)
    assert "10.0.0.7" not in response.get_data(as_text=True)


def test_the_alarm_counts_events_waiting_too_long(client):
    _event("evt_old", minutes_ago=20)
    _event("evt_new")
    response = client.get("/monitor/webhooks")
    assert response.status_code == 503
    webhooks = response.get_json()["checks"]["webhooks"]
    assert (webhooks["ok"], webhooks["waiting"], webhooks["parked"]) == (False, 2, 0)
    assert webhooks["oldest_seconds"] >= 1200


def test_the_alarm_is_green_with_recent_events_and_ignores_dismissed_ones(client):
    _event("evt_new", attempts=3)
    _event("evt_dismissed", minutes_ago=60, attempts=MAX_ATTEMPTS)
    event_pk = db.session.scalar(
        text("SELECT id FROM webhook_events WHERE event_id = 'evt_dismissed'")
    )
    assert dismiss_parked_event(event_pk, make_user(is_admin=True)) is not None
    db.session.commit()
    assert client.get("/monitor/webhooks").status_code == 200


def test_the_mail_alarm_rings_for_a_mail_given_up_and_says_no_more(app, client, smtp_server):
    assert client.get("/monitor/mail").status_code == 200
    smtp_server.refuse, smtp_server.refusal = 1, "550 5.1.1 No such mailbox"
    user = make_user(email="gone@example.com")
    mail_id = queue_mail(user, "welcome").id
    db.session.commit()
    assert send_mail_job(mail_id) == "dead"
    response = client.get("/monitor/mail")
    assert response.status_code == 503
    assert response.get_json()["checks"]["mail"] == {
        "ok": False,
        "ms": response.get_json()["checks"]["mail"]["ms"],
        "waiting": 0,
        "oldest_seconds": 0,
        "dead": 1,
    }
    assert "gone@example.com" not in response.get_data(as_text=True)
    assert "550" not in response.get_data(as_text=True)


def test_the_mail_alarm_rings_for_a_mail_waiting_over_an_hour(app, client):
    queue_mail(make_user(), "welcome")
    db.session.commit()
    assert client.get("/monitor/mail").status_code == 200  # just queued
    db.session.execute(text("UPDATE outbox SET created_at = now() - interval '61 minutes'"))
    db.session.commit()
    response = client.get("/monitor/mail")
    assert response.status_code == 503
    assert response.get_json()["checks"]["mail"]["waiting"] == 1
