"""payout accounts: Stripe Connect accounts and encrypted Lemon Squeezy payee details

Revision ID: 0009
Revises: 0008

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "payout_accounts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("stripe_account_id", sa.String(length=255), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("payouts_enabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("transfers_active", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("restriction", sa.Text(), nullable=True),
        sa.Column("payee_details", sa.Text(), nullable=True),
        sa.Column("details_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "provider IN ('lemon_squeezy', 'stripe')", name=op.f("ck_payout_accounts_provider")
        ),
        sa.CheckConstraint("country ~ '^[A-Z]{2}$'", name=op.f("ck_payout_accounts_country_code")),
        sa.CheckConstraint(
            "(provider = 'stripe') = (stripe_account_id IS NOT NULL)",
            name=op.f("ck_payout_accounts_stripe_has_account"),
        ),
        sa.CheckConstraint(
            "provider = 'lemon_squeezy' OR payee_details IS NULL",
            name=op.f("ck_payout_accounts_details_for_lemon_squeezy"),
        ),
        sa.CheckConstraint(
            "provider = 'stripe' OR NOT (payouts_enabled OR transfers_active)",
            name=op.f("ck_payout_accounts_readiness_for_stripe"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_payout_accounts_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_accounts")),
        sa.UniqueConstraint("stripe_account_id", name=op.f("uq_payout_accounts_stripe_account_id")),
        sa.UniqueConstraint("user_id", "provider", name="uq_payout_accounts_user_provider"),
    )


def downgrade():
    op.drop_table("payout_accounts")
