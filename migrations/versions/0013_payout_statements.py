"""payout statements: a payout's ledger entries and a user's clawbacks by index

Revision ID: 0013
Revises: 0012

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    # A statement finds its payout's reservation, and the clawbacks of its user between two
    # reservations, without reading the user's whole ledger.
    op.create_index("ix_ledger_entries_payout_id", "ledger_entries", ["payout_id"])
    op.create_index(
        "ix_ledger_entries_user_id_clawbacks",
        "ledger_entries",
        ["user_id", "id"],
        postgresql_where=sa.text("kind = 'clawback'"),
    )


def downgrade():
    op.drop_index("ix_ledger_entries_user_id_clawbacks", table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_payout_id", table_name="ledger_entries")
