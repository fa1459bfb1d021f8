"""seed the default MLM tiers and program settings

Revision ID: 0002
Revises: 0001

The values are frozen here as they were when the program started; `flask seed` restores
missing rows from app/services/program/program.py without touching existing ones.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        INSERT INTO mlm_tiers (id, level, commission_rate, description, is_active)
        VALUES
          ('seedtier0000000000000001', 1, 0.100000,
           'Direct referrals: people who joined through your own link.', true),
          ('seedtier0000000000000002', 2, 0.050000,
           'Second tier: people your direct referrals brought in.', true),
          ('seedtier0000000000000003', 3, 0.025000,
           'Third tier: people brought in by your second tier.', true)
        ON CONFLICT (level) DO NOTHING
        """
    )
    op.execute(
        """
        INSERT INTO referral_program_settings
          (id, max_tier_level, min_payout_amount, payout_frequency, is_mlm_enabled,
           default_commission_rate)
        VALUES ('seedsettings000000000001', 3, 50.00, 'monthly', true, 0.100000)
        ON CONFLICT (singleton) DO NOTHING
        """
    )


def downgrade():
    op.execute("DELETE FROM mlm_tiers WHERE id LIKE 'seedtier%'")
    # The settings row is protected from DELETE by a trigger; drop it by truncation.
    op.execute("TRUNCATE referral_program_settings")
