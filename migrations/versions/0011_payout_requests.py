"""payout requests: statuses, reserve, one open payout per user

Revision ID: 0011
Revises: 0010

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

OPEN = "'awaiting_approval', 'on_hold', 'pending', 'processing'"
STATUSES = (
    "'awaiting_approval', 'completed', 'failed', 'on_hold', 'pending', 'processing', 'reversed'"
)

# A payout goes to an account of its own user and of its payment method.
ACCOUNT_TRIGGER = """
CREATE FUNCTION payouts_check_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.payout_account_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM payout_accounts a
        WHERE a.id = NEW.payout_account_id AND a.user_id = NEW.user_id
          AND a.provider = NEW.payment_method
    ) THEN
        RAISE EXCEPTION 'payout % names account % of another user or method',
            NEW.id, NEW.payout_account_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER payouts_check_account
    BEFORE INSERT OR UPDATE OF payout_account_id, user_id, payment_method ON payouts
    FOR EACH ROW EXECUTE FUNCTION payouts_check_account();
"""


def upgrade():
    crowded = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT user_id FROM payouts WHERE status IN ('pending', 'processing') "
                "GROUP BY 1 HAVING count(*) > 1"
            )
        )
        .scalars()
        .all()
    )
    if crowded:
        raise RuntimeError(
            "These users have more than one payout not final; settle or fail all but one "
            f"before upgrading: {', '.join(crowded)}"
        )
    op.alter_column("payouts", "status", type_=sa.String(length=20), existing_nullable=False)
    op.add_column("payouts", sa.Column("payout_account_id", sa.String(length=32), nullable=True))
    op.add_column("payouts", sa.Column("requested_by", sa.String(length=32), nullable=True))
    op.add_column("payouts", sa.Column("period", sa.String(length=16), nullable=True))
    op.add_column(
        "payouts", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("payouts", sa.Column("failure_reason", sa.Text(), nullable=True))
    op.add_column("payouts", sa.Column("waiting_reason", sa.Text(), nullable=True))
    op.add_column("payouts", sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("payouts", sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
    # Older rows: their last change is the best time we have.
    op.execute(
        "UPDATE payouts SET failed_at = updated_at, "
        "failure_reason = 'failed before reasons were recorded' WHERE status = 'failed'"
    )
    op.execute("UPDATE payouts SET completed_at = updated_at WHERE status = 'completed'")
    op.create_foreign_key(
        op.f("fk_payouts_payout_account_id_payout_accounts"),
        "payouts",
        "payout_accounts",
        ["payout_account_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        op.f("fk_payouts_requested_by_users"),
        "payouts",
        "users",
        ["requested_by"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.drop_constraint(op.f("ck_payouts_status"), "payouts", type_="check")
    op.create_check_constraint(op.f("ck_payouts_status"), "payouts", f"status IN ({STATUSES})")
    op.create_check_constraint(op.f("ck_payouts_attempts_non_negative"), "payouts", "attempts >= 0")
    op.create_check_constraint(
        op.f("ck_payouts_failed_has_reason"),
        "payouts",
        "(status = 'failed') = (failure_reason IS NOT NULL AND failed_at IS NOT NULL)",
    )
    op.create_check_constraint(
        op.f("ck_payouts_completed_has_time"),
        "payouts",
        "(status IN ('completed', 'reversed')) = (completed_at IS NOT NULL)",
    )
    op.create_check_constraint(
        op.f("ck_payouts_waiting_only_when_open"),
        "payouts",
        f"waiting_reason IS NULL OR status IN ({OPEN})",
    )
    op.create_unique_constraint("uq_payouts_user_id_period", "payouts", ["user_id", "period"])
    op.create_index(
        "uq_payouts_one_open_per_user",
        "payouts",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text(f"status IN ({OPEN})"),
    )
    op.execute(ACCOUNT_TRIGGER)


def downgrade():
    op.execute("DROP TRIGGER payouts_check_account ON payouts")
    op.execute("DROP FUNCTION payouts_check_account()")
    op.drop_index("uq_payouts_one_open_per_user", table_name="payouts")
    op.drop_constraint("uq_payouts_user_id_period", "payouts", type_="unique")
    for name in ("waiting_only_when_open", "completed_has_time", "failed_has_reason"):
        op.drop_constraint(op.f(f"ck_payouts_{name}"), "payouts", type_="check")
    op.drop_constraint(op.f("ck_payouts_attempts_non_negative"), "payouts", type_="check")
    op.drop_constraint(op.f("ck_payouts_status"), "payouts", type_="check")
    # The older table has no approval, hold or reversal: the nearest status it knows.
    op.execute(
        "UPDATE payouts SET status = CASE status WHEN 'reversed' THEN 'completed' "
        "ELSE 'pending' END WHERE status IN ('awaiting_approval', 'on_hold', 'reversed')"
    )
    op.create_check_constraint(
        op.f("ck_payouts_status"),
        "payouts",
        "status IN ('completed', 'failed', 'pending', 'processing')",
    )
    op.drop_constraint(op.f("fk_payouts_requested_by_users"), "payouts", type_="foreignkey")
    op.drop_constraint(
        op.f("fk_payouts_payout_account_id_payout_accounts"), "payouts", type_="foreignkey"
    )
    for column in (
        "failed_at",
        "completed_at",
        "waiting_reason",
        "failure_reason",
        "attempts",
        "period",
        "requested_by",
        "payout_account_id",
    ):
        op.drop_column("payouts", column)
    op.alter_column("payouts", "status", type_=sa.String(length=16), existing_nullable=False)
