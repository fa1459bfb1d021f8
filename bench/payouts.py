"""Scheduled payouts under volume, and sending them through a worker.

    .venv/bin/python bench/payouts.py --affiliates 100000 --transfers 2000

In a scratch database (``refmlm_bench_payouts``; Redis: the suite's database, TEST_REDIS_DB):
  1. generated set-based: N affiliates, each with a ready Stripe account and one payable
     commission (60.00-109.90 USD) from a buyer of their own, with its ledger entry;
  2. the scheduled run (``run_scheduled_payouts_job``: batches under ledger locks, payouts,
     ledger, audit, one job per 1,000 payouts that enqueues their sends) beside the least
     the database must do, a raw ``INSERT … SELECT`` of the same payout and ledger rows;
     then the run again (the hourly repeat: nobody is paid twice) and the workers' part,
     creating the send jobs;
  3. transfers per second: ``--transfers`` of the payouts sent by one real worker process
     (``worker.py``, ``simple`` class) against the fake Stripe run as a process, and the
     worker's peak RSS. Bounded by --seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rq.job import Job
from sqlalchemy import text

from app.extensions import db
from app.jobs.payouts import enqueue_sends_job, request_sends
from app.jobs.queueing import get_queue
from app.jobs.scheduled_payouts import run_scheduled_payouts_job
from app.providers.fake_stripe.server import DEFAULT_API_KEY
from bench.loadgen import ROOT
from bench.scratch import migrated_app
from tests.services_under_test import recreate_database, redis_url_for_tests, server_urls

BUILD = [
    """INSERT INTO users (id, username, email, password_hash, referral_code)
       SELECT 'a' || lpad(n::text, 7, '0'), 'aff' || n, 'aff' || n || '@example.com', 'x',
              'A' || n FROM generate_series(1, :n) n""",
    """INSERT INTO users (id, username, email, password_hash, referral_code, referred_by)
       SELECT 'b' || lpad(n::text, 7, '0'), 'buyer' || n, 'buyer' || n || '@example.com', 'x',
              'B' || n, 'a' || lpad(n::text, 7, '0') FROM generate_series(1, :n) n""",
    """INSERT INTO referrals (id, referrer_id, referred_user_id, tier, status)
       SELECT 'r' || n, 'a' || lpad(n::text, 7, '0'), 'b' || lpad(n::text, 7, '0'), 1,
              'completed' FROM generate_series(1, :n) n""",
    """INSERT INTO sales (id, provider, external_id, buyer_id, amount, currency, occurred_at,
                          accrued_at)
       SELECT 's' || n, 'manual', 'bench-' || n, 'b' || lpad(n::text, 7, '0'),
              600 + n % 500, 'USD', now() - interval '40 days', now()
       FROM generate_series(1, :n) n""",
    """INSERT INTO commissions (id, user_id, referral_id, sale_id, tier, rate, base_amount,
                                gross_amount, amount, status, payable_at)
       SELECT 'c' || n, 'a' || lpad(n::text, 7, '0'), 'r' || n, 's' || n, 1, 0.1,
              600 + n % 500, (600 + n % 500) / 10.0, (600 + n % 500) / 10.0, 'pending',
              now() - interval '10 days' FROM generate_series(1, :n) n""",
    """INSERT INTO ledger_entries (user_id, kind, amount, available_at, commission_id)
       SELECT user_id, 'accrual', amount, payable_at, id FROM commissions ORDER BY id""",
    """INSERT INTO payout_accounts (id, user_id, provider, stripe_account_id, country,
                                    payouts_enabled, transfers_active)
       SELECT 'p' || n, 'a' || lpad(n::text, 7, '0'), 'stripe', 'acct_bench' || n, 'US',
              true, true FROM generate_series(1, :n) n""",
]
# The least the database must do: the same payout rows and their ledger entries.
RAW = text(
    """
    WITH available AS (
        SELECT user_id, sum(amount) AS amount FROM ledger_entries
        WHERE available_at <= now() GROUP BY user_id
    ),
    inserted AS (
        INSERT INTO payouts (id, user_id, amount, payment_method, payout_account_id, period)
        SELECT new_id(), a.user_id, a.amount, 'stripe', p.id, 'raw'
        FROM available a JOIN payout_accounts p ON p.user_id = a.user_id
        WHERE a.amount >= 50
        RETURNING id, user_id, amount
    )
    INSERT INTO ledger_entries (user_id, kind, amount, available_at, payout_id)
    SELECT user_id, 'payout', -amount, now(), id FROM inserted
    """
)
# A scratch database only: the ledger is append-only everywhere else.
# (replica: no triggers, no foreign key checks, the append-only one included).
RESET = [
    "SET LOCAL session_replication_role = replica",
    "DELETE FROM ledger_entries WHERE payout_id IS NOT NULL",
    "DELETE FROM payouts",
]


def build(app, n: int) -> float:
    started = time.perf_counter()
    with app.app_context():
        for statement in BUILD:
            db.session.execute(text(statement), {"n": n})
        db.session.commit()
    _vacuum(app)
    return time.perf_counter() - started


def _vacuum(app) -> None:
    with app.app_context(), db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def _count(sql: str, **params: object) -> int:
    return db.session.scalar(text(sql), params)


def scheduled_run(app, n: int) -> None:
    with app.app_context():
        started = time.perf_counter()
        db.session.execute(RAW)
        db.session.commit()
        raw = time.perf_counter() - started
        rows = _count("SELECT count(*) FROM payouts")
        for statement in RESET:
            db.session.execute(text(statement))
        db.session.commit()
    _vacuum(app)
    with app.app_context():
        started = time.perf_counter()
        made = run_scheduled_payouts_job()
        ours = time.perf_counter() - started
        assert made == rows == n, (made, rows, n)
        assert _count("SELECT count(*) FROM ledger_entries WHERE kind = 'payout'") == n
        queued = get_queue().count
        started = time.perf_counter()
        assert run_scheduled_payouts_job() == 0
        repeat = time.perf_counter() - started
        ids = list(db.session.scalars(text("SELECT id FROM payouts")))
        get_queue().empty()
        started = time.perf_counter()
        enqueue_sends_job(ids)  # what the workers do for the run's batches
        redis = time.perf_counter() - started
        get_queue().empty()
    print(
        f"| scheduled run, {n:,} affiliates ({2 * n:,} users) | raw INSERT … SELECT of "
        f"payouts + ledger {raw:.1f} s ({rows / raw:,.0f} payouts/s) | run_scheduled_payouts_job "
        f"{ours:.1f} s ({made / ours:,.0f} payouts/s; incl. audit, locks, {queued:,} jobs that "
        f"enqueue the sends); hourly repeat {repeat:.1f} s; workers then create the {n:,} "
        f"send jobs in {redis:.1f} s "
        f"| {raw / ours:.2f} |",
        flush=True,
    )


def _fake(base: str, path: str, body: dict | None = None, form: dict | None = None) -> dict:
    if form is not None:
        data, kind = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
    else:
        data, kind = json.dumps(body).encode() if body is not None else None, "application/json"
    request = urllib.request.Request(  # noqa: S310 (the fake Stripe on loopback)
        base + path,
        data=data,
        headers={"Authorization": f"Bearer {DEFAULT_API_KEY}", "Content-Type": kind},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def transfers(app, env: dict[str, str], count: int, seconds: float) -> None:
    stripe = subprocess.Popen(
        [sys.executable, "-m", "app.providers.fake_stripe", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    worker = None
    try:
        base = stripe.stdout.readline().split()[-1]
        _fake(base, "/fake/balance", {"currency": "usd", "available": 10**13})
        with app.app_context():
            payouts = db.session.execute(
                text("SELECT id, payout_account_id FROM payouts ORDER BY id LIMIT :n"),
                {"n": count},
            ).all()
            for _, account_id in payouts:
                opened = _fake(base, "/v1/accounts", form={"type": "express", **_TRANSFERS})
                _fake(base, f"/fake/accounts/{opened['id']}/state", {"state": "onboarded"})
                db.session.execute(
                    text("UPDATE payout_accounts SET stripe_account_id = :s WHERE id = :id"),
                    {"s": opened["id"], "id": account_id},
                )
            # Only these are sent: the others' accounts exist nowhere at the fake, and the
            # workers' sweep would try them all (scratch database: set aside without triggers).
            db.session.execute(text("SET LOCAL session_replication_role = replica"))
            db.session.execute(
                text(
                    "UPDATE payouts SET status = 'failed', failed_at = now(), "
                    "failure_reason = 'bench: not sent', waiting_reason = NULL "
                    "WHERE status IN ('pending', 'processing') AND NOT id = ANY(:ids)"
                ),
                {"ids": [payout_id for payout_id, _ in payouts]},
            )
            get_queue().empty()
            request_sends([payout_id for payout_id, _ in payouts])
            db.session.commit()
        worker_env = {**env, "STRIPE_API_BASE": base, "STRIPE_SECRET_KEY": DEFAULT_API_KEY}
        started = time.perf_counter()
        worker = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=worker_env)
        done, deadline = 0, started + seconds
        with app.app_context():
            while time.perf_counter() < deadline:
                done = _count(
                    "SELECT count(*) FROM payouts WHERE id = ANY(:ids) "
                    "AND status NOT IN ('pending', 'processing')",
                    ids=[payout_id for payout_id, _ in payouts],
                )
                db.session.commit()
                if done >= count or (get_queue().count == 0 and done == 0 and _stalled()):
                    break
                time.sleep(0.5)
            elapsed = time.perf_counter() - started
            peak = _peak_rss_mib(worker.pid)
            failure = _first_failure([payout_id for payout_id, _ in payouts])
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=60)
        stripe.terminate()
        stripe.wait(timeout=30)
    if done == 0:
        print(f"| transfers through 1 worker | not measurable yet: {failure} | | |", flush=True)
        return
    print(
        f"| transfers, {count:,} payouts, 1 worker (`simple`) + fake Stripe process | "
        f"{done:,} sent in {elapsed:.1f} s: **{done / elapsed:,.0f} transfers/s** | worker "
        f"peak RSS {peak:.0f} MiB | |",
        flush=True,
    )


_TRANSFERS = {"capabilities[transfers][requested]": "true"}


def _stalled() -> bool:
    """Every send job has run at least once (none waiting in the queue or running)."""
    time.sleep(2)
    return get_queue().count == 0 and get_queue().started_job_registry.count == 0


def _first_failure(payout_ids: list[str]) -> str:
    """The error of a send job that failed (or waits for a retry)."""
    queue = get_queue()
    failed = queue.failed_job_registry.get_job_ids() + queue.scheduled_job_registry.get_job_ids()
    for job_id in failed[:1]:
        result = Job.fetch(job_id, connection=queue.connection).latest_result()
        if result is not None and result.exc_string:
            return result.exc_string.strip().splitlines()[-1]
    return f"none of {len(payout_ids):,} payouts sent within the time bound"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--affiliates", type=int, default=100_000)
    parser.add_argument("--transfers", type=int, default=2_000)
    parser.add_argument("--seconds", type=float, default=180.0)
    args = parser.parse_args()
    server_url, redis_server = server_urls()
    redis_url = redis_url_for_tests(redis_server)
    url = recreate_database(server_url, "refmlm_bench_payouts")
    app = migrated_app(url, redis_url)
    app.extensions["redis"].flushdb()
    built = build(app, args.affiliates)
    print(f"<!-- {args.affiliates:,} affiliates + their buyers built in {built:.0f} s -->")
    print("| what | least the machine must do | ours | ratio |")
    print("|---|---|---|---|")
    scheduled_run(app, args.affiliates)
    env = {
        **os.environ,
        "DATABASE_URL": url.replace("+psycopg", ""),
        "REDIS_URL": redis_url,
        "RQ_WORKER_CLASS": "simple",
    }
    transfers(app, env, args.transfers, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
