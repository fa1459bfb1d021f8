"""Where the suite's PostgreSQL and Redis come from, and the databases it makes on them."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from app.config import sqlalchemy_url
from app.embedded import start_postgres, start_redis

ROOT = Path(__file__).resolve().parent.parent
# TEST_NAMESPACE lets several checkouts run the suite at once on one machine: their own
# databases (refmlm_test_<namespace>_...) and Redis database number (TEST_REDIS_DB).
TEST_NAMESPACE = os.environ.get("TEST_NAMESPACE", "")
TEST_REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "15"))
_handles: list[object] = []


def server_urls() -> tuple[str, str]:
    """``DATABASE_URL`` / ``REDIS_URL`` when set, else embedded servers under ``var/test``."""
    database_url = os.environ.get("DATABASE_URL") or start_postgres(ROOT / "var" / "test")
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        redis_url, handle = start_redis(ROOT / "var" / "test")
        _handles.append(handle)
    return database_url, redis_url


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://``) as libpq and psycopg take it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def namespaced(name: str) -> str:
    """Database ``name`` in the suite's namespace, and the pytest-xdist worker's (so
    parallel workers never drop each other's)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and not name.endswith(worker):
        name = f"{name}_{worker}"
    if TEST_NAMESPACE:
        name = name.replace("refmlm_test_", f"refmlm_test_{TEST_NAMESPACE}_", 1)
    return name


def recreate_database(server_url: str, name: str) -> str:
    """Drop and create database ``namespaced(name)`` on the server; return its SQLAlchemy
    URL."""
    name = namespaced(name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return sqlalchemy_url(with_database(server_url, name))


def redis_db_for_tests() -> int:
    """The suite's Redis database number; each pytest-xdist worker counts down from it, so
    parallel workers never flush or count (throttles) in each other's database."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return (TEST_REDIS_DB - int(worker.removeprefix("gw") or 0)) % 16


def redis_url_for_tests(redis_url: str) -> str:
    """The same Redis server, on a database number of the suite's own."""
    parts = urlsplit(redis_url)
    if parts.scheme == "unix":  # urlunsplit would drop the empty host of unix:///path
        return f"unix://{parts.path}?db={redis_db_for_tests()}"
    return urlunsplit(parts._replace(path=f"/{redis_db_for_tests()}"))


def free_port() -> int:
    """A TCP port free on loopback just now, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def unavailable(message: str) -> NoReturn:
    """A program the suite needs is missing: a failure in CI (``.ci/run`` installs it), a skip
    elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (in CI: .ci/run must provide it)", pytrace=False)
    pytest.skip(message)
