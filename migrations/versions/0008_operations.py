"""operations: parked webhook events

Revision ID: 0008
Revises: 0007

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "webhook_events", sa.Column("dismissed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("webhook_events", sa.Column("dismissed_by", sa.String(length=32), nullable=True))
    op.create_foreign_key(
        op.f("fk_webhook_events_dismissed_by_users"),
        "webhook_events",
        "users",
        ["dismissed_by"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.create_check_constraint(
        op.f("ck_webhook_events_dismissed_by_someone"),
        "webhook_events",
        "(dismissed_at IS NULL) = (dismissed_by IS NULL)",
    )
    op.create_check_constraint(
        op.f("ck_webhook_events_dismissed_unprocessed"),
        "webhook_events",
        "dismissed_at IS NULL OR processed_at IS NULL",
    )


def downgrade():
    op.drop_constraint(
        op.f("ck_webhook_events_dismissed_unprocessed"), "webhook_events", type_="check"
    )
    op.drop_constraint(
        op.f("ck_webhook_events_dismissed_by_someone"), "webhook_events", type_="check"
    )
    op.drop_constraint(
        op.f("fk_webhook_events_dismissed_by_users"), "webhook_events", type_="foreignkey"
    )
    op.drop_column("webhook_events", "dismissed_by")
    op.drop_column("webhook_events", "dismissed_at")
