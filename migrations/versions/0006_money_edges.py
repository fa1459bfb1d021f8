"""money edge cases: sale date bounds, commission base, sale keys, self-purchase flags

Revision ID: 0006
Revises: 0005

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SALE_CHECKS = {
    "occurred_at_range": (
        "occurred_at >= '2000-01-01 00:00+00' AND occurred_at < '2100-01-01 00:00+00'"
    ),
    "tax_within_amount": "tax_amount >= 0 AND (amount IS NULL OR tax_amount <= amount)",
    "payer_email_lower": "payer_email = lower(payer_email)",
}
COMMISSION_CHECKS = {"payable_at_range": "payable_at < '2200-01-01 00:00+00'"}
SETTINGS_CHECKS = {"commission_base": "commission_base IN ('excluding_tax', 'including_tax')"}
FLAG_CHECKS = {"sale_for_self_purchase": "(reason = 'self_purchase') = (sale_id IS NOT NULL)"}


def _refuse_sales_out_of_range():
    """A sale dated outside the bounds (the far-future dates this revision stops) must be
    corrected by a person first: its commissions' payable dates are wrong too."""
    count = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT count(*) FROM sales WHERE occurred_at < '2000-01-01 00:00+00' "
                "OR occurred_at >= '2100-01-01 00:00+00'"
            )
        )
        .scalar()
    )
    if count:
        raise RuntimeError(f"{count} sales are dated before 2000 or after 2099; correct them first")


def upgrade():
    _refuse_sales_out_of_range()
    op.add_column(
        "sales",
        sa.Column(
            "tax_amount", sa.Numeric(precision=19, scale=4), server_default="0", nullable=False
        ),
    )
    op.add_column("sales", sa.Column("payer_email", sa.String(length=320), nullable=True))
    for name, condition in SALE_CHECKS.items():
        op.create_check_constraint(name, "sales", condition)

    op.create_table(
        "sale_keys",
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("sale_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["sale_id"], ["sales.id"], name=op.f("fk_sale_keys_sale_id_sales"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("provider", "key", name=op.f("pk_sale_keys")),
    )
    op.create_index("ix_sale_keys_sale_id", "sale_keys", ["sale_id"], unique=False)
    op.execute(
        "INSERT INTO sale_keys (provider, key, sale_id) SELECT provider, external_id, id FROM sales"
    )

    # Commissions accrued so far were computed on the total, tax included.
    op.add_column(
        "commissions",
        sa.Column("base_includes_tax", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    for name, condition in COMMISSION_CHECKS.items():
        op.create_check_constraint(name, "commissions", condition)

    op.add_column(
        "referral_program_settings",
        sa.Column(
            "commission_base",
            sa.String(length=16),
            server_default="excluding_tax",
            nullable=False,
        ),
    )
    for name, condition in SETTINGS_CHECKS.items():
        op.create_check_constraint(name, "referral_program_settings", condition)

    # Self-purchase flags are one per sale; the registration signals stay one per buyer.
    op.add_column("referral_flags", sa.Column("sale_id", sa.String(length=32), nullable=True))
    op.create_foreign_key(
        op.f("fk_referral_flags_sale_id_sales"),
        "referral_flags",
        "sales",
        ["sale_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.drop_constraint("uq_referral_flags_user_reason", "referral_flags", type_="unique")
    op.create_index(
        "uq_referral_flags_user_reason",
        "referral_flags",
        ["referred_user_id", "reason"],
        unique=True,
        postgresql_where=sa.text("sale_id IS NULL"),
    )
    op.create_index(
        "uq_referral_flags_sale_reason",
        "referral_flags",
        ["sale_id", "reason"],
        unique=True,
        postgresql_where=sa.text("sale_id IS NOT NULL"),
    )
    op.drop_constraint(op.f("ck_referral_flags_reason"), "referral_flags", type_="check")
    op.create_check_constraint(
        "reason", "referral_flags", "reason IN ('email_alias', 'same_ip', 'self_purchase')"
    )
    for name, condition in FLAG_CHECKS.items():
        op.create_check_constraint(name, "referral_flags", condition)


def downgrade():
    op.execute("DELETE FROM referral_flags WHERE reason = 'self_purchase'")
    for name in FLAG_CHECKS:
        op.drop_constraint(op.f(f"ck_referral_flags_{name}"), "referral_flags", type_="check")
    op.drop_constraint(op.f("ck_referral_flags_reason"), "referral_flags", type_="check")
    op.create_check_constraint("reason", "referral_flags", "reason IN ('email_alias', 'same_ip')")
    op.drop_index("uq_referral_flags_sale_reason", table_name="referral_flags")
    op.drop_index("uq_referral_flags_user_reason", table_name="referral_flags")
    op.create_unique_constraint(
        "uq_referral_flags_user_reason", "referral_flags", ["referred_user_id", "reason"]
    )
    op.drop_constraint(op.f("fk_referral_flags_sale_id_sales"), "referral_flags", "foreignkey")
    op.drop_column("referral_flags", "sale_id")

    for name in SETTINGS_CHECKS:
        op.drop_constraint(
            op.f(f"ck_referral_program_settings_{name}"), "referral_program_settings", "check"
        )
    op.drop_column("referral_program_settings", "commission_base")

    for name in COMMISSION_CHECKS:
        op.drop_constraint(op.f(f"ck_commissions_{name}"), "commissions", type_="check")
    op.drop_column("commissions", "base_includes_tax")

    # A sale whose events named several ids keeps the one it was created with.
    op.drop_index("ix_sale_keys_sale_id", table_name="sale_keys")
    op.drop_table("sale_keys")
    for name in SALE_CHECKS:
        op.drop_constraint(op.f(f"ck_sales_{name}"), "sales", type_="check")
    op.drop_column("sales", "payer_email")
    op.drop_column("sales", "tax_amount")
