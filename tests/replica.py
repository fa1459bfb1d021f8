"""A real streaming replica of the suite's PostgreSQL (the ``replica_server`` and ``replica``
fixtures), as docs/operations.md sets one up for ``REPORTS_DATABASE_URL``, and
``wait_for_replay`` for a test that reads on it what it wrote on the primary (or
``pause_replay`` / ``resume_replay`` for one that reads it before)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import make_url

from app.config import sqlalchemy_url
from tests.services_under_test import (
    TEST_NAMESPACE,
    free_port,
    libpq_url,
    unavailable,
    with_database,
)

# Seconds. The base backup copies the whole cluster: a few seconds for CI's, longer on a
# machine with big databases (400 MB: 27 s on a loaded two-core box).
BASEBACKUP_TIMEOUT = 300
START_TIMEOUT = 60  # the replica started and streaming
REPLAY_TIMEOUT = 30  # seconds: other work on a shared primary may be replayed first
# PostgreSQL refuses to run as root; as root the replica runs as this user.
SERVER_USER = "postgres"
# A hot standby needs these at least as high as its primary's.
AT_LEAST = (
    "max_connections",
    "max_prepared_transactions",
    "max_locks_per_transaction",
    "max_wal_senders",
    "max_worker_processes",
)


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], timeout: float) -> None:
    done = subprocess.run(
        _as_server_user(command), capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed: {done.stderr.strip()[-2000:]}")


def _bin_dir(major: int) -> Path:
    """The server binaries of the primary's major version (Debian's layout), else PATH's."""
    debian = Path(f"/usr/lib/postgresql/{major}/bin")
    if (debian / "pg_ctl").exists():
        return debian
    if found := shutil.which("pg_ctl"):
        return Path(found).parent
    unavailable(f"PostgreSQL {major}'s pg_ctl is not installed (postgresql-{major})")


def _check_replication_allowed(conninfo: str) -> None:
    try:
        psycopg.connect(conninfo, replication="true").close()
    except psycopg.OperationalError as exc:
        unavailable(
            f"the suite's PostgreSQL refuses replication connections ({exc}); "
            ".ci/allow-replication allows them from loopback"
        )


def _primary_facts(primary_url: str) -> tuple[int, dict[str, str]]:
    """The primary's major version, and the settings its hot standby must match or exceed."""
    with psycopg.connect(primary_url, autocommit=True) as primary:
        major = int(primary.execute("SHOW server_version_num").fetchone()[0]) // 10000
        settings = {name: primary.execute(f"SHOW {name}").fetchone()[0] for name in AT_LEAST}
    return major, settings


def _config(port: int, socket_dir: Path, primary_settings: dict[str, str]) -> str:
    """The replica's own postgresql.conf (Debian keeps the primary's outside its data
    directory, so the base backup has none)."""
    settings = {
        "port": port,
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": f"'{socket_dir}'",
        "hot_standby": "on",
        "shared_buffers": "'32MB'",
        "fsync": "off",  # a throwaway copy
        **primary_settings,
    }
    return "".join(f"{name} = {value}\n" for name, value in settings.items())


def _stop(pg_ctl: list[str], data: Path) -> None:
    """Fast shutdown; immediate if that did not stop it (or the start is still under way)."""
    for mode in ("fast", "immediate"):
        if not (data / "postmaster.pid").exists():
            return
        subprocess.run(
            _as_server_user([*pg_ctl, "-m", mode, "stop"]),
            capture_output=True,
            timeout=90,
            check=False,
        )


def _wait_until_streaming(url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    status = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver)"
                ).fetchone()
            if row == (True, "streaming"):
                return
            status = row
        except psycopg.OperationalError as exc:
            status = exc
        time.sleep(0.1)
    raise TimeoutError(f"the replica was not streaming after {START_TIMEOUT} s: {status}")


