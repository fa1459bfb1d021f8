"""The reports computed straight from the base tables: what the report views must equal after
a refresh (tests/services/test_reports.py), and what bench/reports.py times them against.
Same parameters and columns as ``VIEW_QUERIES`` (app/services/reports/figures.py)."""

from __future__ import annotations

from sqlalchemy import text

from app.services.reports.figures import BUCKET, ReportQueries

_SALE_DAY = "(s.occurred_at AT TIME ZONE 'UTC')::date"
_FROM = "CAST(:start AS date)::timestamp AT TIME ZONE 'UTC'"
_UNTIL = "(CAST(:end AS date) + 1)::timestamp AT TIME ZONE 'UTC'"
_SALES_IN_RANGE = f"s.occurred_at >= {_FROM} AND s.occurred_at < {_UNTIL}"
_REFUNDED = "least(s.amount, s.refunded_amount + s.disputed_amount)"
_NET_SALE = f"s.amount - {_REFUNDED}"
_COUNTED = "c.status <> 'cancelled' AND c.cancelled_at IS NULL"
_WINDOW = (
    "((now() AT TIME ZONE 'UTC')::date - (CAST(:window_days AS int) - 1))::timestamp "
    "AT TIME ZONE 'UTC'"
)

DIRECT_QUERIES = ReportQueries(
    refreshed=text("SELECT now()"),
    sales=text(
        f"""
        SELECT {BUCKET.format(day=_SALE_DAY)} AS bucket,
               count(*) FILTER (WHERE NOT s.is_foreign_currency),
               coalesce(sum(s.amount) FILTER (WHERE NOT s.is_foreign_currency), 0),
               coalesce(sum({_REFUNDED}) FILTER (WHERE NOT s.is_foreign_currency), 0),
               count(*) FILTER (WHERE s.is_foreign_currency)
        FROM sales s
        WHERE s.amount IS NOT NULL AND {_SALES_IN_RANGE}
        GROUP BY 1
        """
    ),
    commissions=text(
        f"""
        SELECT {BUCKET.format(day=_SALE_DAY)} AS bucket, c.tier, sum(c.gross_amount),
               sum(c.amount - c.clawed_back)
        FROM commissions c JOIN sales s ON s.id = c.sale_id
        WHERE {_COUNTED} AND {_SALES_IN_RANGE}
        GROUP BY 1, 2
        """
    ),
    funnel=text(
        f"""
        WITH signed AS (
            SELECT r.referrer_id, u.signup_ip_hash AS visitor_hash,
                   max(r.created_at) AS last_signup
            FROM referrals r JOIN users u ON u.id = r.referred_user_id
            WHERE r.tier = 1 AND u.signup_ip_hash IS NOT NULL
            GROUP BY 1, 2
        ),
        clicks AS (
            SELECT {BUCKET.format(day="clicked_on")} AS bucket, count(*) AS clicks,
                   count(*) FILTER (
                       WHERE g.last_signup >= k.clicked_on::timestamp AT TIME ZONE 'UTC'
                   ) AS signed_up
            FROM (SELECT referrer_id, visitor_hash, clicked_on FROM referral_clicks
                  WHERE clicked_on BETWEEN :start AND :end
                  UNION ALL
                  SELECT referrer_id, visitor_hash, clicked_on FROM referral_clicks_archive
                  WHERE clicked_on BETWEEN :start AND :end) k
            LEFT JOIN signed g
              ON g.referrer_id = k.referrer_id AND g.visitor_hash = k.visitor_hash
            GROUP BY 1
        ),
        signups AS (
            SELECT {BUCKET.format(day="(created_at AT TIME ZONE 'UTC')::date")} AS bucket,
                   count(*) AS signups, count(*) FILTER (WHERE status = 'completed') AS paying
            FROM referrals
            WHERE tier = 1 AND created_at >= {_FROM} AND created_at < {_UNTIL}
            GROUP BY 1
        )
        SELECT coalesce(k.bucket, s.bucket), coalesce(k.clicks, 0), coalesce(s.signups, 0),
               coalesce(s.paying, 0), coalesce(k.signed_up, 0)
        FROM clicks k FULL JOIN signups s ON s.bucket = k.bucket
        """
    ),
    top_affiliates=text(
        f"""
        WITH earned AS (
            SELECT c.user_id, sum(c.amount - c.clawed_back) AS earnings
            FROM commissions c JOIN sales s ON s.id = c.sale_id
            WHERE {_COUNTED} AND s.occurred_at >= {_WINDOW}
            GROUP BY 1
        ),
        referred AS (
            SELECT b.referred_by AS user_id, count(*) AS sales, sum({_NET_SALE}) AS amount
            FROM sales s JOIN users b ON b.id = s.buyer_id
            WHERE s.amount IS NOT NULL AND NOT s.is_foreign_currency
              AND b.referred_by IS NOT NULL AND s.occurred_at >= {_WINDOW}
            GROUP BY 1
        ),
        joined AS (
            SELECT referrer_id AS user_id, count(*) AS signups,
                   count(*) FILTER (WHERE status = 'completed') AS paying
            FROM referrals
            WHERE tier = 1 AND created_at >= {_WINDOW}
            GROUP BY 1
        ),
        totals AS (
            SELECT user_id, coalesce(e.earnings, 0) AS earnings, coalesce(r.sales, 0) AS sales,
                   coalesce(r.amount, 0) AS amount, coalesce(j.signups, 0) AS signups,
                   coalesce(j.paying, 0) AS paying
            FROM earned e FULL JOIN referred r USING (user_id) FULL JOIN joined j USING (user_id)
        )
        SELECT row_number() OVER (ORDER BY earnings DESC, amount DESC, signups DESC, user_id),
               user_id, u.username, earnings, sales, amount, signups, paying
        FROM totals JOIN users u ON u.id = totals.user_id
        ORDER BY 1 LIMIT :limit
        """
    ),
    payouts=text(
        f"""
        SELECT {BUCKET.format(day="(created_at AT TIME ZONE 'UTC')::date")} AS bucket,
               payment_method, status, count(*), sum(amount)
        FROM payouts
        WHERE created_at >= {_FROM} AND created_at < {_UNTIL}
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """
    ),
)
