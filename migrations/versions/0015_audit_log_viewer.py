"""audit log viewer: an index per filter, each ending in (created_at, id) for keyset pages

Revision ID: 0015
Revises: 0014

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_audit_log_created_at_id", "audit_log", ["created_at", "id"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor_id", "created_at", "id"])
    op.drop_index("ix_audit_log_subject", table_name="audit_log")
    op.create_index(
        "ix_audit_log_subject", "audit_log", ["subject_type", "subject_id", "created_at", "id"]
    )
    op.drop_index("ix_audit_log_action_created_at", table_name="audit_log")
    op.create_index(
        "ix_audit_log_action_pattern",
        "audit_log",
        ["action", "created_at", "id"],
        postgresql_ops={"action": "varchar_pattern_ops"},
    )


def downgrade():
    op.drop_index("ix_audit_log_action_pattern", table_name="audit_log")
    op.create_index("ix_audit_log_action_created_at", "audit_log", ["action", "created_at"])
    op.drop_index("ix_audit_log_subject", table_name="audit_log")
    op.create_index("ix_audit_log_subject", "audit_log", ["subject_type", "subject_id"])
    op.drop_index("ix_audit_log_actor", table_name="audit_log")
    op.drop_index("ix_audit_log_created_at_id", table_name="audit_log")
