"""Reports over a large program: the figures read from the report views beside the same
figures computed from the base tables, in the same run, and the page's latency.

    .venv/bin/python bench/reports.py --users 1000000 --commissions 5000000
    .venv/bin/python bench/reports.py --users 20000 --commissions 100000   # a quick run

In a scratch database (``refmlm_bench_reports``; Redis: the suite's database):
  1. data: a generated network (``bench/commissions.build``), sales by every third buyer with
     three uplines spread over the last 365 days (``insert_sales``), their commissions, three
     tiers each, in one ``INSERT … SELECT`` (``bench/commissions.RAW`` over every sale;
     triggers and foreign key checks off: a scratch database), one sale in 20 half refunded,
     the buyers' tier-1 referrals completed, two clicks per sign-up on the referrer's link,
     and a payout for one affiliate in ten over the year (completed, pending, failed);
  2. ``refresh_reports`` (every view, concurrently, one transaction), twice;
  3. the figures over the last 30, 90 and 365 days: ``read_reports`` (the views) and
     ``collect(…, DIRECT_QUERIES)`` (the base tables, ``tests/report_queries.py``), checked
     equal, median and p95 of --samples runs (--direct-samples for the base tables);
  4. the page through gunicorn (``bin/run``'s two sync workers) as an admin, one client,
     --requests each: ``/admin/reports`` (30 days), ``?period=365``, the HTMX fragment, and
     the admin index beside them (what any admin page costs).
--reuse skips 1. and measures again on the data the last run left.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade
from sqlalchemy import text

from app import create_app
from app.config import sqlalchemy_url
from app.extensions import db
from app.services.reports.figures import collect, read_reports, snapshot
from app.services.reports.ranges import PRESETS, last_days
from app.services.reports.refresh import REPORT_VIEWS, refresh_reports
from bench.commissions import RAW, build, insert_sales
from bench.loadgen import pct, request_bytes, run, serve
from bench.tree import log_in
from tests.report_queries import DIRECT_QUERIES
from tests.services_under_test import (
    namespaced,
    recreate_database,
    redis_url_for_tests,
    server_urls,
    with_database,
)

DATABASE = "refmlm_bench_reports"
TIERS = 3  # commissions per sale: buyers have three uplines
DATA = [
    # One sale in 20 half refunded (the commissions keep their amounts: only time is measured).
    "UPDATE sales SET refunded_amount = round(amount / 2, 2) WHERE substr(id, 2)::int % 20 = 0",
    """UPDATE referrals SET status = 'completed'
       WHERE tier = 1 AND referred_user_id IN (SELECT buyer_id FROM sales)""",
    """INSERT INTO referral_clicks (referrer_id, visitor_hash, user_agent, clicked_on)
       SELECT r.referrer_id, r.id || '-' || k, 'bench', (r.created_at AT TIME ZONE 'UTC')::date - k
       FROM referrals r CROSS JOIN generate_series(0, 1) k WHERE r.tier = 1""",
    """INSERT INTO payouts (id, user_id, amount, payment_method, status, completed_at,
                           failed_at, failure_reason, period, created_at, updated_at)
       SELECT 'bp' || m, user_id, 50 + m % 200,
              CASE WHEN m % 3 = 0 THEN 'lemon_squeezy' ELSE 'stripe' END,
              CASE m % 10 WHEN 0 THEN 'failed' WHEN 1 THEN 'pending' ELSE 'completed' END,
              CASE WHEN m % 10 > 1 THEN at END, CASE WHEN m % 10 = 0 THEN at END,
              CASE WHEN m % 10 = 0 THEN 'bench' END, 'bench', at, at
       FROM (SELECT n / 10 AS m, user_id, now() - (n / 10 % 365) * interval '1 day' AS at
             FROM (SELECT row_number() OVER (ORDER BY referrer_id) AS n, referrer_id AS user_id
                   FROM (SELECT DISTINCT referrer_id FROM referrals WHERE tier = 1) r) x
             WHERE n % 10 = 0) y""",
]


def generate(app, users: int, commissions: int) -> str:
    """The program's data; returns an admin's email (a generated user made admin)."""
    buyers = build(app, users)[::3]
    sale_ids = insert_sales(app, buyers, -(-commissions // TIERS), "s", days=365)
    with app.app_context():
        db.session.execute(text("SET LOCAL session_replication_role = replica"))
        db.session.execute(RAW, {"ids": sale_ids})
        for statement in DATA:
            db.session.execute(text(statement))
        email = db.session.scalar(
            text("UPDATE users SET is_admin = true WHERE id = 'gen1' RETURNING email")
        )
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    return email


def _count(table: str) -> int:
    return db.session.scalar(text(f"SELECT count(*) FROM {table}"))


def timed(work: Callable[[], object], samples: int) -> list[float]:
    """Milliseconds of each of ``samples`` runs."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=100)[94] if len(times) > 1 else times[0]


