"""downline counts and branch earnings

Revision ID: 0004
Revises: 0003

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Both tables are written only by these triggers, in the transaction of the row that changes
# them. Rows are upserted in key order so concurrent transactions lock them in the same order
# and cannot deadlock one another.
TRIGGERS = """
CREATE FUNCTION count_in_uplines() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.referred_by IS NOT NULL THEN
        INSERT INTO downline_counts (user_id, depth, members)
        WITH RECURSIVE up (id, depth) AS (
            SELECT NEW.referred_by::varchar, 1
            UNION ALL
            SELECT u.referred_by, up.depth + 1
            FROM up JOIN users u ON u.id = up.id
            WHERE u.referred_by IS NOT NULL
        )
        SELECT id, depth, 1 FROM up ORDER BY id
        ON CONFLICT (user_id, depth)
        DO UPDATE SET members = downline_counts.members + EXCLUDED.members;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER users_downline_counts AFTER INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION count_in_uplines();

-- The branch of a commission on user B's sale at tier t: B and B's uplines below the earner.
CREATE FUNCTION add_branch_earning(earner varchar, referral varchar, amount numeric)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO branch_earnings (earner_id, member_id, amount)
    SELECT earner, m.member_id, amount
    FROM referrals r
    CROSS JOIN LATERAL (
        SELECT r.referred_user_id AS member_id
        UNION ALL
        SELECT up.referrer_id FROM referrals up
        WHERE up.referred_user_id = r.referred_user_id AND up.tier < r.tier
    ) m
    WHERE r.id = referral
    ORDER BY m.member_id
    ON CONFLICT (earner_id, member_id)
    DO UPDATE SET amount = branch_earnings.amount + EXCLUDED.amount
$$;

CREATE FUNCTION track_branch_earnings() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_amount numeric := 0;
    new_amount numeric := 0;
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.status <> 'cancelled' THEN
        old_amount := OLD.amount;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status <> 'cancelled' THEN
        new_amount := NEW.amount;
    END IF;
    IF TG_OP = 'UPDATE' AND (OLD.user_id, OLD.referral_id) = (NEW.user_id, NEW.referral_id) THEN
        IF new_amount <> old_amount THEN
            PERFORM add_branch_earning(NEW.user_id, NEW.referral_id, new_amount - old_amount);
        END IF;
        RETURN NULL;
    END IF;
    IF old_amount <> 0 THEN
        PERFORM add_branch_earning(OLD.user_id, OLD.referral_id, -old_amount);
    END IF;
    IF new_amount <> 0 THEN
        PERFORM add_branch_earning(NEW.user_id, NEW.referral_id, new_amount);
    END IF;
    RETURN NULL;
END $$;
-- The access check: the ids from root down to node, or NULL when node is not within
-- max_depth levels below root. One primary-key lookup per level (plans cached by plpgsql).
CREATE FUNCTION downline_path(root varchar, node varchar, max_depth integer)
RETURNS varchar[] LANGUAGE plpgsql STABLE AS $$
DECLARE
    path varchar[] := ARRAY[node];
    upline varchar := node;
BEGIN
    IF node = root THEN
        RETURN path;
    END IF;
    FOR step IN 1..max_depth LOOP
        SELECT referred_by INTO upline FROM users WHERE id = upline;
        IF upline IS NULL THEN
            RETURN NULL;
        END IF;
        path := upline || path;
        IF upline = root THEN
            RETURN path;
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER commissions_branch_earnings
    AFTER INSERT OR DELETE OR UPDATE OF amount, status, user_id, referral_id ON commissions
    FOR EACH ROW EXECUTE FUNCTION track_branch_earnings();
"""

# Existing rows (after the functions exist): count every (ancestor, depth) pair once, and
# add each existing commission to its branch.
BACKFILL = """
INSERT INTO downline_counts (user_id, depth, members)
WITH RECURSIVE up (ancestor, depth) AS (
    SELECT referred_by, 1 FROM users WHERE referred_by IS NOT NULL
    UNION ALL
    SELECT u.referred_by, up.depth + 1
    FROM up JOIN users u ON u.id = up.ancestor
    WHERE u.referred_by IS NOT NULL
)
SELECT ancestor, depth, count(*) FROM up GROUP BY ancestor, depth;

SELECT add_branch_earning(user_id, referral_id, amount)
FROM commissions WHERE status <> 'cancelled' ORDER BY id;
"""


def upgrade():
    op.create_table(
        "branch_earnings",
        sa.Column("earner_id", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.Numeric(precision=19, scale=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["earner_id"],
            ["users.id"],
            name=op.f("fk_branch_earnings_earner_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["users.id"],
            name=op.f("fk_branch_earnings_member_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("earner_id", "member_id", name=op.f("pk_branch_earnings")),
    )
    op.create_table(
        "downline_counts",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("depth", sa.SmallInteger(), nullable=False),
        sa.Column("members", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("depth >= 1", name=op.f("ck_downline_counts_depth_positive")),
        sa.CheckConstraint("members >= 0", name=op.f("ck_downline_counts_members_non_negative")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_downline_counts_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "depth", name=op.f("pk_downline_counts")),
    )
    op.drop_index("ix_users_referred_by", table_name="users")
    op.create_index("ix_users_referred_by_created_at", "users", ["referred_by", "created_at", "id"])
    op.drop_index("ix_referrals_referrer_id", table_name="referrals")
    op.create_index(
        "ix_referrals_referrer_id_created_at", "referrals", ["referrer_id", "created_at"]
    )
    op.execute("CREATE INDEX ix_users_username_pattern ON users (lower(username) text_pattern_ops)")
    op.execute(TRIGGERS)
    op.execute(BACKFILL)


def downgrade():
    op.execute("DROP TRIGGER commissions_branch_earnings ON commissions")
    op.execute("DROP FUNCTION track_branch_earnings()")
    op.execute("DROP FUNCTION add_branch_earning(varchar, varchar, numeric)")
    op.execute("DROP FUNCTION downline_path(varchar, varchar, integer)")
    op.execute("DROP TRIGGER users_downline_counts ON users")
    op.execute("DROP FUNCTION count_in_uplines()")
    op.drop_index("ix_users_username_pattern", table_name="users")
    op.drop_index("ix_users_referred_by_created_at", table_name="users")
    op.create_index("ix_users_referred_by", "users", ["referred_by"])
    op.drop_index("ix_referrals_referrer_id_created_at", table_name="referrals")
    op.create_index("ix_referrals_referrer_id", "referrals", ["referrer_id"])
    op.drop_table("downline_counts")
    op.drop_table("branch_earnings")
