"""report views: materialized views behind /admin/reports, refreshed concurrently

Revision ID: 0018
Revises: 0017

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# Days are UTC dates. Sales count in the program's currency only (foreign-currency ones are
# stored unconverted and earn nothing: counted apart). A sale's refunds are what the
# commission engine takes off: refunded plus open disputes, at most the sale's amount.
# Commissions cancelled (by an admin, or as confirmed fraud) are left out entirely, even
# paid ones clawed back; the others count net, ``amount - clawed_back`` (refunds before
# payout lowered ``amount``, after payout they were clawed back), beside their gross.
# Each view has a unique index on plain columns: REFRESH ... CONCURRENTLY needs one.
VIEWS = {
    "report_daily_sales": (
        """
        SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day,
               count(*) FILTER (WHERE NOT is_foreign_currency) AS sales,
               coalesce(sum(amount) FILTER (WHERE NOT is_foreign_currency), 0) AS sales_amount,
               coalesce(sum(least(amount, refunded_amount + disputed_amount))
                        FILTER (WHERE NOT is_foreign_currency), 0) AS refunded_amount,
               count(*) FILTER (WHERE is_foreign_currency) AS foreign_sales
        FROM sales
        WHERE amount IS NOT NULL
        GROUP BY 1
        """,
        "day",
    ),
    # By the day of the sale that earned them, so a day's commissions and sales compare.
    "report_daily_commissions": (
        """
        SELECT (s.occurred_at AT TIME ZONE 'UTC')::date AS day, c.tier,
               count(*) AS commissions,
               sum(c.gross_amount) AS gross_amount,
               sum(c.amount - c.clawed_back) AS amount
        FROM commissions c
        JOIN sales s ON s.id = c.sale_id
        WHERE c.status <> 'cancelled' AND c.cancelled_at IS NULL
        GROUP BY 1, 2
        """,
        "day, tier",
    ),
    # Clicks: unique visitors per link per day, archived ones included. Sign-ups: tier-1
    # referrals by the day they joined; paying: those of them who bought (status completed,
    # as the affiliate's link statistics count them).
    "report_daily_funnel": (
        """
        WITH clicks AS (
            SELECT clicked_on AS day, count(*) AS clicks
            FROM (SELECT clicked_on FROM referral_clicks
                  UNION ALL
                  SELECT clicked_on FROM referral_clicks_archive) k
            GROUP BY 1
        ),
        signups AS (
            SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS signups,
                   count(*) FILTER (WHERE status = 'completed') AS paying_referrals
            FROM referrals
            WHERE tier = 1
            GROUP BY 1
        )
        SELECT coalesce(k.day, s.day) AS day, coalesce(k.clicks, 0) AS clicks,
               coalesce(s.signups, 0) AS signups,
               coalesce(s.paying_referrals, 0) AS paying_referrals
        FROM clicks k
        FULL JOIN signups s ON s.day = k.day
        """,
        "day",
    ),
    # The 100 affiliates who earned most over the last 30, 90 and 365 days (as of the
    # refresh): earnings from every tier; sales and sign-ups are their direct referrals'.
    # Fixed windows keep one ranked row per affiliate and window: a ranking over any dates
    # would add up millions of per-affiliate-day rows on every page view.
    "report_top_affiliates": (
        """
        WITH windows (window_days, since) AS (
            SELECT days, (now() AT TIME ZONE 'UTC')::date - (days - 1)
            FROM (VALUES (30), (90), (365)) v (days)
        ),
        earned AS (
            SELECT w.window_days, c.user_id, sum(c.amount - c.clawed_back) AS earnings
            FROM commissions c
            JOIN sales s ON s.id = c.sale_id
            JOIN windows w ON (s.occurred_at AT TIME ZONE 'UTC')::date >= w.since
            WHERE c.status <> 'cancelled' AND c.cancelled_at IS NULL
              AND s.occurred_at >= now() - interval '366 days'
            GROUP BY 1, 2
        ),
        referred_sales AS (
            SELECT w.window_days, b.referred_by AS user_id, count(*) AS sales,
                   sum(s.amount - least(s.amount, s.refunded_amount + s.disputed_amount))
                       AS sales_amount
            FROM sales s
            JOIN users b ON b.id = s.buyer_id
            JOIN windows w ON (s.occurred_at AT TIME ZONE 'UTC')::date >= w.since
            WHERE s.amount IS NOT NULL AND NOT s.is_foreign_currency
              AND b.referred_by IS NOT NULL
              AND s.occurred_at >= now() - interval '366 days'
            GROUP BY 1, 2
        ),
        joined AS (
            SELECT w.window_days, r.referrer_id AS user_id, count(*) AS signups,
                   count(*) FILTER (WHERE r.status = 'completed') AS paying_referrals
            FROM referrals r
            JOIN windows w ON (r.created_at AT TIME ZONE 'UTC')::date >= w.since
            WHERE r.tier = 1 AND r.created_at >= now() - interval '366 days'
            GROUP BY 1, 2
        ),
        totals AS (
            SELECT window_days, user_id,
                   coalesce(e.earnings, 0) AS earnings,
                   coalesce(rs.sales, 0) AS sales,
                   coalesce(rs.sales_amount, 0) AS sales_amount,
                   coalesce(j.signups, 0) AS signups,
                   coalesce(j.paying_referrals, 0) AS paying_referrals
            FROM earned e
            FULL JOIN referred_sales rs USING (window_days, user_id)
            FULL JOIN joined j USING (window_days, user_id)
        ),
        ranked AS (
            SELECT *, row_number() OVER (
                PARTITION BY window_days
                ORDER BY earnings DESC, sales_amount DESC, signups DESC, user_id
            ) AS rank
            FROM totals
        )
        SELECT r.window_days, r.rank, r.user_id, u.username, r.earnings, r.sales,
               r.sales_amount, r.signups, r.paying_referrals
        FROM ranked r
        JOIN users u ON u.id = r.user_id
        WHERE r.rank <= 100
        """,
        "window_days, rank",
    ),
    # By the day each payout was made, in its status now.
    "report_daily_payouts": (
        """
        SELECT (created_at AT TIME ZONE 'UTC')::date AS day, payment_method, status,
               count(*) AS payouts, sum(amount) AS amount
        FROM payouts
        GROUP BY 1, 2, 3
        """,
        "day, payment_method, status",
    ),
    # When the views were last computed: refreshed last, in the same transaction as the
    # others, so readers (the replica's too) see the figures and their time together.
    "report_refreshed": ("SELECT 1 AS id, now() AS refreshed_at", "id"),
}


def upgrade():
    for name, (query, key) in VIEWS.items():
        op.execute(f"CREATE MATERIALIZED VIEW {name} AS {query}")
        op.execute(f"CREATE UNIQUE INDEX uq_{name} ON {name} ({key})")


def downgrade():
    for name in reversed(VIEWS):
        op.execute(f"DROP MATERIALIZED VIEW {name}")
