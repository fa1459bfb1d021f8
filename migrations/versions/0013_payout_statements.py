"""payout statements: a payout's ledger entries (each kind once) and a user's clawbacks by index

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
    # A payout reserves its amount once and gets it back at most once (failure or
    # reversal): one entry of each kind per payout. The index also lets a statement find its
    # payout's reservation, and the clawbacks of its user between two reservations, without
    # reading the user's whole ledger.
    op.create_index(
        "uq_ledger_entries_payout_id_kind",
        "ledger_entries",
        ["payout_id", "kind"],
        unique=True,
        postgresql_where=sa.text("payout_id IS NOT NULL"),
    )
    op.create_index(
        "ix_ledger_entries_user_id_clawbacks",
        "ledger_entries",
        ["user_id", "id"],
        postgresql_where=sa.text("kind = 'clawback'"),
    )


def downgrade():
    op.drop_index("ix_ledger_entries_user_id_clawbacks", table_name="ledger_entries")
    op.drop_index("uq_ledger_entries_payout_id_kind", table_name="ledger_entries")
