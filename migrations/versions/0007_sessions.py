"""sessions: per-user session token, remember-me expiry

Revision ID: 0007
Revises: 0006

"""

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