def figures(samples: int, direct_samples: int) -> None:
    print("| figures over | views: median / p95 ms | base tables: median / p95 ms | ratio |")
    print("|---|---|---|---|")
    for days in PRESETS:
        chosen = last_days(days)
        ours = read_reports(chosen)

        def direct(chosen=chosen):
            with snapshot(db.engine) as conn:
                return collect(conn, chosen, DIRECT_QUERIES)

        assert replace(direct(), freshness=ours.freshness) == ours, days
        views = timed(lambda chosen=chosen: read_reports(chosen), samples)
        base = timed(direct, direct_samples)
        ratio = statistics.median(base) / statistics.median(views)
        print(
            f"| last {days} days | {statistics.median(views):.1f} / {_p95(views):.1f} | "
            f"{statistics.median(base):,.0f} / {_p95(base):,.0f} | **{ratio:,.0f}x** |",
            flush=True,
        )


def page(env: dict[str, str], email: str, requests: int) -> None:
    server = serve(env, "bench.tree_server:app")
    try:
        cookie = log_in(email)
        routes = {
            "the admin index (the floor: sign-in check, layout, no report)": request_bytes(
                "/admin/", cookie
            ),
            "page, last 30 days": request_bytes("/admin/reports", cookie),
            "page, last 365 days (by week)": request_bytes("/admin/reports?period=365", cookie),
            "fragment (HTMX), last 90 days": request_bytes(
                "/admin/reports?period=90", cookie, {"HX-Request": "true"}
            ),
        }
        print("| route | p50 ms | p95 ms |")
        print("|---|---|---|")
        for name, raw in routes.items():
            run([raw], 1, None, 20)  # warm-up
            latency, _ = run([raw], 1, None, requests)
            print(f"| {name} | {pct(latency, 50):.1f} | {pct(latency, 95):.1f} |", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--commissions", type=int, default=5_000_000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--direct-samples", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--reuse", action="store_true", help="the last run's data, kept")
    args = parser.parse_args()
    server_url, redis_server = server_urls()
    redis_url = redis_url_for_tests(redis_server)
    if args.reuse:
        url = sqlalchemy_url(with_database(server_url, namespaced(DATABASE)))
    else:
        url = recreate_database(server_url, DATABASE)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url})
    started = time.perf_counter()
    with app.app_context():
        upgrade()
    if args.reuse:
        with app.app_context():
            email = db.session.scalar(text("SELECT email FROM users WHERE id = 'gen1'"))
    else:
        email = generate(app, args.users, args.commissions)
    built = time.perf_counter() - started
    with app.app_context():
        tables = ("users", "sales", "commissions", "referral_clicks", "payouts")
        counts = ", ".join(f"{_count(t):,} {t}" for t in tables)
        print(f"<!-- built in {built:.0f} s: {counts}; load {os.getloadavg()[0]:.1f} -->")
        refreshes = []
        for _ in range(2):
            refreshes += timed(lambda: (refresh_reports(), db.session.commit()), 1)
        sizes = db.session.execute(
            text("SELECT sum(pg_total_relation_size(v)) FROM unnest(CAST(:views AS regclass[])) v"),
            {"views": list(REPORT_VIEWS)},
        ).scalar_one()
        print(
            f"<!-- refresh_reports: {refreshes[0] / 1000:.1f} s, again {refreshes[1] / 1000:.1f}"
            f" s; the views take {sizes / 2**20:.1f} MiB -->",
            flush=True,
        )
        figures(args.samples, args.direct_samples)
    env = {
        **os.environ,
        "DATABASE_URL": url.replace("+psycopg", ""),
        "REDIS_URL": redis_url,
        "RATELIMIT_ENABLED": "false",
    }
    page(env, email, args.requests)
    print(f"<!-- load average at the end {os.getloadavg()[0]:.1f} -->")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
