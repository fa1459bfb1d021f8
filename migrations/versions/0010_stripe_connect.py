"""stripe connect: connect webhook events, when Stripe last spoke about an account

Revision ID: 0010
Revises: 0009

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_PROVIDER = "ck_webhook_events_provider"  # the full name (op.f), given in each function


def upgrade():
    # The time of the newest account state stored (an event's `created`, or a retrieve): an
    # older event delivered late must not overwrite a newer state.
    op.add_column(
        "payout_accounts",
        sa.Column("stripe_updated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.drop_constraint(op.f(_PROVIDER), "webhook_events", type_="check")
    op.create_check_constraint(
        op.f(_PROVIDER),
        "webhook_events",
        "provider IN ('lemon_squeezy', 'stripe', 'stripe_connect')",
    )


def downgrade():
    # The table before 0010 cannot hold Connect events: they are forgotten.
    op.execute("DELETE FROM webhook_events WHERE provider = 'stripe_connect'")
    op.drop_constraint(op.f(_PROVIDER), "webhook_events", type_="check")
    op.create_check_constraint(
        op.f(_PROVIDER), "webhook_events", "provider IN ('lemon_squeezy', 'stripe')"
    )
    op.drop_column("payout_accounts", "stripe_updated_at")