@pytest.fixture(scope="session")
def replica_server(server) -> Iterator[str]:
    """A streaming replica of the suite's PostgreSQL: ``pg_basebackup -R`` of the whole
    cluster into a temporary directory, started on a free loopback port (as ``postgres``
    when run as root), streaming when yielded; stopped and removed after the session, even
    when a step fails. Yields its URL (``postgresql://…/postgres``: swap the database name
    for any; a database created on the primary later is there too)."""
    primary_url = server[0]
    _check_replication_allowed(primary_url)
    major, primary_settings = _primary_facts(primary_url)
    bin_dir = _bin_dir(major)
    port = free_port()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    prefix = "-".join(filter(None, ("refmlm-replica", TEST_NAMESPACE, worker))) + "-"
    home = Path(tempfile.mkdtemp(prefix=prefix))
    data = home / "data"
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-t", str(START_TIMEOUT)]
    user = conninfo_to_dict(primary_url).get("user") or SERVER_USER
    url = f"postgresql://{user}@127.0.0.1:{port}/postgres"
    try:
        if os.geteuid() == 0:
            shutil.chown(home, SERVER_USER)
        basebackup = [str(bin_dir / "pg_basebackup"), "-d", primary_url, "-D", str(data)]
        _run([*basebackup, "-R", "--checkpoint=fast"], timeout=BASEBACKUP_TIMEOUT)
        for name, text in {
            "postgresql.conf": _config(port, home, primary_settings),
            "pg_hba.conf": "host all all 127.0.0.1/32 trust\n",
            "pg_ident.conf": "",
        }.items():
            (data / name).write_text(text)
            if os.geteuid() == 0:
                shutil.chown(data / name, SERVER_USER)
        try:
            _run([*pg_ctl, "-l", str(home / "log"), "start"], timeout=START_TIMEOUT + 30)
            _wait_until_streaming(url)
        except (RuntimeError, TimeoutError, subprocess.TimeoutExpired) as exc:
            log = home / "log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"the replica did not start: {exc}\n{tail}") from exc
        yield url
    finally:
        _stop(pg_ctl, data)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def replica(replica_server, app) -> str:
    """The SQLAlchemy URL of this worker's test database (``app``'s) on the replica: what a
    test sets ``REPORTS_DATABASE_URL`` to."""
    database = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database
    return sqlalchemy_url(with_database(replica_server, database))


def wait_for_replay(primary_url: str, replica_url: str, timeout: float = REPLAY_TIMEOUT) -> None:
    """Return once the replica has replayed the primary's WAL up to where it is now: what was
    committed on the primary before the call is visible on the replica after it. URLs in
    libpq's or SQLAlchemy's spelling, of any database on each (the WAL is the cluster's);
    ``TimeoutError`` after ``timeout`` seconds."""
    with psycopg.connect(libpq_url(primary_url), autocommit=True) as primary:
        target = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + timeout
    with psycopg.connect(libpq_url(replica_url), autocommit=True) as replica:
        while True:
            replayed, behind = replica.execute(
                "SELECT pg_last_wal_replay_lsn(), pg_wal_lsn_diff(%s, pg_last_wal_replay_lsn())",
                [target],
            ).fetchone()
            if behind <= 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the replica replayed up to {replayed}, not {target}, in {timeout} s"
                )
            time.sleep(0.02)


def pause_replay(replica_url: str) -> None:
    """Pause the replica's replay, and wait until it has (a pause is only requested at first):
    what the primary commits from now on stays off the replica until ``resume_replay``."""
    with psycopg.connect(libpq_url(replica_url), autocommit=True) as replica:
        replica.execute("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 10
        while replica.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0] != "paused":
            if time.monotonic() > deadline:
                raise TimeoutError("the replica's replay did not pause")
            time.sleep(0.02)


def resume_replay(replica_url: str) -> None:
    with psycopg.connect(libpq_url(replica_url), autocommit=True) as replica:
        replica.execute("SELECT pg_wal_replay_resume()")
