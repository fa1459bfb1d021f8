"""A real streaming replica of the suite's PostgreSQL (tests/replica.py): what the primary
commits is there after replay, in any database, and the replica takes no writes."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from tests.factories import make_chain, make_sale
from tests.replica import pause_replay, resume_replay, wait_for_replay
from tests.services_under_test import libpq_url, recreate_database, with_database


def _on(url: str, query: str, params: list | None = None) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def test_a_sale_committed_on_the_primary_is_on_the_replica_after_replay(app, replica):
    primary = app.config["SQLALCHEMY_DATABASE_URI"]
    _, buyer = make_chain(2)
    pause_replay(replica)
    try:
        sale_id = make_sale(buyer, "250.00")
        with pytest.raises(TimeoutError):
            wait_for_replay(primary, replica, timeout=0.5)
        assert _on(replica, "SELECT amount FROM sales WHERE id = %s", [sale_id]) == []
    finally:
        resume_replay(replica)
    wait_for_replay(primary, replica)
    assert _on(replica, "SELECT amount FROM sales WHERE id = %s", [sale_id]) == [
        (Decimal("250.00"),)
    ]
    assert _on(replica, "SELECT tier, amount FROM commissions WHERE sale_id = %s", [sale_id]) == [
        (1, Decimal("25.00"))
    ]


def test_the_replica_streams_and_refuses_writes(replica):
    status = "SELECT pg_is_in_recovery(), status FROM pg_stat_wal_receiver"
    assert _on(replica, status) == [(True, "streaming")]
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        _on(replica, "UPDATE referral_program_settings SET hold_days = hold_days")


def test_a_database_created_after_the_base_backup_is_replicated(server, replica_server):
    created = libpq_url(recreate_database(server[0], "refmlm_test_replica_new"))
    name = psycopg.conninfo.conninfo_to_dict(created)["dbname"]
    try:
        _on(created, "CREATE TABLE marks AS SELECT 'after the base backup' AS mark")
        wait_for_replay(created, replica_server)  # the database is not there before
        assert _on(with_database(replica_server, name), "SELECT mark FROM marks") == [
            ("after the base backup",)
        ]
    finally:
        with psycopg.connect(server[0], autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
