"""Backups with pg_dump (custom format) and their verification by a real restore.

A backup is two files in the backup directory: ``<database>-<UTC time>.dump`` and, beside
it, ``<same>.json``, the manifest: what the database held when it was dumped (every table's
row count, the ledger's total per kind), from the very snapshot pg_dump read
(``pg_export_snapshot``), and the dump's size and SHA-256. Verifying restores the dump into a
scratch database on the same server, counts again, compares with the manifest, and drops the
scratch database. Both outcomes go to the audit log (``backup.created``, ``backup.verified``),
where health reads the last of each."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, create_engine, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from app.extensions import db
from app.models import AuditEntry
from app.services.ops import audit

DUMP_SUFFIX, MANIFEST_SUFFIX = ".dump", ".json"
_STAMPED = len("20260101T000000Z.dump")


class BackupError(RuntimeError):
    """The backup or its verification could not run (a missing tool, a failed command)."""


@dataclass(frozen=True)
class Contents:
    """What a database holds: rows per table, and the ledger's total per kind (as text)."""

    tables: dict[str, int]
    ledger_totals: dict[str, str]


@dataclass(frozen=True)
class Backup:
    dump: Path
    manifest: Path
    size: int
    contents: Contents


@dataclass
class Verification:
    dump: Path
    problems: list[str] = field(default_factory=list)
    tables_checked: int = 0

    @property
    def passed(self) -> bool:
        return not self.problems


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} is not on PATH: install the PostgreSQL client tools (Debian: "
            f"postgresql-client) of the server's major version or newer."
        )
    return path


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq URI for the command line (without the password, which would show in ``ps``)
    and the environment that carries the password."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-5:]
        raise BackupError(f"{Path(command[0]).name} failed: " + " | ".join(tail))


def contents(connection: Connection) -> Contents:
    """Every table's row count (partitions counted in their parent) and the ledger's totals,
    as one transaction of ``connection`` sees them."""
    names = connection.scalars(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
            "AND NOT c.relispartition ORDER BY c.relname"
        )
    ).all()
    tables = {
        name: connection.scalar(text(f"SELECT count(*) FROM {_quoted(name)}"))  # noqa: S608
        for name in names
    }
    totals = {}
    if "ledger_entries" in tables:
        rows = connection.execute(
            text("SELECT kind, sum(amount) FROM ledger_entries GROUP BY kind ORDER BY kind")
        )
        totals = {kind: str(total) for kind, total in rows}
    return Contents(tables, totals)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def create_backup(database_url: str, directory: Path, now: datetime | None = None) -> Backup:
    """Dump the database into ``directory`` and write its manifest beside it. The counts and
    the dump come from one snapshot, so a restore must match them exactly. Files appear under
    their final names only when complete. Audited (``backup.created``; the caller commits)."""
    pg_dump = _tool("pg_dump")
    url = make_url(database_url)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    directory.mkdir(parents=True, exist_ok=True)
    dump = directory / f"{url.database}-{stamp}{DUMP_SUFFIX}"
    partial = dump.with_name(dump.name + ".partial")
    uri, env = _libpq(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snapshot_id = conn.scalar(text("SELECT pg_export_snapshot()"))
                held = contents(conn)
                command = [pg_dump, "--format=custom", f"--snapshot={snapshot_id}"]
                _run([*command, f"--file={partial}", f"--dbname={uri}"], env)
    finally:
        engine.dispose()
    partial.rename(dump)
    size = dump.stat().st_size
    manifest = dump.with_suffix(MANIFEST_SUFFIX)
    facts = {
        "dump": dump.name,
        "database": url.database,
        "created_at": stamp,
        "size": size,
        "sha256": _sha256(dump),
        "tables": held.tables,
        "ledger_totals": held.ledger_totals,
    }
    manifest.with_name(manifest.name + ".partial").write_text(json.dumps(facts, indent=2))
    manifest.with_name(manifest.name + ".partial").rename(manifest)
    audit.record("backup.created", subject_type="backup", subject_id=dump.name[:64], size=size)
    return Backup(dump, manifest, size, held)


def newest_dump(directory: Path) -> Path | None:
    """The most recent dump in ``directory`` (names sort by their UTC time)."""
    dumps = sorted(directory.glob(f"*{DUMP_SUFFIX}"), key=lambda p: p.name[-_STAMPED:])
    return dumps[-1] if dumps else None


def _compare(expected: Contents, found: Contents) -> list[str]:
    problems = []
    for name in sorted(expected.tables.keys() | found.tables.keys()):
        want, got = expected.tables.get(name), found.tables.get(name)
        if want != got:
            problems.append(f"table {name}: {want} rows at dump time, {got} restored")
    for kind in sorted(expected.ledger_totals.keys() | found.ledger_totals.keys()):
        want, got = expected.ledger_totals.get(kind), found.ledger_totals.get(kind)
        if want != got:
            problems.append(f"ledger {kind}: total {want} at dump time, {got} restored")
    return problems


def verify_backup(database_url: str, dump: Path) -> Verification:
    """Restore ``dump`` into a scratch database beside the source and compare it with its
    manifest; the scratch database is dropped afterwards, whatever happened. Every problem is
    listed (none: passed). Audited (``backup.verified``; the caller commits)."""
    result = Verification(dump)
    try:
        _verify(make_url(database_url), dump, result)
    except BackupError as exc:
        result.problems.append(str(exc))
    audit.record(
        "backup.verified",
        subject_type="backup",
        subject_id=dump.name[:64],
        result="passed" if result.passed else "failed",
        problems=result.problems[:20] or None,
    )
    return result


def _verify(url: URL, dump: Path, result: Verification) -> None:
    pg_restore = _tool("pg_restore")
    manifest = dump.with_suffix(MANIFEST_SUFFIX)
    if not dump.is_file():
        raise BackupError(f"no dump at {dump}")
    if not manifest.is_file():
        raise BackupError(f"no manifest beside the dump ({manifest.name})")
    facts = json.loads(manifest.read_text())
    expected = Contents(facts["tables"], facts["ledger_totals"])
    if (size := dump.stat().st_size) != facts["size"]:
        result.problems.append(f"the dump is {size} bytes, {facts['size']} when written")
    elif _sha256(dump) != facts["sha256"]:
        result.problems.append("the dump's SHA-256 differs from the one written beside it")
    scratch = f"{url.database}_verify_{secrets.token_hex(4)}"
    admin = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {_quoted(scratch)} TEMPLATE template0"))
        uri, env = _libpq(url.set(database=scratch))
        command = [pg_restore, "--exit-on-error", "--no-owner", "--no-privileges"]
        _run([*command, f"--dbname={uri}", str(dump)], env)
        restored = create_engine(url.set(database=scratch), poolclass=NullPool)
        try:
            with restored.connect() as conn:
                found = contents(conn)
        finally:
            restored.dispose()
        result.tables_checked = len(found.tables)
        result.problems.extend(_compare(expected, found))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {_quoted(scratch)} WITH (FORCE)"))
        admin.dispose()


def last_runs() -> dict[str, AuditEntry | None]:
    """The newest ``backup.created`` and ``backup.verified`` entries (for health)."""
    return {
        action: db.session.scalar(
            select(AuditEntry)
            .where(AuditEntry.action == action)
            .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
            .limit(1)
        )
        for action in ("backup.created", "backup.verified")
    }
