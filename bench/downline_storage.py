"""How to store the downline, by measurement: each candidate beside the one chosen.

    .venv/bin/python bench/downline_storage.py [--ltree]

Runs on the network ``bench/tree.py`` built last (1M users by default; the database is kept).
Times, over the same sample of nodes, median of --repeat runs each:
  - subtree size: recursive CTE over ``referred_by`` vs the trigger-kept ``downline_counts``;
  - visible downline (tiers 1-3): counting referral rows vs summing ``downline_counts``;
  - access check for deep nodes: walking ``referred_by`` up vs the referral row (tiers <= max);
  - a page of a hub's children deep in the list: OFFSET vs keyset;
  - registration under a deep and a shallow referrer (trigger cost grows with depth only);
  - optional ``--ltree``: a materialized ``ltree`` path with a GiST index (build time, size,
    subtree count), the other common design.
Loopback only; bounded by --repeat.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.services_under_test import server_urls, with_database

RECURSIVE_SIZE = """
WITH RECURSIVE down (id, depth) AS (
    SELECT id, 1 FROM users WHERE referred_by = %(id)s
    UNION ALL
    SELECT u.id, down.depth + 1 FROM down JOIN users u ON u.referred_by = down.id
    WHERE down.depth < %(depth)s
) SELECT count(*) FROM down
"""
COUNTED_SIZE = (
    "SELECT coalesce(sum(members), 0) FROM downline_counts WHERE user_id = %(id)s "
    "AND depth <= %(depth)s"
)
REFERRAL_ROWS = "SELECT count(*) FROM referrals WHERE referrer_id = %(id)s AND tier <= 3"
WALK_UP = """
WITH RECURSIVE up (id, parent, steps) AS (
    SELECT id, referred_by, 0 FROM users WHERE id = %(node)s
    UNION ALL
    SELECT u.id, u.referred_by, up.steps + 1 FROM up JOIN users u ON u.id = up.parent
    WHERE up.id <> %(root)s
) SELECT count(*) FROM up
"""
REFERRAL_ROW = (
    "SELECT 1 FROM referrals WHERE referred_user_id = %(node)s AND referrer_id = %(root)s "
    "AND tier <= 3"
)
OFFSET_PAGE = (
    "SELECT id FROM users WHERE referred_by = %(id)s ORDER BY created_at, id "
    "OFFSET %(offset)s LIMIT 50"
)
KEYSET_PAGE = (
    "SELECT id FROM users WHERE referred_by = %(id)s AND (created_at, id) > "
    "(SELECT created_at, id FROM users WHERE id = %(after)s) ORDER BY created_at, id LIMIT 50"
)


def timed(conn, sql: str, params: list[dict], repeat: int) -> float:
    """Median ms over the params, each run ``repeat`` times (after one warm-up)."""
    for p in params:
        conn.execute(sql, p).fetchall()
    samples = []
    for _ in range(repeat):
        for p in params:
            started = time.perf_counter()
            conn.execute(sql, p).fetchall()
            samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ltree", action="store_true")
    args = parser.parse_args()
    url = with_database(server_urls()[0], "refmlm_bench")
    with psycopg.connect(url, autocommit=True) as conn:
        users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
        alice = conn.execute("SELECT id FROM users WHERE username = 'alice'").fetchone()[0]
        tops = [alice, "gen0", "gen1", "gen2"]
        deep = [
            r[0]
            for r in conn.execute(
                # gen30 sits 27 levels below gen0 on the generator's long line.
                "SELECT referred_user_id FROM referrals WHERE referrer_id = 'gen30' AND tier = 2 "
                "LIMIT 20"
            )
        ]
        hub_children = conn.execute(
            "SELECT id FROM users WHERE referred_by = 'gen1' ORDER BY created_at, id "
            "OFFSET 5000 LIMIT 1"
        ).fetchone()
        rows = []

        def row(what: str, candidate: str, candidate_ms: float, chosen: str, chosen_ms: float):
            rows.append(
                f"| {what} | {candidate} | {candidate_ms:.2f} | {chosen} | {chosen_ms:.3f} |"
            )

        sizes = [{"id": t, "depth": 32767} for t in tops]
        row(
            "whole subtree size (alice, gen0-gen2)",
            "recursive CTE",
            timed(conn, RECURSIVE_SIZE, sizes, 1),
            "sum of downline_counts",
            timed(conn, COUNTED_SIZE, sizes, args.repeat),
        )
        visible = [{"id": t, "depth": 3} for t in tops]
        row(
            "visible downline, tiers 1-3",
            "count referral rows",
            timed(conn, REFERRAL_ROWS, visible, args.repeat),
            "sum of downline_counts",
            timed(conn, COUNTED_SIZE, visible, args.repeat),
        )
        checks = [{"node": n, "root": "gen0"} for n in deep] if deep else []
        if checks:
            row(
                "access check, node 29 levels below the root",
                "referral row (tiers <= max only)",
                timed(conn, REFERRAL_ROW, checks, args.repeat),
                "walk up referred_by",
                timed(conn, WALK_UP, checks, args.repeat),
            )
        if hub_children:
            row(
                "children page 101 of a hub",
                "OFFSET 5000",
                timed(conn, OFFSET_PAGE, [{"id": "gen1", "offset": 5000}], args.repeat),
                "keyset",
                timed(conn, KEYSET_PAGE, [{"id": "gen1", "after": hub_children[0]}], args.repeat),
            )
        if args.ltree:
            rows.extend(ltree_rows(conn, tops, args.repeat))
        print(f"Network: {users:,} users.\n")
        print("| question | candidate | ms | chosen | ms |")
        print("|---|---|---|---|---|")
        print("\n".join(rows))
    return 0


def ltree_rows(conn, tops: list[str], repeat: int) -> list[str]:
    conn.execute("CREATE EXTENSION IF NOT EXISTS ltree")
    conn.execute("DROP TABLE IF EXISTS bench_paths")
    started = time.perf_counter()
    conn.execute(
        """
        CREATE TABLE bench_paths AS
        WITH RECURSIVE t (id, path) AS (
            SELECT id, text2ltree(id) FROM users WHERE referred_by IS NULL
            UNION ALL
            SELECT u.id, t.path || text2ltree(u.id) FROM t JOIN users u ON u.referred_by = t.id
        ) SELECT id, path FROM t
        """
    )
    conn.execute("CREATE INDEX bench_paths_gist ON bench_paths USING gist (path)")
    conn.execute("ANALYZE bench_paths")
    built = time.perf_counter() - started
    size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('bench_paths'))").fetchone()[
        0
    ]
    count_sql = (
        "SELECT count(*) FROM bench_paths WHERE path <@ "
        "(SELECT path FROM bench_paths WHERE id = %(id)s)"
    )
    ms = timed(conn, count_sql, [{"id": t} for t in tops], 1)
    conn.execute("DROP TABLE bench_paths")
    return [
        f"| whole subtree size | ltree path + GiST (built in {built:.0f} s, {size}) | {ms:.2f} "
        "| sum of downline_counts | see above |"
    ]


if __name__ == "__main__":
    raise SystemExit(main())
