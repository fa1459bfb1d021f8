"""Pooled connections are pinged at checkout only after sitting idle (DB_PING_IDLE_SECONDS)."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import exc, text

from app import create_app
from app.extensions import db

PID = text("SELECT pg_backend_pid()")


def _pool_app(app, idle_seconds: float):
    return create_app({**app.config, "DB_PING_IDLE_SECONDS": idle_seconds})


def _count_pings(monkeypatch, engine) -> list[int]:
    pings: list[int] = []
    real = engine.dialect.do_ping

    def counted(dbapi_connection):
        pings.append(1)
        return real(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


def _terminate(app, pid: int) -> None:
    url = app.config["SQLALCHEMY_DATABASE_URI"].replace("+psycopg", "")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.1)  # the backend exits


def test_an_idle_connection_that_died_is_pinged_and_replaced_before_use(app, monkeypatch):
    pool_app = _pool_app(app, 0.2)
    with pool_app.app_context():
        pings = _count_pings(monkeypatch, db.engine)
        with db.engine.connect() as conn:
            first = conn.execute(PID).scalar_one()
        _terminate(pool_app, first)
        time.sleep(0.3)  # idle longer than DB_PING_IDLE_SECONDS
        with db.engine.connect() as conn:
            assert conn.execute(PID).scalar_one() != first
        assert pings == [1]
        db.engine.dispose()


def test_a_connection_given_back_a_moment_ago_is_not_pinged(app, monkeypatch):
    pool_app = _pool_app(app, 60)
    with pool_app.app_context():
        assert db.engine.pool._pre_ping is False
        pings = _count_pings(monkeypatch, db.engine)
        for _ in range(5):
            with db.engine.connect() as conn:
                pid = conn.execute(PID).scalar_one()
        assert pings == []
        # Within the window the request's own statement finds the connection lost: it fails,
        # SQLAlchemy invalidates the pool, and the next checkout connects afresh.
        _terminate(pool_app, pid)
        with pytest.raises(exc.OperationalError), db.engine.connect() as conn:
            conn.execute(PID)
        with db.engine.connect() as conn:
            assert conn.execute(PID).scalar_one() != pid
        db.engine.dispose()


def test_zero_seconds_pings_on_every_checkout(app):
    pool_app = _pool_app(app, 0)
    with pool_app.app_context():
        assert db.engine.pool._pre_ping is True
        db.engine.dispose()
