"""sales by payment time: the index the what-if simulator's window scan reads

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
    # The simulator reads the sales of the last 30 or 90 days (and their commissions): with
    # this index that costs the window's sales, not the whole history (docs/benchmarks.md).
    op.create_index("ix_sales_occurred_at", "sales", ["occurred_at"])


def downgrade():
    op.drop_index("ix_sales_occurred_at", table_name="sales")
