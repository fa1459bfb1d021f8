"""commission_rollups (per day) and commission_rollup_months: an affiliate's commissions
summed per tier and status, kept by statement-level triggers, for the commissions page's
totals and monthly chart

Revision ID: 0025_commission_rollups
Revises: 0024_money_running_totals

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0025_commission_rollups"
down_revision = "0024_money_running_totals"
branch_labels = None
depends_on = None

# The net sale of a commission as the lists show it (commission_listing.commission_totals):
# its base reduced in proportion to the sale's refunds and disputes, rounded to the
# currency's minor units per commission. The same expression on the same numeric values, so
# the same digits. currency_minor_units() is app/money.py's table (a test compares them): a
# change there needs a migration replacing it and calling rebuild_commission_rollups().
FUNCTIONS = """
CREATE FUNCTION currency_minor_units(code text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN upper(code) = ANY ('{BIF,CLP,DJF,GNF,ISK,JPY,KMF,KRW,PYG,RWF,UGX,UYI,VND,VUV,'
                                 'XAF,XOF,XPF}') THEN 0
        WHEN upper(code) = ANY ('{BHD,IQD,JOD,KWD,LYD,OMR,TND}') THEN 3
        WHEN upper(code) = ANY ('{CLF,UYW}') THEN 4
        ELSE 2
    END
$$;

-- Joined as (SELECT program_minor_units() AS minor OFFSET 0): OFFSET 0 keeps the planner
-- from pulling it up into a call per row (measured: most of a 2,000-row update's cost).
CREATE FUNCTION program_minor_units() RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT currency_minor_units(currency) FROM referral_program_settings), 2)
$$;

CREATE FUNCTION commission_sale_net(
    base_amount numeric, sale_amount numeric, refunded numeric, disputed numeric, minor integer
) RETURNS numeric LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN sale_amount > 0
        THEN round(base_amount * (sale_amount - least(sale_amount, refunded + disputed))
                   / sale_amount, minor)
        ELSE 0 END
$$;

-- What the rollups should hold: every commission, counted from scratch.
CREATE FUNCTION commission_rollup_recount() RETURNS SETOF commission_rollups
LANGUAGE sql STABLE AS $$
    SELECT c.user_id, (c.created_at AT TIME ZONE 'UTC')::date, c.tier, c.status, count(*),
           sum(c.amount), sum(c.clawed_back),
           sum(commission_sale_net(c.base_amount, s.amount, s.refunded_amount,
                                   s.disputed_amount, m.minor))
    FROM commissions c
    JOIN sales s ON s.id = c.sale_id
    CROSS JOIN (SELECT program_minor_units() AS minor OFFSET 0) m
    GROUP BY 1, 2, 3, 4
$$;

-- The month rows are the day rows' sums (date_trunc of a timestamp: not the session's zone).
CREATE FUNCTION commission_rollup_month_recount() RETURNS SETOF commission_rollup_months
LANGUAGE sql STABLE AS $$
    SELECT user_id, date_trunc('month', day::timestamp)::date, tier, status, sum(commissions),
           sum(amount), sum(clawed_back), sum(sale_net)
    FROM commission_rollup_recount()
    GROUP BY 1, 2, 3, 4
$$;

-- Both tables again from commissions and sales. Takes SHARE locks on both (writers wait for
-- it, it waits for open writers) so no change slips between the recount and the write.
CREATE FUNCTION rebuild_commission_rollups() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE commissions, sales IN SHARE MODE;
    LOCK TABLE commission_rollups, commission_rollup_months IN EXCLUSIVE MODE;
    DELETE FROM commission_rollups;
    INSERT INTO commission_rollups SELECT * FROM commission_rollup_recount() ORDER BY 1, 2, 3, 4;
    DELETE FROM commission_rollup_months;
    INSERT INTO commission_rollup_months
    SELECT user_id, date_trunc('month', day::timestamp)::date, tier, status, sum(commissions),
           sum(amount), sum(clawed_back), sum(sale_net)
    FROM commission_rollups
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4;
END $$;

