"""users: downline counts kept by a statement-level trigger over the inserted rows

Revision ID: 0026_users_statement_triggers
Revises: 0025_commission_rollups

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0026_users_statement_triggers"
down_revision = "0025_commission_rollups"
branch_labels = None
depends_on = None

# Once per inserting statement (a registration, a batch INSERT, COPY): walk up from every new
# user at once, count the members each upline gains per distance, and upsert one row per
# (upline, distance) in key order, so concurrent statements lock the counters in the same order
# and cannot deadlock. Users inserted by the same statement see one another (an AFTER trigger
# runs once the statement's rows are all in), so a chain inserted in one statement is counted
# as if its rows came one by one. The trigger keeps its name: the network generator disables
# it by name while it writes the counts itself.
STATEMENT_LEVEL = """
CREATE OR REPLACE FUNCTION count_in_uplines() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO downline_counts (user_id, depth, members)
    WITH RECURSIVE up (id, depth) AS (
        SELECT referred_by, 1 FROM new_users WHERE referred_by IS NOT NULL
        UNION ALL
        SELECT u.referred_by, up.depth + 1
        FROM up JOIN users u ON u.id = up.id
        WHERE u.referred_by IS NOT NULL
    )
    SELECT id, depth, count(*) FROM up GROUP BY id, depth ORDER BY id, depth
    ON CONFLICT (user_id, depth)
    DO UPDATE SET members = downline_counts.members + EXCLUDED.members;
    RETURN NULL;
END $$;
CREATE TRIGGER users_downline_counts AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_users
    FOR EACH STATEMENT EXECUTE FUNCTION count_in_uplines();
"""

ROW_LEVEL = """
CREATE OR REPLACE FUNCTION count_in_uplines() RETURNS trigger LANGUAGE plpgsql AS $$
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
"""


def upgrade():
    op.execute("DROP TRIGGER users_downline_counts ON users")
    op.execute(STATEMENT_LEVEL)


def downgrade():
    op.execute("DROP TRIGGER users_downline_counts ON users")
    op.execute(ROW_LEVEL)
