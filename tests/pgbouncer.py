"""The ``pgbouncer`` fixture: Debian's PgBouncer in transaction pooling mode in front of the
suite's PostgreSQL, as docs/operations.md deploys it; and what a server connection must not
keep from one transaction to the next."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from tests.services_under_test import free_port, stop_process, unavailable

# Server connections per database: fewer than the app's pool, so client connections take
# turns on them, handed out in turn (server_round_robin), so state one transaction leaves on
# a server connection meets another client's next transaction at once. Three: a test's own
# session may hold one while a payout send holds two (its send lock and its work).
POOL_SIZE = 3
# A client waiting longer than this for a server connection is refused (PgBouncer's default,
# 120 s, would hide a pool too small for the app as a slow test).
QUERY_WAIT_TIMEOUT = 10
START_TIMEOUT = 30  # seconds
# PgBouncer refuses to run as root; as root it is told to switch to this user.
SERVER_USER = "postgres"
# Parameters PgBouncer itself sets on a server connection for each client (it tracks them).
TRACKED = ("client_encoding", "DateStyle", "TimeZone", "standard_conforming_strings")

# What a session keeps past its transaction. Run through PgBouncer, it shows what the
# transactions before it left on the server connection it landed on.
SESSION_STATE = """
SELECT pg_backend_pid() AS pid,
       ARRAY(SELECT name FROM pg_settings
             WHERE source = 'session' AND name <> ALL(%(tracked)s)) AS settings,
       ARRAY(SELECT name FROM pg_prepared_statements) AS prepared_statements,
       ARRAY(SELECT objid::text FROM pg_locks
             WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS advisory_locks,
       ARRAY(SELECT pg_listening_channels()) AS listening,
       ARRAY(SELECT relname::text FROM pg_class
             WHERE relnamespace = pg_my_temp_schema()) AS temporary_tables,
       ARRAY(SELECT name FROM pg_cursors WHERE name <> '') AS cursors  -- '': this query's
"""


def _binary() -> str:
    found = shutil.which("pgbouncer", path=os.pathsep.join([os.environ["PATH"], "/usr/sbin"]))
    if found is None:
        unavailable("pgbouncer is not installed (apt-get install -y pgbouncer)")
    return found


def _config(server_url: str, port: int) -> str:
    """Every database name passes through to the server, logged in as the URL's user (so
    clients need no password of their own)."""
    server = conninfo_to_dict(server_url)
    target = {"host": server.get("host", "127.0.0.1"), "port": server.get("port", "5432")}
    target |= {key: server[key] for key in ("user", "password") if server.get(key)}
    settings = {
        "listen_addr": "127.0.0.1",
        "listen_port": port,
        "unix_socket_dir": "",
        "auth_type": "any",
        "pool_mode": "transaction",
        "default_pool_size": POOL_SIZE,
        "server_round_robin": 1,
        "query_wait_timeout": QUERY_WAIT_TIMEOUT,
    }
    if os.geteuid() == 0:
        settings["user"] = SERVER_USER
    lines = ["[databases]", "* = " + " ".join(f"{k}={v}" for k, v in target.items())]
    lines += ["[pgbouncer]", *(f"{key} = {value}" for key, value in settings.items())]
    return "\n".join(lines) + "\n"


def _wait_until_accepting(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with status {process.returncode}")
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                message = f"pgbouncer not accepting after {START_TIMEOUT} s: {exc}"
                raise TimeoutError(message) from exc
            time.sleep(0.1)


@pytest.fixture(scope="session")
def pgbouncer(server) -> Iterator[str]:
    """A real PgBouncer (``pool_mode = transaction``) on a free loopback port in front of the
    suite's PostgreSQL; yields its URL (``postgresql://…/postgres``: swap the database name
    for any database on the server). Stopped after the session, its log printed."""
    binary = _binary()
    port = free_port()
    url = f"postgresql://pgbouncer@127.0.0.1:{port}/postgres"
    with tempfile.TemporaryDirectory(prefix="refmlm-pgbouncer-") as directory:
        ini = Path(directory) / "pgbouncer.ini"
        ini.write_text(_config(server[0], port))  # read before PgBouncer drops root
        with tempfile.TemporaryFile() as log:
            process = subprocess.Popen([binary, str(ini)], stdout=log, stderr=log)
            try:
                _wait_until_accepting(url, process)
                yield url
            finally:
                stop_process(process)
                log.seek(0)
                sys.stdout.write(log.read().decode(errors="replace")[-4000:])


def session_state_left(url: str, database_url: str) -> dict[int, dict[str, list[str]]]:
    """What PgBouncer's server connections to ``database_url``'s database (a direct libpq URL)
    keep between transactions, by backend: asked through PgBouncer (``url``) until every
    server connection has answered. Empty: nothing leaks from one client to the next."""
    database = conninfo_to_dict(database_url)["dbname"]
    through = conninfo_to_dict(url) | {"dbname": database}
    with psycopg.connect(database_url, autocommit=True) as direct:
        servers = {
            pid
            for (pid,) in direct.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [database],
            )
        }
    found: dict[int, dict[str, list[str]]] = {}
    with psycopg.connect(**through, prepare_threshold=None, autocommit=True) as conn:
        conn.row_factory = dict_row
        for _ in range(4 * POOL_SIZE):
            row = conn.execute(SESSION_STATE, {"tracked": list(TRACKED)}).fetchone()
            pid = row.pop("pid")
            found[pid] = {name: values for name, values in row.items() if values}
            if servers <= found.keys():
                break
    assert servers <= found.keys(), f"server connections {servers - found.keys()} never answered"
    return {pid: state for pid, state in found.items() if state}
