"""The commission engine under volume: accrual core, webhook endpoint, end to end.

    .venv/bin/python bench/commissions.py --sales 100000

In a scratch database with a generated network (buyers at least three levels deep):
  1. accrual core: ``accrue_sales`` over N sales in batches of 500 (commissions, their
     ledger entries, referral completion, ``accrued_at``), beside a raw ``INSERT … SELECT``
     of the same commission rows, same batches, same run;
  2. webhook endpoint: signed Stripe ``checkout.session.completed`` events (all distinct)
     posted to gunicorn (``bin/run``'s two sync workers) beside a hello-world route on the
     same server, 4 clients;
  3. end to end: N sales posted through the endpoint while two RQ workers (in-process
     ``simple`` class) drain them; sales/s from the first post to the last commission.
Loopback only; bounded by --sales and --seconds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from app.extensions import db
from app.services.accounts import accounts
from app.services.accounts.passwords import hash_password
from app.services.money.commissions import accrue_sales
from app.services.network.network_generator import generate_network
from bench.loadgen import ROOT, pct, post_bytes, request_bytes, rss_mb, run, serve, workers_rss
from bench.scratch import migrated_app
from tests.services_under_test import recreate_database, server_urls
from tests.signing import STRIPE_SECRET, stripe_checkout, stripe_event, stripe_headers

BATCH = 500
RAW = text(
    """
    INSERT INTO commissions (id, user_id, referral_id, sale_id, tier, rate, base_amount,
                             gross_amount, amount, status, payable_at)
    SELECT new_id(), r.referrer_id, r.id, s.id, r.tier, t.commission_rate, s.amount,
           round(s.amount * t.commission_rate, 2), round(s.amount * t.commission_rate, 2),
           'pending', s.occurred_at + interval '30 days'
    FROM sales s
    JOIN referrals r ON r.referred_user_id = s.buyer_id AND r.tier <= 3
    JOIN mlm_tiers t ON t.level = r.tier AND t.is_active
    WHERE s.id = ANY(:ids)
    """
)


def build(app, users: int) -> list[str]:
    """A generated network; returns buyers with three uplines."""
    with app.app_context():
        password_hash = hash_password("bench")
        accounts.hash_password = lambda _password: password_hash
        root = accounts.create_user(username="root", email="root@example.com", password="x")
        generate_network(users, attach_to=root)
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        buyers = list(
            db.session.scalars(
                text("SELECT referred_user_id FROM referrals WHERE tier = 3 ORDER BY 1")
            )
        )
        db.session.commit()
    return buyers


def insert_sales(app, buyers: list[str], n: int, prefix: str, days: int = 1) -> list[str]:
    """N sales (10.00-99.99 USD) by ``buyers`` in turn, made yesterday (or spread evenly over
    the ``days`` days up to yesterday)."""
    with app.app_context():
        raw = db.session.connection().connection.driver_connection
        at = datetime.now(UTC) - timedelta(days=1)
        with (
            raw.cursor() as cursor,
            cursor.copy(
                "COPY sales (id, provider, external_id, buyer_id, amount, currency, occurred_at) "
                "FROM STDIN"
            ) as copy,
        ):
            for i in range(n):
                buyer, amount = buyers[i % len(buyers)], Decimal(1000 + i % 9000) / 100
                day = at - timedelta(days=i % days)
                copy.write_row(
                    (f"{prefix}{i}", "stripe", f"pi_{prefix}{i}", buyer, amount, "USD", day)
                )
        db.session.commit()
        db.session.execute(text("ANALYZE sales"))
        db.session.commit()
    return [f"{prefix}{i}" for i in range(n)]


def time_batches(app, sale_ids: list[str], work) -> float:
    started = time.perf_counter()
    with app.app_context():
        for i in range(0, len(sale_ids), BATCH):
            work(sale_ids[i : i + BATCH])
            db.session.commit()
    return time.perf_counter() - started


def _raw_insert(app, sale_ids: list[str], triggers: bool) -> tuple[int, float]:
    """The raw ``INSERT … SELECT`` of the commission rows, with the table's triggers (all
    statement-level now) or none; the rows are removed after."""
    with app.app_context():
        if not triggers:
            db.session.execute(text("ALTER TABLE commissions DISABLE TRIGGER USER"))
            db.session.commit()
    seconds = time_batches(app, sale_ids, lambda ids: db.session.execute(RAW, {"ids": ids}))
    with app.app_context():
        rows = db.session.scalar(text("SELECT count(*) FROM commissions"))
        db.session.execute(text("ALTER TABLE commissions ENABLE TRIGGER USER"))
        db.session.execute(text("TRUNCATE commissions, branch_earnings, mail_notices CASCADE"))
        db.session.commit()
    return rows, seconds


def accrual_core(app, buyers: list[str], n: int) -> None:
    sale_ids = insert_sales(app, buyers, n, "s")
    rows, raw = _raw_insert(app, sale_ids, triggers=False)
    _, raw_triggers = _raw_insert(app, sale_ids, triggers=True)
    print(
        f"| raw INSERT … SELECT with the statement-level triggers on commissions (branch "
        f"earnings, mail notices) | {raw:.1f} s ({rows / raw:,.0f} rows/s) | {raw_triggers:.1f}"
        f" s ({rows / raw_triggers:,.0f} rows/s) | {raw / raw_triggers:.2f} |",
        flush=True,
    )
    ours = time_batches(app, sale_ids, accrue_sales)
    with app.app_context():
        assert db.session.scalar(text("SELECT count(*) FROM commissions")) == rows
        assert db.session.scalar(text("SELECT count(*) FROM ledger_entries")) == rows
    print(
        f"| accrual core, {n:,} sales x 3 tiers ({rows:,} commissions) | raw INSERT … SELECT, "
        "no triggers "
        f"{raw:.1f} s ({rows / raw:,.0f} rows/s) | accrue_sales {ours:.1f} s "
        f"({rows / ours:,.0f} rows/s) | {raw / ours:.2f} |",
        flush=True,
    )


def webhook_bodies(buyers: list[str], n: int, prefix: str, path: str) -> list[bytes]:
    bodies = []
    for i in range(n):
        checkout = stripe_checkout(buyers[i % len(buyers)], 1000 + i % 9000, f"pi_{prefix}{i}")
        body = stripe_event("checkout.session.completed", checkout, event_id=f"evt_{prefix}{i}")
        bodies.append(post_bytes(path, body, stripe_headers(body)))
    return bodies


def _rate(requests: list[bytes], seconds: float) -> tuple[float, list[float]]:
    latency, elapsed = run(requests, 4, seconds, None)
    return len(latency) / elapsed, latency


def endpoint_against_hello(buyers: list[str], seconds: float) -> None:
    hello = [request_bytes("/bench/hello", "")]
    run(hello, 4, None, 200)
    hello_rps, hello_latency = _rate(hello, seconds)
    bare_rps, bare_latency = _rate(webhook_bodies(buyers, 60_000, "b", "/bare/webhook"), seconds)
    hook_rps, latency = _rate(webhook_bodies(buyers, 60_000, "w", "/webhooks/stripe"), seconds)
    print(
        f"| webhook endpoint, 4 clients, {seconds:.0f} s each (hello-world {hello_rps:,.0f} "
        f"req/s, p50 {pct(hello_latency, 50):.1f} ms) | bare signed insert {bare_rps:,.0f} "
        f"req/s, p50 {pct(bare_latency, 50):.1f} ms ({bare_rps / hello_rps:.2f}x hello) "
        f"| /webhooks/stripe {hook_rps:,.0f} req/s, p50 {pct(latency, 50):.1f} ms, p95 "
        f"{pct(latency, 95):.1f} ms ({hook_rps / hello_rps:.2f}x hello) "
        f"| {hook_rps / bare_rps:.2f} |",
        flush=True,
    )


# Events are signed just before their chunk is posted: Stripe's signatures are good for
# 300 s, less than posting 100,000 takes on a slow machine.
CHUNK = 5_000


def end_to_end(app, env: dict[str, str], buyers: list[str], n: int) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "worker.py"], cwd=ROOT, env={**env, "RQ_WORKER_CLASS": "simple"}
        )
        for _ in range(2)
    ]
    try:
        started = time.perf_counter()
        latency, posted = [], 0.0
        for first in range(0, n, CHUNK):
            count = min(CHUNK, n - first)
            bodies = webhook_bodies(buyers, count, f"e{first}_", "/webhooks/stripe")
            chunk_latency, chunk_posted = run(bodies, 4, None, count)
            latency += chunk_latency
            posted += chunk_posted
        last_post = time.perf_counter()
        with app.app_context():
            deadline = time.perf_counter() + 600
            while time.perf_counter() < deadline:
                left = db.session.scalar(
                    text("SELECT count(*) FROM webhook_events WHERE processed_at IS NULL")
                )
                db.session.commit()
                if left == 0:
                    break
                time.sleep(0.1)
            total = time.perf_counter() - started
            lag = time.perf_counter() - last_post
            sales = db.session.scalar(
                text("SELECT count(*) FROM sales WHERE external_id LIKE 'pi_e%'")
            )
            made = db.session.scalar(
                text(
                    "SELECT count(*) FROM commissions c JOIN sales s ON s.id = c.sale_id "
                    "WHERE s.external_id LIKE 'pi_e%'"
                )
            )
        worker_rss = [rss_mb(worker.pid) for worker in workers]
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=120)  # a drain job in flight finishes first (60 s budget)
    print(
        f"| end to end, {n:,} sales through the endpoint and 2 workers | posted in "
        f"{posted:.0f} s ({n / posted:,.0f} req/s, p95 {pct(latency, 95):.1f} ms) | all "
        f"{sales:,} sales accrued ({made:,} commissions) {total:.0f} s after the first post: "
        f"{sales / total:,.0f} sales/s; backlog empty {lag:.1f} s after the last post | |",
        flush=True,
    )
    print(f"<!-- RQ workers' RSS after the run: {', '.join(f'{r:.0f} MB' for r in worker_rss)} -->")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sales", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=("accrual", "endpoint", "e2e"),
        default=["accrual", "endpoint", "e2e"],
    )
    args = parser.parse_args()
    server_url, redis_url = server_urls()
    url = recreate_database(server_url, "refmlm_bench")
    app = migrated_app(url, redis_url)
    buyers = build(app, args.users)
    print(f"<!-- {args.users:,} users, {len(buyers):,} possible buyers at depth ≥ 3 -->")
    print("| what | least the machine must do | ours | ratio |")
    print("|---|---|---|---|")
    if "accrual" in args.parts:
        accrual_core(app, buyers, args.sales)
    if parts := set(args.parts) & {"endpoint", "e2e"}:
        web_parts(app, url, redis_url, buyers, args, parts)
    return 0


def web_parts(app, url: str, redis_url: str, buyers: list[str], args, parts: set[str]) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": url.replace("+psycopg", ""),
        "REDIS_URL": redis_url,
        "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "RATELIMIT_ENABLED": "false",
    }
    with app.app_context():
        app.extensions["redis"].flushdb()
    server = serve(env, "bench.tree_server:app")
    try:
        if "endpoint" in parts:
            endpoint_against_hello(buyers, args.seconds)
            with app.app_context():
                app.extensions["redis"].flushdb()  # the endpoint run's drain requests
                db.session.execute(text("UPDATE webhook_events SET processed_at = now()"))
                db.session.commit()
        if "e2e" in parts:
            end_to_end(app, env, buyers, args.sales)
        rss = ", ".join(f"{r:.0f} MB" for _, r in workers_rss(server.pid))
        print(f"<!-- web workers' RSS after the run: {rss} -->")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    raise SystemExit(main())
