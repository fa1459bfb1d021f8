"""money running totals: ledger totals and hour buckets, statement-level branch earnings

Revision ID: 0024_money_running_totals
Revises: 0023_funnel_signed_up_visitors

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0024_money_running_totals"
down_revision = "0023_funnel_signed_up_visitors"
branch_labels = None
depends_on = None

# One aggregated upsert per table per statement, rows in key order: two statements that
# touch the same users lock their rows in the same order and cannot deadlock each other,
# and a batch of 1,500 entries for 3 uplines costs 3 row updates, not 1,500.
LEDGER_TOTALS = """
CREATE FUNCTION ledger_entries_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_totals (user_id, total, paid)
    SELECT user_id, sum(amount),
           coalesce(-sum(amount) FILTER (
               WHERE kind IN ('payout', 'payout_failure', 'payout_reversal')), 0)
    FROM appended GROUP BY user_id ORDER BY user_id
    ON CONFLICT (user_id) DO UPDATE
    SET total = ledger_totals.total + EXCLUDED.total, paid = ledger_totals.paid + EXCLUDED.paid;
    INSERT INTO ledger_buckets (user_id, available_hour, amount)
    SELECT user_id, date_trunc('hour', available_at, 'UTC'), sum(amount)
    FROM appended GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (user_id, available_hour) DO UPDATE
    SET amount = ledger_buckets.amount + EXCLUDED.amount;
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_entries_totals AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_totals();
"""

LEDGER_TOTALS_BACKFILL = """
INSERT INTO ledger_totals (user_id, total, paid)
SELECT user_id, sum(amount),
       coalesce(-sum(amount) FILTER (
           WHERE kind IN ('payout', 'payout_failure', 'payout_reversal')), 0)
FROM ledger_entries GROUP BY user_id;
INSERT INTO ledger_buckets (user_id, available_hour, amount)
SELECT user_id, date_trunc('hour', available_at, 'UTC'), sum(amount)
FROM ledger_entries GROUP BY 1, 2;
"""

# Branch earnings (what an earner keeps, amount - clawed_back of non-cancelled commissions,
# per member of the branch the sale came from), now once per statement: each changed
# commission's difference, summed per (earner, member), upserted in key order.
BRANCH_EARNINGS = """
CREATE FUNCTION add_branch_earnings(earners varchar[], referral_ids varchar[], amounts numeric[])
RETURNS void LANGUAGE sql AS $$
    INSERT INTO branch_earnings (earner_id, member_id, amount)
    SELECT d.earner, m.member_id, sum(d.amount)
    FROM unnest(earners, referral_ids, amounts) AS d (earner, referral_id, amount)
    JOIN referrals r ON r.id = d.referral_id
    CROSS JOIN LATERAL (
        SELECT r.referred_user_id AS member_id
        UNION ALL
        SELECT up.referrer_id FROM referrals up
        WHERE up.referred_user_id = r.referred_user_id AND up.tier < r.tier
    ) m
    GROUP BY 1, 2 HAVING sum(d.amount) <> 0
    ORDER BY 1, 2
    ON CONFLICT (earner_id, member_id)
    DO UPDATE SET amount = branch_earnings.amount + EXCLUDED.amount
$$;
CREATE FUNCTION commissions_branch_earnings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM add_branch_earnings(array_agg(user_id), array_agg(referral_id),
                                    array_agg(amount - clawed_back))
        FROM new_rows WHERE status <> 'cancelled';
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM add_branch_earnings(array_agg(user_id), array_agg(referral_id),
                                    array_agg(clawed_back - amount))
        FROM old_rows WHERE status <> 'cancelled';
    ELSE
        PERFORM add_branch_earnings(array_agg(user_id), array_agg(referral_id), array_agg(amount))
        FROM (
            SELECT user_id, referral_id, amount - clawed_back AS amount
            FROM new_rows WHERE status <> 'cancelled'
            UNION ALL
            SELECT user_id, referral_id, clawed_back - amount
            FROM old_rows WHERE status <> 'cancelled'
        ) changed;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER commissions_branch_earnings_insert AFTER INSERT ON commissions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION commissions_branch_earnings();
CREATE TRIGGER commissions_branch_earnings_update AFTER UPDATE ON commissions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION commissions_branch_earnings();
CREATE TRIGGER commissions_branch_earnings_delete AFTER DELETE ON commissions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION commissions_branch_earnings();
"""

# Back to the per-row trigger of 0004 and 0005 (migrations are snapshots: repeated here).
BRANCH_EARNINGS_PER_ROW = """
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
        old_amount := OLD.amount - OLD.clawed_back;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status <> 'cancelled' THEN
        new_amount := NEW.amount - NEW.clawed_back;
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
CREATE TRIGGER commissions_branch_earnings
    AFTER INSERT OR DELETE OR UPDATE OF amount, clawed_back, status, user_id, referral_id
    ON commissions FOR EACH ROW EXECUTE FUNCTION track_branch_earnings();
"""


def upgrade():
    op.create_table(
        "ledger_totals",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("total", sa.Numeric(19, 4), nullable=False),
        sa.Column("paid", sa.Numeric(19, 4), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_ledger_totals_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_ledger_totals")),
    )
    op.create_table(
        "ledger_buckets",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("available_hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount", sa.Numeric(19, 4), nullable=False),
        sa.CheckConstraint(
            "available_hour = date_trunc('hour', available_hour, 'UTC')",
            name=op.f("ck_ledger_buckets_whole_hour"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_ledger_buckets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "available_hour", name=op.f("pk_ledger_buckets")),
    )
    op.create_index("ix_ledger_buckets_available_hour", "ledger_buckets", ["available_hour"])
    op.create_index(
        "ix_sales_open_disputes",
        "sales",
        ["id"],
        postgresql_where=sa.text("disputed_amount > 0 AND dispute_closed_at IS NULL"),
    )
    # No entry is appended between the backfill and the trigger (both commit together).
    op.execute("LOCK TABLE ledger_entries IN SHARE ROW EXCLUSIVE MODE")
    op.execute(LEDGER_TOTALS_BACKFILL)
    op.execute(LEDGER_TOTALS)
    op.execute("DROP TRIGGER commissions_branch_earnings ON commissions")
    op.execute("DROP FUNCTION track_branch_earnings()")
    op.execute("DROP FUNCTION add_branch_earning(varchar, varchar, numeric)")
    op.execute(BRANCH_EARNINGS)


def downgrade():
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER commissions_branch_earnings_{event} ON commissions")
    op.execute("DROP FUNCTION commissions_branch_earnings()")
    op.execute("DROP FUNCTION add_branch_earnings(varchar[], varchar[], numeric[])")
    op.execute(BRANCH_EARNINGS_PER_ROW)
    op.execute("DROP TRIGGER ledger_entries_totals ON ledger_entries")
    op.execute("DROP FUNCTION ledger_entries_totals()")
    op.drop_index("ix_sales_open_disputes", table_name="sales")
    op.drop_table("ledger_buckets")
    op.drop_table("ledger_totals")
