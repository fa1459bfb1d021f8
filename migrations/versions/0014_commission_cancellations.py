"""commission cancellations by an admin: when and why; the admin list's keyset index

Revision ID: 0014
Revises: 0013

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "commissions", sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("commissions", sa.Column("cancel_reason", sa.Text(), nullable=True))
    op.create_check_constraint(
        "cancel_reason_with_time",
        "commissions",
        "(cancelled_at IS NULL) = (cancel_reason IS NULL)",
    )
    # Cancelled by an admin: gone if unpaid, fully clawed back if paid.
    op.create_check_constraint(
        "cancelled_is_gone",
        "commissions",
        "cancelled_at IS NULL OR status = 'cancelled' OR clawed_back = amount",
    )
    op.create_index("ix_commissions_created_at", "commissions", ["created_at", "id"])


def downgrade():
    op.drop_index("ix_commissions_created_at", table_name="commissions")
    op.drop_constraint(op.f("ck_commissions_cancelled_is_gone"), "commissions", type_="check")
    op.drop_constraint(op.f("ck_commissions_cancel_reason_with_time"), "commissions", type_="check")
    op.drop_column("commissions", "cancel_reason")
    op.drop_column("commissions", "cancelled_at")
