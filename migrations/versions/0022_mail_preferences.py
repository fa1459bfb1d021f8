"""mail preferences, digest notices and digests

Revision ID: 0022_mail_preferences
Revises: 0021_program_identity

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0022_mail_preferences"
down_revision = "0021_program_identity"
branch_labels = None
depends_on = None

KINDS = "kind IN ('commission_earned', 'referral_joined')"


def upgrade():
    op.create_table(
        "mail_opt_outs",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "category IN ('earnings', 'flags', 'network', 'payouts')",
            name=op.f("ck_mail_opt_outs_category"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_mail_opt_outs_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "category", name=op.f("pk_mail_opt_outs")),
    )
    op.create_table(
        "mail_notices",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("referred_user_id", sa.String(length=32), nullable=True),
        sa.Column("commission_id", sa.String(length=32), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(KINDS, name=op.f("ck_mail_notices_kind")),
        sa.CheckConstraint(
            "(kind = 'referral_joined') = (referred_user_id IS NOT NULL)"
            " AND (kind = 'commission_earned') = (commission_id IS NOT NULL)",
            name=op.f("ck_mail_notices_subject_of_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["commission_id"],
            ["commissions.id"],
            name=op.f("fk_mail_notices_commission_id_commissions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["referred_user_id"],
            ["users.id"],
            name=op.f("fk_mail_notices_referred_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_mail_notices_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_notices")),
    )
    op.create_index(
        "ix_mail_notices_kind_user_id", "mail_notices", ["kind", "user_id", "id"], unique=False
    )
    op.create_table(
        "mail_digests",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("mail_id", sa.String(length=32), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(KINDS, name=op.f("ck_mail_digests_kind")),
        sa.ForeignKeyConstraint(
            ["mail_id"],
            ["outbox.id"],
            name=op.f("fk_mail_digests_mail_id_outbox"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_mail_digests_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "kind", "day", name=op.f("pk_mail_digests")),
    )
    # The notices, written in the transaction of their event by whatever inserts it (a
    # registration, the set-based accrual, COPY): one statement per inserting statement.
    # Tier 1 only: a new user's notice goes to referred_by, never further up.
    op.execute(
        """
        CREATE FUNCTION mail_notices_referral_joined() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO mail_notices (user_id, kind, referred_user_id)
            SELECT referred_by, 'referral_joined', id FROM new_users
            WHERE referred_by IS NOT NULL ORDER BY id;
            RETURN NULL;
        END $$;
        CREATE TRIGGER users_mail_notices AFTER INSERT ON users
            REFERENCING NEW TABLE AS new_users
            FOR EACH STATEMENT EXECUTE FUNCTION mail_notices_referral_joined();

        CREATE FUNCTION mail_notices_commission_earned() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO mail_notices (user_id, kind, commission_id)
            SELECT user_id, 'commission_earned', id FROM new_commissions ORDER BY id;
            RETURN NULL;
        END $$;
        CREATE TRIGGER commissions_mail_notices AFTER INSERT ON commissions
            REFERENCING NEW TABLE AS new_commissions
            FOR EACH STATEMENT EXECUTE FUNCTION mail_notices_commission_earned();
        """
    )


def downgrade():
    op.execute("DROP TRIGGER commissions_mail_notices ON commissions")
    op.execute("DROP FUNCTION mail_notices_commission_earned()")
    op.execute("DROP TRIGGER users_mail_notices ON users")
    op.execute("DROP FUNCTION mail_notices_referral_joined()")
    op.drop_table("mail_digests")
    op.drop_index("ix_mail_notices_kind_user_id", table_name="mail_notices")
    op.drop_table("mail_notices")
    op.drop_table("mail_opt_outs")
