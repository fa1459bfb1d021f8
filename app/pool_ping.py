"""A pooled connection is pinged before use only when it sat idle in the pool.

SQLAlchemy's ``pool_pre_ping`` sends a round trip on every checkout: on a busy web worker that
is one more round trip per request than the request's own statements (about a fifth of the
tree's expand fragment on the benchmark machine). A connection given back a moment ago by the
previous request is as alive as a ping would show; one that waited longer than
``DB_PING_IDLE_SECONDS`` (a restart, a failover, an idle timeout on the server or in
between) is pinged first, and replaced if the ping fails, as ``pool_pre_ping`` does. A server
that dies within that window is seen by the request's own statement, which fails and makes
SQLAlchemy invalidate the pool, as a server dying between a ping and the statement would.
``DB_PING_IDLE_SECONDS=0`` pings on every checkout (``pool_pre_ping``).
"""

from __future__ import annotations

import time

from flask import Flask
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

_IDLE_SINCE = "idle_since"


def install(engine: Engine, idle_seconds: float) -> None:
    """Ping ``engine``'s connections at checkout when idle for more than ``idle_seconds``."""
    dialect = engine.dialect

    def given_back(_dbapi_connection, record) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def taken(dbapi_connection, record, _proxy) -> None:
        since = record.info.get(_IDLE_SINCE)  # None: connected just now
        if since is None or time.monotonic() - since <= idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            # The pool drops this connection and checks out (or opens) another.
            raise exc.DisconnectionError(f"idle connection failed its ping: {error}") from error

    event.listen(engine, "checkin", given_back)
    event.listen(engine, "checkout", taken)


def init_app(app: Flask) -> None:
    from app.extensions import db

    idle_seconds = app.config["DB_PING_IDLE_SECONDS"]
    if idle_seconds <= 0:
        return  # engine_options kept pool_pre_ping: every checkout pings
    with app.app_context():
        for engine in db.engines.values():
            install(engine, idle_seconds)
