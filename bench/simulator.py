"""The what-if simulator over 100,000 sales (issue 12: it must answer in under a second).

    .venv/bin/python bench/simulator.py --sales 100000 [--history 300000]

In a scratch database with a generated network (buyers at least three levels deep), N sales
of the last day accrued through ``accrue_sales``; then ``simulate`` with draft rates (tier 3
raised, a fourth tier's rate, max tier 3) over the 30- and 90-day windows, timed several
times each, beside the least the database must do: one ``SELECT`` summing the window's
commissions by tier. ``--history`` adds older sales (92 to 791 days ago) with their
commissions, written directly as ``bench/reports.py`` does, outside both windows; the
windows are then timed again without the indexes that read them (migration 0019). The load
average is printed with each row (the machine may be shared). Loopback only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from app.extensions import db
from app.services.money.commissions import accrue_sales
from app.services.program.simulator import simulate
from bench.commissions import RAW, build, insert_sales, time_batches
from bench.scratch import migrated_app
from tests.services_under_test import recreate_database, server_urls

WINDOW_INDEXES = ("ix_sales_occurred_at", "ix_commissions_payable_at")
DRAFT = {1: Decimal("0.10"), 2: Decimal("0.05"), 3: Decimal("0.04"), 4: Decimal("0.01")}
LEAST = text(
    """
    SELECT c.tier, sum(c.gross_amount) FROM commissions c JOIN sales s ON s.id = c.sale_id
    WHERE s.occurred_at >= now() - make_interval(days => :days) GROUP BY c.tier
    """
)


def timed(work, samples: int) -> tuple[float, float]:
    """Median and worst of ``samples`` runs, in ms."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
        db.session.rollback()
    return statistics.median(times), max(times)


def add_history(app, buyers: list[str], n: int) -> None:
    """N older sales, outside both windows, with their commissions (no ledger entries)."""
    sale_ids = insert_sales(app, buyers, n, "h", days=700)
    with app.app_context():
        db.session.execute(text("SET LOCAL session_replication_role = replica"))
        db.session.execute(
            text(
                "UPDATE sales SET occurred_at = occurred_at - interval '91 days' WHERE id LIKE 'h%'"
            )
        )
        db.session.execute(RAW, {"ids": sale_ids})
        db.session.commit()


def measure(label: str, samples: int) -> None:
    for days in (30, 90):
        least = timed(lambda d=days: db.session.execute(LEAST, {"days": d}).all(), samples)
        ours = timed(lambda d=days: simulate(DRAFT, 3, d), samples)
        load = " / ".join(f"{figure:.1f}" for figure in os.getloadavg())
        print(
            f"| {days} days{label} | {least[0]:.0f} / {least[1]:.0f} | "
            f"{ours[0]:.0f} / {ours[1]:.0f} | {ours[0] / least[0]:.1f}x | {load} |",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sales", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=0)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=7)
    args = parser.parse_args()
    server_url, redis_url = server_urls()
    app = migrated_app(recreate_database(server_url, "refmlm_bench_simulator"), redis_url)
    buyers = build(app, args.users)
    sale_ids = insert_sales(app, buyers, args.sales, "s")
    accrued = time_batches(app, sale_ids, accrue_sales)
    if args.history:
        add_history(app, buyers, args.history)
    with app.app_context():
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        sales, rows = (
            db.session.scalar(text(f"SELECT count(*) FROM {table}"))
            for table in ("sales", "commissions")
        )
        print(
            f"<!-- {args.users:,} users, {sales:,} sales, {rows:,} commissions "
            f"({args.sales:,} sales accrued in {accrued:.0f} s) -->"
        )
        print(
            "| window | least: SUM by tier, median / worst ms | simulate, median / worst ms "
            "| simulate / least | load average (1 / 5 / 15 min) |"
        )
        print("|---|---|---|---|---|")
        measure("", args.samples)
        if args.history:
            db.session.execute(text(f"DROP INDEX {', '.join(WINDOW_INDEXES)}"))
            db.session.execute(text("ANALYZE"))
            db.session.commit()
            measure(", without the window's indexes", args.samples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
