"""tier rate cap: the most the active MLM tiers may pay on a sale, together

Revision ID: 0017
Revises: 0016

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    # A fraction like the rates: the tier editor refuses a change that makes the active tiers'
    # rates add up to more than this (default 50 %).
    op.add_column(
        "referral_program_settings",
        sa.Column(
            "max_total_tier_rate",
            sa.Numeric(precision=7, scale=6),
            server_default="0.5",
            nullable=False,
        ),
    )
    op.create_check_constraint(
        op.f("ck_referral_program_settings_total_tier_rate_fraction"),
        "referral_program_settings",
        "max_total_tier_rate >= 0 AND max_total_tier_rate <= 1",
    )


def downgrade():
    op.drop_constraint(
        op.f("ck_referral_program_settings_total_tier_rate_fraction"),
        "referral_program_settings",
    )
    op.drop_column("referral_program_settings", "max_total_tier_rate")
