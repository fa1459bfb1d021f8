"""Migrations: empty → head matches the models, head → base → head round-trips."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from app import create_app
from app.extensions import db
from tests.services_under_test import recreate_database


def _tables() -> set[str]:
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def test_migrations_round_trip_and_match_models(app, server):
    database_url = recreate_database(server[0], "refmlm_test_migrations")
    app = create_app({**app.config, "SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        assert _tables() == set()
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata
            )
        assert diff == []
        assert _tables() == set(db.metadata.tables)

        downgrade(revision="base")
        assert _tables() == set()

        upgrade()
        with db.engine.connect() as conn:
            levels = conn.execute(text("SELECT level FROM mlm_tiers ORDER BY level")).scalars()
            assert list(levels) == [1, 2, 3]
            assert (
                conn.execute(text("SELECT count(*) FROM referral_program_settings")).scalar() == 1
            )
        db.session.remove()
        db.engine.dispose()
