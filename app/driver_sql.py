"""Hot read statements run by psycopg itself on the session's connection.

For the two statements of every logged-in tree request (the session check's user row and the
tree's one statement) SQLAlchemy's result machinery cost more CPU than psycopg's whole
execution: building result metadata for twenty columns, per execution, because a text
statement has no cached one (docs/benchmarks.md, issue 14). These run on the same connection
and in the same transaction as the rest of the request, with psycopg's prepared statements;
everything else goes through SQLAlchemy.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row, namedtuple_row
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.sql.elements import TextClause

from app.extensions import db

_DIALECT = psycopg_dialect.dialect()


def for_driver(statement: TextClause) -> str:
    """``statement`` as psycopg takes it (``%(name)s`` parameters), compiled once."""
    return str(statement.compile(dialect=_DIALECT))


def _run(sql: str, params: Any, row_factory) -> psycopg.Cursor:
    connection = db.session.connection()
    driver = connection.connection.driver_connection
    try:
        return driver.cursor(row_factory=row_factory).execute(sql, params)
    except psycopg.OperationalError:
        if driver.closed:  # as SQLAlchemy does for a lost connection: never pooled again
            connection.invalidate()
        raise


def all_rows(sql: str, params: Any) -> list[Any]:
    """Every row, as named tuples."""
    return _run(sql, params, namedtuple_row).fetchall()


def one_dict(sql: str, params: Any) -> dict[str, Any] | None:
    """The first row as a dict, or None."""
    return _run(sql, params, dict_row).fetchone()
