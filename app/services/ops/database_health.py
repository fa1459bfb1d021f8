"""What the admin health page shows about PostgreSQL: size, connections, tables, indexes and
the slowest statements.

Each part is a separate check (``app.services.ops.health.run_checks``): one that fails (no
privilege, a timeout) shows as a note beside the others. Every query reads only statistics
views, returns a bounded number of rows and runs under ``STATEMENT_TIMEOUT``.
"""

from __future__ import annotations

from sqlalchemy import text

from app.extensions import db
from app.services.ops.health import run_checks

STATEMENT_TIMEOUT = "2s"
TABLES_LISTED = 15
INDEXES_LISTED = 100  # unused ones first, then the largest
STATEMENTS_LISTED = 10


def _rows(sql: str, **params: object) -> list[dict[str, object]]:
    """The rows of ``sql``, under a statement timeout that ends with the transaction."""
    db.session.execute(text(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'"))
    return [dict(row) for row in db.session.execute(text(sql), params).mappings()]


def _size() -> dict[str, object]:
    [row] = _rows("SELECT pg_database_size(current_database()) AS bytes")
    return {"ok": True, "bytes": row["bytes"]}


def _connections() -> dict[str, object]:
    rows = _rows(
        "SELECT coalesce(state, 'background') AS state, count(*) AS connections "
        "FROM pg_stat_activity WHERE datname = current_database() "
        "GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    return {"ok": True, "rows": rows}


def _tables() -> dict[str, object]:
    rows = _rows(
        "SELECT relname AS name, n_live_tup AS live, n_dead_tup AS dead, "
        "pg_total_relation_size(relid) AS bytes, "
        "greatest(last_vacuum, last_autovacuum) AS vacuumed_at "
        "FROM pg_stat_user_tables ORDER BY bytes DESC, name LIMIT :limit",
        limit=TABLES_LISTED,
    )
    return {"ok": True, "rows": rows}


def _indexes() -> dict[str, object]:
    # An index that enforces uniqueness (the primary key too) is needed even when no query
    # reads it, so only the others count as unused.
    rows = _rows(
        "SELECT s.relname AS table_name, s.indexrelname AS name, s.idx_scan AS scans, "
        "pg_relation_size(s.indexrelid) AS bytes, "
        "(s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary) AS unused "
        "FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid "
        "ORDER BY unused DESC, bytes DESC, name LIMIT :limit",
        limit=INDEXES_LISTED,
    )
    return {"ok": True, "rows": rows, "unused": sum(1 for row in rows if row["unused"])}


def _statements() -> dict[str, object]:
    installed = _rows("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
    if not installed:
        return {"ok": True, "installed": False, "rows": []}
    rows = _rows(
        "SELECT left(query, 300) AS query, calls, mean_exec_time AS mean_ms, "
        "total_exec_time AS total_ms FROM pg_stat_statements "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "ORDER BY mean_exec_time DESC LIMIT :limit",
        limit=STATEMENTS_LISTED,
    )
    return {"ok": True, "installed": True, "rows": rows}


def database_panel() -> dict[str, dict[str, object]]:
    """Each part of the database panel, as a check that never raises."""
    return run_checks(
        {
            "size": _size,
            "connections": _connections,
            "tables": _tables,
            "indexes": _indexes,
            "statements": _statements,
        }
    )