-- Adds one statement's deltas (day rows, counts and sums signed) in one upsert per table in
-- key order, days before months, so concurrent statements lock shared rows in the same
-- order and cannot deadlock one another; rows left with no commission go.
CREATE FUNCTION add_commission_rollups(deltas commission_rollups[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(deltas) = 0 THEN
        RETURN;
    END IF;
    INSERT INTO commission_rollups AS r
    SELECT * FROM unnest(deltas) ORDER BY 1, 2, 3, 4
    ON CONFLICT (user_id, day, tier, status) DO UPDATE SET
        commissions = r.commissions + excluded.commissions,
        amount = r.amount + excluded.amount,
        clawed_back = r.clawed_back + excluded.clawed_back,
        sale_net = r.sale_net + excluded.sale_net;
    DELETE FROM commission_rollups r
    USING unnest(deltas) d
    WHERE d.commissions < 0 AND r.commissions = 0
      AND (r.user_id, r.day, r.tier, r.status) = (d.user_id, d.day, d.tier, d.status);
    INSERT INTO commission_rollup_months AS r
    SELECT user_id, date_trunc('month', day::timestamp)::date, tier, status, sum(commissions),
           sum(amount), sum(clawed_back), sum(sale_net)
    FROM unnest(deltas)
    GROUP BY 1, 2, 3, 4
    HAVING sum(commissions) <> 0 OR sum(amount) <> 0 OR sum(clawed_back) <> 0
        OR sum(sale_net) <> 0
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (user_id, month, tier, status) DO UPDATE SET
        commissions = r.commissions + excluded.commissions,
        amount = r.amount + excluded.amount,
        clawed_back = r.clawed_back + excluded.clawed_back,
        sale_net = r.sale_net + excluded.sale_net;
    DELETE FROM commission_rollup_months r
    USING unnest(deltas) d
    WHERE d.commissions < 0 AND r.commissions = 0
      AND (r.user_id, r.month, r.tier, r.status)
          = (d.user_id, date_trunc('month', d.day::timestamp)::date, d.tier, d.status);
END $$;
"""

# One function per event: PostgreSQL allows transition tables only on single-event triggers
# (and on UPDATE triggers without a column list, so updates that change none of the figures
# are skipped here, by joining the old and new rows). Each turns its rows into signed deltas
# (an old row counts -1, a new one +1) summed per key; keys whose deltas are all zero drop out.
DELTAS = """
    PERFORM add_commission_rollups(ARRAY(
        SELECT ROW(x.user_id, (x.created_at AT TIME ZONE 'UTC')::date, x.tier, x.status,
                   sum(x.sign), sum(x.sign * x.amount), sum(x.sign * x.clawed_back),
                   sum(x.sign * commission_sale_net(x.base_amount, s.amount, s.refunded_amount,
                                                    s.disputed_amount, m.minor))
               )::commission_rollups
        FROM (ROWS) x
        JOIN sales s ON s.id = x.sale_id
        CROSS JOIN (SELECT program_minor_units() AS minor OFFSET 0) m
        GROUP BY x.user_id, (x.created_at AT TIME ZONE 'UTC')::date, x.tier, x.status
        HAVING sum(x.sign) <> 0 OR sum(x.sign * x.amount) <> 0
            OR sum(x.sign * x.clawed_back) <> 0
            OR sum(x.sign * commission_sale_net(x.base_amount, s.amount, s.refunded_amount,
                                                s.disputed_amount, m.minor)) <> 0
    ));
"""
INSERTED = """
    SELECT user_id, created_at, tier, status, sale_id, base_amount, amount, clawed_back,
           1 AS sign
    FROM new_rows
"""
DELETED = INSERTED.replace("1 AS sign", "-1 AS sign").replace("new_rows", "old_rows")
UPDATED = """
    SELECT v.* FROM old_rows o JOIN new_rows n ON n.id = o.id
    CROSS JOIN LATERAL (VALUES
        (o.user_id, o.created_at, o.tier, o.status, o.sale_id, o.base_amount, o.amount,
         o.clawed_back, -1),
        (n.user_id, n.created_at, n.tier, n.status, n.sale_id, n.base_amount, n.amount,
         n.clawed_back, 1)
    ) AS v (user_id, created_at, tier, status, sale_id, base_amount, amount, clawed_back, sign)
    WHERE (o.user_id, o.created_at, o.tier, o.status, o.sale_id, o.base_amount, o.amount,
           o.clawed_back)
          IS DISTINCT FROM (n.user_id, n.created_at, n.tier, n.status, n.sale_id,
                            n.base_amount, n.amount, n.clawed_back)
"""


def _commission_function(name: str, rows: str) -> str:
    body = DELTAS.replace("(ROWS)", f"({rows})")
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{body}
    RETURN NULL;
END $$;
"""


TRIGGERS = """
CREATE FUNCTION commission_rollups_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM commission_rollups;
    DELETE FROM commission_rollup_months;
    RETURN NULL;
END $$;

-- A sale's refunds and disputes change the net sale of each of its commissions (count and
-- amounts change through the commissions' own updates). A statement that changed a sale's
-- amounts and its commissions at once would count the change twice: none does
-- (adjust_for_refunds updates the sale, then its commissions), and differences() would say.
CREATE FUNCTION commission_rollups_sales_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM add_commission_rollups(ARRAY(
        SELECT ROW(c.user_id, (c.created_at AT TIME ZONE 'UTC')::date, c.tier, c.status,
                   0, 0, 0, sum(
                       commission_sale_net(c.base_amount, x.amount, x.refunded_amount,
                                           x.disputed_amount, m.minor)
                       - commission_sale_net(c.base_amount, x.old_amount, x.old_refunded,
                                             x.old_disputed, m.minor))
               )::commission_rollups
        FROM (SELECT n.id, n.amount, n.refunded_amount, n.disputed_amount,
                     o.amount AS old_amount, o.refunded_amount AS old_refunded,
                     o.disputed_amount AS old_disputed
              FROM old_sales o JOIN new_sales n ON n.id = o.id
              WHERE (o.amount, o.refunded_amount, o.disputed_amount)
                    IS DISTINCT FROM (n.amount, n.refunded_amount, n.disputed_amount)) x
        JOIN commissions c ON c.sale_id = x.id
        CROSS JOIN (SELECT program_minor_units() AS minor OFFSET 0) m
        GROUP BY c.user_id, (c.created_at AT TIME ZONE 'UTC')::date, c.tier, c.status
        HAVING sum(commission_sale_net(c.base_amount, x.amount, x.refunded_amount,
                                       x.disputed_amount, m.minor)
                   - commission_sale_net(c.base_amount, x.old_amount, x.old_refunded,
                                         x.old_disputed, m.minor)) <> 0
    ));
    RETURN NULL;
END $$;

-- The settings refuse a new currency once a sale exists (so there is no commission to
-- round differently); a change made around them still leaves the net sales exact.
CREATE FUNCTION commission_rollups_currency_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM old_settings o JOIN new_settings n ON n.id = o.id
               WHERE currency_minor_units(o.currency) <> currency_minor_units(n.currency))
       AND EXISTS (SELECT FROM commission_rollups) THEN
        PERFORM rebuild_commission_rollups();
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER commission_rollups_inserted AFTER INSERT ON commissions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION commission_rollups_inserted();
CREATE TRIGGER commission_rollups_updated AFTER UPDATE ON commissions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION commission_rollups_updated();
CREATE TRIGGER commission_rollups_deleted AFTER DELETE ON commissions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION commission_rollups_deleted();
CREATE TRIGGER commission_rollups_truncated AFTER TRUNCATE ON commissions
    FOR EACH STATEMENT EXECUTE FUNCTION commission_rollups_truncated();
CREATE TRIGGER commission_rollups_sales_updated AFTER UPDATE ON sales
    REFERENCING OLD TABLE AS old_sales NEW TABLE AS new_sales
    FOR EACH STATEMENT EXECUTE FUNCTION commission_rollups_sales_updated();
CREATE TRIGGER commission_rollups_currency_updated AFTER UPDATE ON referral_program_settings
    REFERENCING OLD TABLE AS old_settings NEW TABLE AS new_settings
    FOR EACH STATEMENT EXECUTE FUNCTION commission_rollups_currency_updated();
"""

DROP = """
DROP TRIGGER commission_rollups_currency_updated ON referral_program_settings;
DROP TRIGGER commission_rollups_sales_updated ON sales;
DROP TRIGGER commission_rollups_truncated ON commissions;
DROP TRIGGER commission_rollups_deleted ON commissions;
DROP TRIGGER commission_rollups_updated ON commissions;
DROP TRIGGER commission_rollups_inserted ON commissions;
DROP FUNCTION commission_rollups_currency_updated();
DROP FUNCTION commission_rollups_sales_updated();
DROP FUNCTION commission_rollups_truncated();
DROP FUNCTION commission_rollups_updated();
DROP FUNCTION commission_rollups_deleted();
DROP FUNCTION commission_rollups_inserted();
DROP FUNCTION add_commission_rollups(commission_rollups[]);
DROP FUNCTION rebuild_commission_rollups();
DROP FUNCTION commission_rollup_month_recount();
DROP FUNCTION commission_rollup_recount();
DROP FUNCTION commission_sale_net(numeric, numeric, numeric, numeric, integer);
DROP FUNCTION program_minor_units();
DROP FUNCTION currency_minor_units(text);
"""


def upgrade():
    op.create_table(
        "commission_rollups",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("commissions", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("clawed_back", sa.Numeric(), nullable=False),
        sa.Column("sale_net", sa.Numeric(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_commission_rollups_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "user_id", "day", "tier", "status", name=op.f("pk_commission_rollups")
        ),
    )
    op.create_table(
        "commission_rollup_months",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("commissions", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("clawed_back", sa.Numeric(), nullable=False),
        sa.Column("sale_net", sa.Numeric(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_commission_rollup_months_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "user_id", "month", "tier", "status", name=op.f("pk_commission_rollup_months")
        ),
    )
    op.execute(FUNCTIONS)
    op.execute(_commission_function("commission_rollups_inserted", INSERTED))
    op.execute(_commission_function("commission_rollups_deleted", DELETED))
    op.execute(_commission_function("commission_rollups_updated", UPDATED))
    op.execute(TRIGGERS)
    op.execute("SELECT rebuild_commission_rollups()")


def downgrade():
    op.execute(DROP)
    op.drop_table("commission_rollup_months")
    op.drop_table("commission_rollups")
