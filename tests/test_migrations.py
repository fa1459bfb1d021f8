"""Migrations: empty → head matches the models, head → base → head round-trips.

The report views (materialized views) are not models: autogenerate sees neither them nor
their indexes, so they are compared with the views the refresh knows instead."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from app import create_app
from app.extensions import db
from app.services.reports.refresh import REPORT_VIEWS
from tests.services_under_test import recreate_database


def _tables() -> set[str]:
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def _views() -> set[str]:
    return set(inspect(db.engine).get_materialized_view_names())


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
        assert _views() == set(REPORT_VIEWS)

        downgrade(revision="base")
        assert _tables() == set()
        assert _views() == set()

        upgrade()
        with db.engine.connect() as conn:
            levels = conn.execute(text("SELECT level FROM mlm_tiers ORDER BY level")).scalars()
            assert list(levels) == [1, 2, 3]
            assert (
                conn.execute(text("SELECT count(*) FROM referral_program_settings")).scalar() == 1
            )
        db.session.remove()
        db.engine.dispose()


def test_downline_figures_are_backfilled_for_existing_rows(app, server):
    database_url = recreate_database(server[0], "refmlm_test_migrations")
    app = create_app({**app.config, "SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        upgrade(revision="0003")
        with db.engine.begin() as conn:
            for n, parent in ((1, None), (2, "u1"), (3, "u2")):
                conn.execute(
                    text(
                        "INSERT INTO users (id, username, email, password_hash, referral_code, "
                        "referred_by) VALUES (:id, :id, :email, 'x', :id, :parent)"
                    ),
                    {"id": f"u{n}", "email": f"u{n}@example.com", "parent": parent},
                )
            conn.execute(
                text(
                    "INSERT INTO referrals (id, referrer_id, referred_user_id, tier) VALUES "
                    "('r1', 'u2', 'u3', 1), ('r2', 'u1', 'u3', 2), ('r3', 'u1', 'u2', 1)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO commissions (id, user_id, referral_id, amount, tier) VALUES "
                    "('c1', 'u1', 'r2', 4.5, 2), ('c2', 'u1', 'r3', 1, 1)"
                )
            )
        upgrade(revision="0004")
        with db.engine.connect() as conn:
            counts = conn.execute(text("SELECT * FROM downline_counts ORDER BY 1, 2")).all()
            earned = conn.execute(text("SELECT * FROM branch_earnings ORDER BY 1, 2")).all()
        assert [tuple(row) for row in counts] == [("u1", 1, 1), ("u1", 2, 1), ("u2", 1, 1)]
        assert [(e, m, float(a)) for e, m, a in earned] == [("u1", "u2", 5.5), ("u1", "u3", 4.5)]
        db.session.remove()
        db.engine.dispose()
