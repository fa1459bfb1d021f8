"""Health checks: each returns ``{"ok": bool, ...}`` and never raises."""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import text

from app.extensions import db
from app.jobs.queueing import get_redis


@cache
def migration_heads(directory: str) -> frozenset[str]:
    """The revisions at head in the shipped migrations (they cannot change while running)."""
    config = Config()
    config.set_main_option("script_location", directory)
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def _timed(check) -> dict[str, object]:
    started = time.perf_counter()
    try:
        result = check()
    except Exception as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:200]}
    result["ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _database() -> dict[str, object]:
    db.session.execute(text("SELECT 1"))
    return {"ok": True}


def _redis() -> dict[str, object]:
    return {"ok": bool(get_redis().ping())}


def _migrations() -> dict[str, object]:
    current = set(db.session.execute(text("SELECT version_num FROM alembic_version")).scalars())
    heads = migration_heads(str(Path(current_app.extensions["migrate"].directory)))
    return {"ok": current == heads, "current": sorted(current), "head": sorted(heads)}


# Events waiting longer than this mean the workers (or their sweeper) are not running.
WEBHOOK_BACKLOG_LIMIT = 15 * 60


def _webhooks() -> dict[str, object]:
    waiting, oldest = db.session.execute(
        text(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(received_at)), 0) "
            "FROM webhook_events WHERE processed_at IS NULL"
        )
    ).one()
    oldest = round(float(oldest))
    return {"ok": oldest < WEBHOOK_BACKLOG_LIMIT, "waiting": waiting, "oldest_seconds": oldest}


def run_checks() -> dict[str, dict[str, object]]:
    checks = {"database": _timed(_database)}
    if not checks["database"]["ok"]:
        db.session.rollback()
    checks["redis"] = _timed(_redis)
    checks["migrations"] = _timed(_migrations)
    if not checks["migrations"]["ok"]:
        db.session.rollback()
    checks["webhooks"] = _timed(_webhooks)
    if not checks["webhooks"]["ok"]:
        db.session.rollback()
    return checks
