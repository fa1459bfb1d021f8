"""the mail outbox

Revision ID: 0020_outbox
Revises: 0019

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0020_outbox"
down_revision = "0019"
branch_labels = None
depends_on = None

WAITING = "status IN ('failed', 'pending')"


def upgrade():
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("unsubscribe_url", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=10), server_default="pending", nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('dead', 'failed', 'pending', 'sending', 'sent')",
            name=op.f("ck_outbox_status"),
        ),
        sa.CheckConstraint(
            "category IN ('account', 'earnings', 'flags', 'network', 'payouts')",
            name=op.f("ck_outbox_category"),
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_outbox_attempts_non_negative")),
        sa.CheckConstraint("recipient LIKE '%_@_%'", name=op.f("ck_outbox_recipient_shape")),
        sa.CheckConstraint(
            "(status = 'sent') = (sent_at IS NOT NULL)", name=op.f("ck_outbox_sent_has_time")
        ),
        sa.CheckConstraint(
            "status NOT IN ('sending', 'sent', 'failed', 'dead') OR claimed_at IS NOT NULL",
            name=op.f("ck_outbox_attempted_was_claimed"),
        ),
        sa.CheckConstraint(
            "status NOT IN ('failed', 'dead') OR last_error IS NOT NULL",
            name=op.f("ck_outbox_failure_has_error"),
        ),
        sa.CheckConstraint(
            "CASE WHEN category = 'account' THEN unsubscribe_url IS NULL"
            " ELSE unsubscribe_url IS NOT NULL AND user_id IS NOT NULL END",
            name=op.f("ck_outbox_unsubscribe_unless_account"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_outbox_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_message_id")),
    )
    op.create_index(
        "ix_outbox_waiting_next_attempt_at",
        "outbox",
        ["next_attempt_at"],
        postgresql_where=sa.text(WAITING),
    )
    op.create_index("ix_outbox_user_id", "outbox", ["user_id"])
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    # The rendered mail is what was sent: a resend must send the same bytes.
    op.execute(
        """
        CREATE FUNCTION outbox_content_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF (NEW.recipient, NEW.kind, NEW.category, NEW.subject, NEW.body_text,
                NEW.body_html, NEW.message_id, NEW.unsubscribe_url)
               IS DISTINCT FROM
               (OLD.recipient, OLD.kind, OLD.category, OLD.subject, OLD.body_text,
                OLD.body_html, OLD.message_id, OLD.unsubscribe_url) THEN
                RAISE EXCEPTION 'an outbox mail''s content cannot change (%)', OLD.id
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER outbox_content_immutable BEFORE UPDATE ON outbox
            FOR EACH ROW EXECUTE FUNCTION outbox_content_immutable();
        """
    )


def downgrade():
    op.execute("DROP TRIGGER outbox_content_immutable ON outbox")
    op.execute("DROP FUNCTION outbox_content_immutable()")
    op.drop_index("ix_outbox_created_at", table_name="outbox")
    op.drop_index("ix_outbox_user_id", table_name="outbox")
    op.drop_index("ix_outbox_waiting_next_attempt_at", table_name="outbox")
    op.drop_table("outbox")
