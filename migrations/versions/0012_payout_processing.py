"""payout processing: approvals, first attempt, reversals in the ledger

Revision ID: 0012
Revises: 0011

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

KINDS_BEFORE = "'accrual', 'clawback', 'payout', 'payout_failure', 'reversal'"
KINDS = "'accrual', 'clawback', 'payout', 'payout_failure', 'payout_reversal', 'reversal'"
PAYOUT_KINDS_BEFORE = "'payout', 'payout_failure'"
PAYOUT_KINDS = "'payout', 'payout_failure', 'payout_reversal'"

# Approvals are facts: never changed, never taken back (a rejection fails the payout).
APPROVALS_IMMUTABLE = """
CREATE FUNCTION payout_approvals_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'payout_approvals is append-only' USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER payout_approvals_immutable BEFORE UPDATE OR DELETE ON payout_approvals
    FOR EACH ROW EXECUTE FUNCTION payout_approvals_immutable();
"""


def _ledger_checks(kinds: str, payout_kinds: str) -> None:
    op.drop_constraint(op.f("ck_ledger_entries_kind"), "ledger_entries", type_="check")
    op.drop_constraint(
        op.f("ck_ledger_entries_payout_entries_name_the_payout"), "ledger_entries", type_="check"
    )
    op.create_check_constraint(
        op.f("ck_ledger_entries_kind"), "ledger_entries", f"kind IN ({kinds})"
    )
    op.create_check_constraint(
        op.f("ck_ledger_entries_payout_entries_name_the_payout"),
        "ledger_entries",
        f"(kind IN ({payout_kinds})) = (payout_id IS NOT NULL)",
    )


def upgrade():
    _ledger_checks(KINDS, PAYOUT_KINDS)
    op.add_column(
        "referral_program_settings",
        sa.Column("payouts_need_approval", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        "referral_program_settings",
        sa.Column("dual_approval_above", sa.Numeric(precision=19, scale=4), nullable=True),
    )
    op.create_check_constraint(
        op.f("ck_referral_program_settings_dual_approval_non_negative"),
        "referral_program_settings",
        "dual_approval_above IS NULL OR dual_approval_above >= 0",
    )
    op.add_column(
        "payouts",
        sa.Column("approvals_required", sa.SmallInteger(), server_default="0", nullable=False),
    )
    op.add_column(
        "payouts", sa.Column("first_attempted_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("payouts", sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(
        op.f("ck_payouts_approvals_required_range"), "payouts", "approvals_required BETWEEN 0 AND 2"
    )
    op.create_check_constraint(
        op.f("ck_payouts_reversed_has_time"),
        "payouts",
        "(status = 'reversed') = (reversed_at IS NOT NULL)",
    )
    op.execute("UPDATE payouts SET reversed_at = updated_at WHERE status = 'reversed'")
    op.create_table(
        "payout_approvals",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("payout_id", sa.String(length=32), nullable=False),
        sa.Column("admin_id", sa.String(length=32), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["payout_id"],
            ["payouts.id"],
            name=op.f("fk_payout_approvals_payout_id_payouts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["admin_id"],
            ["users.id"],
            name=op.f("fk_payout_approvals_admin_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_approvals")),
        sa.UniqueConstraint("payout_id", "admin_id", name=op.f("uq_payout_approvals_payout_id")),
    )
    op.execute(APPROVALS_IMMUTABLE)


def downgrade():
    # The older ledger has no reversal kind, and the ledger is append-only: refuse rather
    # than rewrite money history.
    reversals = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM ledger_entries WHERE kind = 'payout_reversal'")
    )
    if reversals:
        raise RuntimeError(
            f"{reversals} ledger entries record reversed payouts; the schema before 0012 "
            "cannot hold them. Restore a backup from before the upgrade instead."
        )
    op.execute("DROP TRIGGER payout_approvals_immutable ON payout_approvals")
    op.execute("DROP FUNCTION payout_approvals_immutable()")
    op.drop_table("payout_approvals")
    op.drop_constraint(op.f("ck_payouts_reversed_has_time"), "payouts", type_="check")
    op.drop_constraint(op.f("ck_payouts_approvals_required_range"), "payouts", type_="check")
    for column in ("reversed_at", "first_attempted_at", "approvals_required"):
        op.drop_column("payouts", column)
    op.drop_constraint(
        op.f("ck_referral_program_settings_dual_approval_non_negative"),
        "referral_program_settings",
        type_="check",
    )
    op.drop_column("referral_program_settings", "dual_approval_above")
    op.drop_column("referral_program_settings", "payouts_need_approval")
    _ledger_checks(KINDS_BEFORE, PAYOUT_KINDS_BEFORE)
