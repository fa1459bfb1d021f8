from __future__ import annotations

from sqlalchemy import text

from app.extensions import db


def test_healthz_is_green_on_a_migrated_database(client):
    response = client.get("/healthz")
    body = response.get_json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "redis": True,
        "migrations": True,
        "webhooks": True,
    }
    assert body["checks"]["migrations"]["current"] == body["checks"]["migrations"]["head"]


def test_healthz_is_503_when_redis_is_down(app, client, monkeypatch):
    from redis import Redis

    monkeypatch.setitem(app.extensions, "redis", Redis.from_url("redis://127.0.0.1:1/0"))
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "fail"
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_healthz_is_503_when_migrations_are_behind(client):
    db.session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    db.session.commit()
    try:
        response = client.get("/healthz")
    finally:
        db.session.execute(text("UPDATE alembic_version SET version_num = '0002'"))
        db.session.commit()
    assert response.status_code == 503
    assert response.get_json()["checks"]["migrations"]["current"] == ["0001"]


def test_healthz_is_503_when_webhook_events_wait_too_long(client):
    db.session.execute(
        text(
            "INSERT INTO webhook_events (provider, event_id, event_type, payload, received_at) "
            "VALUES ('stripe', 'evt_old', 'invoice.paid', '{}', now() - interval '20 minutes'), "
            "('stripe', 'evt_new', 'invoice.paid', '{}', now())"
        )
    )
    db.session.commit()
    response = client.get("/healthz")
    assert response.status_code == 503
    webhooks = response.get_json()["checks"]["webhooks"]
    assert (webhooks["ok"], webhooks["waiting"]) == (False, 2)
    assert webhooks["oldest_seconds"] >= 1200
