"""the what-if simulator's window: sales by payment time, commissions by payable date

Revision ID: 0019
Revises: 0018

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    # The simulator reads the sales of the last 30 or 90 days and their commissions (payable
    # a hold period after the sale): with these it costs the window, not the whole history
    # (docs/benchmarks.md, "What-if simulator").
    op.create_index("ix_sales_occurred_at", "sales", ["occurred_at"])
    op.create_index("ix_commissions_payable_at", "commissions", ["payable_at"])


def downgrade():
    op.drop_index("ix_commissions_payable_at", table_name="commissions")
    op.drop_index("ix_sales_occurred_at", table_name="sales")
