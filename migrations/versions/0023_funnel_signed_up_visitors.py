"""report_daily_funnel: visitors who signed up, beside clicks, so the visit rate is one
population (never above 100 %)

Revision ID: 0023_funnel_signed_up_visitors
Revises: 0022_mail_preferences

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0023_funnel_signed_up_visitors"
down_revision = "0022_mail_preferences"
branch_labels = None
depends_on = None

# Clicks: unique visitors per link per day, archived ones included; of them, the visitors who
# signed up through that link (a tier-1 referral of the link's owner whose sign-up IP hash is
# the visitor's) that day or later. Sign-ups (tier-1 referrals by the day they joined, a typed
# code or a visit days before included) and paying ones as before: sign-ups ÷ clicks is not a
# rate of one population and could exceed 100 %.
FUNNEL = """
    WITH visits AS (
        SELECT referrer_id, visitor_hash, clicked_on FROM referral_clicks
        UNION ALL
        SELECT referrer_id, visitor_hash, clicked_on FROM referral_clicks_archive
    ),
    -- Each (link, visitor)'s last tier-1 sign-up day, once: a hash join, not a lookup per click.
    signed AS (
        SELECT r.referrer_id, u.signup_ip_hash AS visitor_hash,
               max((r.created_at AT TIME ZONE 'UTC')::date) AS last_signup
        FROM referrals r JOIN users u ON u.id = r.referred_user_id
        WHERE r.tier = 1 AND u.signup_ip_hash IS NOT NULL
        GROUP BY 1, 2
    ),
    clicks AS (
        SELECT v.clicked_on AS day, count(*) AS clicks,
               count(*) FILTER (WHERE g.last_signup >= v.clicked_on) AS signed_up_visitors
        FROM visits v
        LEFT JOIN signed g ON g.referrer_id = v.referrer_id AND g.visitor_hash = v.visitor_hash
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
           coalesce(s.paying_referrals, 0) AS paying_referrals,
           coalesce(k.signed_up_visitors, 0) AS signed_up_visitors
    FROM clicks k
    FULL JOIN signups s ON s.day = k.day
"""

OLD_FUNNEL = """
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
"""


def _replace(query: str) -> None:
    op.execute("DROP MATERIALIZED VIEW report_daily_funnel")
    op.execute(f"CREATE MATERIALIZED VIEW report_daily_funnel AS {query}")
    op.execute("CREATE UNIQUE INDEX uq_report_daily_funnel ON report_daily_funnel (day)")


def upgrade():
    _replace(FUNNEL)


def downgrade():
    _replace(OLD_FUNNEL)
