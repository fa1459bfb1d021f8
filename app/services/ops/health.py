"""Health checks: each returns ``{"ok": bool, ...}`` and never raises.

Readiness (database, Redis, migrations at head) says whether this instance can serve: a
load balancer takes it out of rotation when one fails. The webhook backlog is no property of
an instance (one bad provider event must not take every instance out): it is an alarm for
monitoring and the admin health page.
"""

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
from app.services.money.webhooks import MAX_ATTEMPTS

# What a check may show to anyone: its outcome, counts and the class of its error, never the
# message (it can name hosts, ports, users or paths).
PUBLIC_KEYS = ("ok", "error", "ms", "waiting", "oldest_seconds", "parked", "dead")


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
        message = str(exc).splitlines()[0][:200] if str(exc) else ""
        result = {"ok": False, "error": type(exc).__name__, "message": message}
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
    waiting, oldest, parked = db.session.execute(
        text(
            "SELECT count(*) FILTER (WHERE attempts < :max_attempts), "
            "coalesce(extract(epoch FROM now() - min(received_at) "
            "FILTER (WHERE attempts < :max_attempts)), 0), "
            "count(*) FILTER (WHERE attempts >= :max_attempts) "
            "FROM webhook_events WHERE processed_at IS NULL AND dismissed_at IS NULL"
        ),
        {"max_attempts": MAX_ATTEMPTS},
    ).one()
    oldest = round(float(oldest))
    return {
        "ok": oldest < WEBHOOK_BACKLOG_LIMIT and parked == 0,
        "waiting": waiting,
        "oldest_seconds": oldest,
        "parked": parked,
    }


# A mail waiting longer than this (the backoff's first hours included) means SMTP or the
# workers have a problem; a mail given up in the last week wants a person.
MAIL_BACKLOG_LIMIT = 60 * 60
MAIL_DEAD_WINDOW = "7 days"


def _mail() -> dict[str, object]:
    waiting, oldest = db.session.execute(
        text(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) "
            "FROM outbox WHERE status IN ('failed', 'pending')"  # ix_outbox_waiting_…
        )
    ).one()
    dead, last_error = db.session.execute(
        text(
            "SELECT count(*), (array_agg(last_error ORDER BY created_at DESC))[1] FROM outbox "
            "WHERE created_at > now() - CAST(:window AS interval) AND status = 'dead'"
        ),
        {"window": MAIL_DEAD_WINDOW},
    ).one()
    oldest = round(float(oldest))
    return {
        "ok": oldest < MAIL_BACKLOG_LIMIT and dead == 0,
        "waiting": waiting,
        "oldest_seconds": oldest,
        "dead": dead,
        "last_dead_error": last_error,
    }


def run_checks(checks: dict[str, object]) -> dict[str, dict[str, object]]:
    """Each check timed; one that raises is a failed check (with its error), never an
    exception, and its failed statement is rolled back so the next check can run."""
    results = {}
    for name, check in checks.items():
        results[name] = _timed(check)
        if not results[name]["ok"]:
            db.session.rollback()  # a failed statement leaves the transaction unusable
    return results


def readiness_checks() -> dict[str, dict[str, object]]:
    """Whether this instance can serve: database, Redis, migrations at head (full detail)."""
    return run_checks({"database": _database, "redis": _redis, "migrations": _migrations})


def webhook_backlog() -> dict[str, object]:
    """The alarm for provider events: not ok when one waited longer than
    ``WEBHOOK_BACKLOG_LIMIT`` for a drain, or one is parked (failed too often and waits
    for a person). Dismissed events do not count."""
    return run_checks({"webhooks": _webhooks})["webhooks"]


def mail_backlog() -> dict[str, object]:
    """The alarm for mail: not ok when one waited longer than ``MAIL_BACKLOG_LIMIT`` to be
    sent, or one was given up (dead) in the last ``MAIL_DEAD_WINDOW``."""
    return run_checks({"mail": _mail})["mail"]


def public_view(checks: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """Checks as anyone may see them: outcome, counts and error class; no message."""
    return {
        name: {key: check[key] for key in PUBLIC_KEYS if key in check}
        for name, check in checks.items()
    }
