"""sessions: per-user session token, remember-me expiry; email domains stored IDNA-encoded

Revision ID: 0007
Revises: 0006

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Random per row (gen_random_uuid draws from PostgreSQL's strong random source).
SESSION_TOKEN_DEFAULT = sa.text("replace(gen_random_uuid()::text, '-', '')")


def _ascii_domains() -> None:
    """Rewrite stored addresses whose domain is not ASCII to the IDNA form the app now stores
    and looks up (else their owners could no longer log in). If that form is already another
    account's (one mailbox, two accounts: the defect this fixes), stop with the ids: a person
    decides which account keeps the address."""
    from app.services.accounts.emails import normalize_email

    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, email FROM users WHERE email !~ '@[[:ascii:]]+$'"))
    for user_id, email in rows.all():
        normalized = normalize_email(email)
        other = conn.scalar(
            sa.text("SELECT id FROM users WHERE lower(email) = lower(:e) AND id <> :id"),
            {"e": normalized, "id": user_id},
        )
        if normalized is None or other:
            raise RuntimeError(
                f"users {user_id} ({email!r}) and {other} share a mailbox (or the address is "
                "invalid): change one address, then run the migration again"
            )
        conn.execute(
            sa.text("UPDATE users SET email = :e WHERE id = :id"), {"e": normalized, "id": user_id}
        )


def upgrade():
    op.add_column(
        "users",
        sa.Column(
            "session_token",
            sa.String(length=64),
            server_default=SESSION_TOKEN_DEFAULT,
            nullable=False,
        ),
    )
    _ascii_domains()
    op.create_check_constraint(
        op.f("ck_users_email_ascii_domain"),
        "users",
        "email ~ '@[[:ascii:]]+$'",
    )


def downgrade():
    op.drop_constraint(op.f("ck_users_email_ascii_domain"), "users", type_="check")
    op.drop_column("users", "session_token")
