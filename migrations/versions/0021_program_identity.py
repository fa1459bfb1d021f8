"""program identity: name, description, product, logo, accent colour; versioned terms;
the terms each user accepted; the first-session checklist's "copied my link"

Revision ID: 0021_program_identity
Revises: 0020_outbox

The first terms are frozen here as they were when terms started; `flask seed` restores a
missing version 1 from app/services/program/terms.py without touching existing ones.
Users made before this revision have accepted no terms (both columns empty): they are asked
to accept the terms in force when they next sign in.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0021_program_identity"
down_revision = "0020_outbox"
branch_labels = None
depends_on = None

SETTINGS = "referral_program_settings"
FIRST_TERMS = """These are the program's starting terms. An admin can replace them.

- You earn a commission on payments made by the people who join through your link, and, when the program has several tiers, by the people they bring in, at the rates shown on the program page.
- A commission waits through the hold period before it can be paid out, so refunds land first. A refunded or disputed payment cancels its commission.
- Buying through your own link, or referring yourself, earns nothing. Commissions under review are held until an admin decides.
- Payouts are made once your available balance reaches the minimum payout."""  # noqa: E501

APPEND_ONLY = """
CREATE FUNCTION refuse_terms_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'program_terms is append-only: publish a new version instead';
END $$;
CREATE TRIGGER program_terms_append_only BEFORE UPDATE OR DELETE ON program_terms
    FOR EACH ROW EXECUTE FUNCTION refuse_terms_change();
"""


def upgrade():
    op.add_column(
        SETTINGS,
        sa.Column(
            "program_name",
            sa.String(length=80),
            server_default="Referral program",
            nullable=False,
        ),
    )
    for name, length in (
        ("program_description", 500),
        ("product_name", 80),
        ("product_url", 500),
        ("accent_color", 7),
        ("logo_type", 16),
        ("logo_digest", 64),
    ):
        op.add_column(SETTINGS, sa.Column(name, sa.String(length=length), nullable=True))
    op.add_column(SETTINGS, sa.Column("logo", sa.LargeBinary(), nullable=True))
    for name, condition in (
        ("program_name_present", "length(btrim(program_name)) > 0"),
        ("product_url_http", "product_url ~ '^https?://'"),
        ("accent_color_hex", "accent_color ~ '^#[0-9a-f]{6}$'"),
        ("logo_type", "logo_type IN ('image/png', 'image/svg+xml')"),
        (
            "logo_complete",
            "(logo IS NULL) = (logo_type IS NULL) AND (logo IS NULL) = (logo_digest IS NULL)",
        ),
        ("logo_size", "octet_length(logo) <= 204800"),
    ):
        op.create_check_constraint(name, SETTINGS, condition)

    op.create_table(
        "program_terms",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_program_terms_version_positive")),
        sa.CheckConstraint("length(btrim(body)) > 0", name=op.f("ck_program_terms_body_present")),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_program_terms")),
    )
    op.execute(APPEND_ONLY)
    op.execute(
        sa.text("INSERT INTO program_terms (version, body) VALUES (1, :body)").bindparams(
            body=FIRST_TERMS
        )
    )

    op.add_column("users", sa.Column("terms_version", sa.Integer(), nullable=True))
    op.add_column(
        "users", sa.Column("terms_accepted_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("users", sa.Column("link_copied_at", sa.DateTime(timezone=True), nullable=True))
    op.create_foreign_key(
        op.f("fk_users_terms_version_program_terms"),
        "users",
        "program_terms",
        ["terms_version"],
        ["version"],
        ondelete="RESTRICT",
    )
    op.create_check_constraint(
        "terms_accepted_together",
        "users",
        "(terms_version IS NULL) = (terms_accepted_at IS NULL)",
    )


def downgrade():
    op.drop_constraint("terms_accepted_together", "users", type_="check")
    op.drop_constraint(op.f("fk_users_terms_version_program_terms"), "users", type_="foreignkey")
    for name in ("link_copied_at", "terms_accepted_at", "terms_version"):
        op.drop_column("users", name)
    op.drop_table("program_terms")
    op.execute("DROP FUNCTION refuse_terms_change()")
    for name in (
        "logo",
        "logo_digest",
        "logo_type",
        "accent_color",
        "product_url",
        "product_name",
        "program_description",
        "program_name",
    ):
        op.drop_column(SETTINGS, name)
