"""The money pages of an affiliate with a million commissions beside a newcomer's (issue 14).

    .venv/bin/python bench/money_pages.py --keep          # generate, measure, keep the data
    .venv/bin/python bench/money_pages.py --reuse         # measure again on a copy of it
    .venv/bin/python bench/money_pages.py --users 20000 --commissions 100000 \
        --top-commissions 20000 --rounds 2               # a quick run

Data (database ``bench_pages_data``), built with set-based SQL:
  1. the generated network (``generate_network``, --users) below a root account; its node
     ``gen0`` (the hubs' referrer) is the **top affiliate**;
  2. sales by the members within three tiers below the top affiliate, in turn, until the top
     affiliate has --top-commissions commissions, then sales by other buyers with three
     uplines until --commissions in all, and 10 sales by the only member of a **newcomer**
     (a generated user with one referral); sales spread over the last 450 days, amounts
     10.00-99.99;
  3. their commissions (every upline within three tiers), one ``INSERT … SELECT``. Commissions
     payable before this month, of the top affiliate and of one earner in ten, are paid by
     monthly payouts (completed, each with its ``payout`` ledger entry); one sale in 50 is
     half refunded: a paid commission is clawed back (``clawback`` entry), an unpaid one
     reduced (``reversal`` entry). Every commission has its ``accrual`` entry;
  4. triggers are off while loading (``session_replication_role = replica``), so every
     derived table is rebuilt afterwards by ``rebuild_derived``: ``branch_earnings`` here
     (set-based), and the ledger totals and commission rollups when their modules exist
     (``app.services.money.ledger_totals`` / ``commission_rollups``, ``rebuild_all()``);
     ``downline_counts`` is written by the generator.

Measured, in one run: each service query behind the pages, for both users (median of
--samples calls), and the pages through gunicorn (``bin/run``'s two sync workers,
``bench/tree_server.py``), logged in as each user: ``/dashboard``, ``/payouts``,
``/commissions`` and its HTMX list fragment, beside ``/bench/hello``: each (page, user) in
blocks of --block requests sent by --clients clients, --rounds blocks each, every round's
blocks in a shuffled order so load noise hits both users alike; p50 / p95 / req/s per page
and user. Then the RSS of each gunicorn worker
(``/proc/<pid>/status``).

--keep keeps ``bench_pages_data``; --reuse skips generation: it clones ``bench_pages_data``
into ``bench_pages_run`` (``CREATE DATABASE … TEMPLATE``), migrates the clone to head,
runs ``rebuild_derived`` (new derived tables included), measures and drops the clone.
Without either, the data is dropped at the end. Loopback only; every run is bounded.
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg import sql
from sqlalchemy import text

from app.config import sqlalchemy_url
from app.extensions import db
from app.services.accounts import accounts
from app.services.accounts.passwords import hash_password
from app.services.money.commission_listing import (
    CommissionFilters,
    commission_totals,
    list_commissions,
    monthly_earnings,
)
from app.services.money.ledger import balances, becoming_available
from app.services.network.network_generator import generate_network
from app.services.network.network_stats import network_summary
from app.services.payouts.payouts import payable_amount
from bench.loadgen import fetch, request_bytes, serve, workers_rss
from bench.scratch import migrated_app
from bench.tree import log_in
from tests.services_under_test import server_urls, with_database

DATA, RUN = "bench_pages_data", "bench_pages_run"
TOP = "gen0"
DAYS = 450  # sales spread over about 15 months
NEWCOMER_SALES = 10

# Sales: ``g`` numbers them; the buyer is taken in turn from a numbered temp table.
SALES = """
    INSERT INTO sales (id, provider, external_id, buyer_id, amount, currency, occurred_at,
                       refunded_amount, accrued_at, created_at, updated_at)
    SELECT :prefix || g, 'stripe', 'pi_' || :prefix || g, b.buyer, x.amount, 'USD', x.at,
           CASE WHEN g % 50 = 7 THEN round(x.amount / 2, 2) ELSE 0 END, x.at, x.at, x.at
    FROM generate_series(0, :n - 1) g
    JOIN {buyers} b ON b.n = g % (SELECT count(*) FROM {buyers})
    CROSS JOIN LATERAL (
        SELECT (1000 + g % 9000) / 100.0 AS amount,
               now() - interval '1 day'
                     - ((g::bigint * 7919) % (:days * 86400)) * interval '1 second' AS at
    ) x
"""
# Commissions of every sale, each upline within three tiers; paid when payable before this
# month and the earner is the top affiliate or one in ten; one sale in 50 half refunded.
COMMISSIONS = """
    INSERT INTO commissions (id, user_id, referral_id, sale_id, tier, rate, base_amount,
                             gross_amount, amount, clawed_back, status, payout_id,
                             payable_at, created_at, updated_at)
    SELECT new_id(), user_id, referral_id, sale_id, tier, rate, base_amount, gross,
           CASE WHEN refunded AND payout_id IS NULL THEN gross - round(gross / 2, 2)
                ELSE gross END,
           CASE WHEN refunded AND payout_id IS NOT NULL THEN round(gross / 2, 2) ELSE 0 END,
           CASE WHEN payout_id IS NULL THEN 'pending' ELSE 'paid' END, payout_id,
           payable_at, created_at, created_at
    FROM (
        SELECT r.referrer_id AS user_id, r.id AS referral_id, s.id AS sale_id, r.tier,
               t.commission_rate AS rate, s.amount AS base_amount,
               round(s.amount * t.commission_rate, 2) AS gross, s.refunded_amount > 0 AS refunded,
               s.occurred_at + make_interval(days => :hold_days) AS payable_at,
               s.occurred_at + interval '1 minute' AS created_at,
               CASE WHEN s.occurred_at + make_interval(days => :hold_days)
                         < date_trunc('month', now())
                     AND (r.referrer_id = :top OR abs(hashtext(r.referrer_id)) % 10 = 0)
                    THEN 'p' || r.referrer_id || '-' || to_char(date_trunc('month',
                         s.occurred_at + make_interval(days => :hold_days)), 'YYYYMM')
               END AS payout_id
        FROM sales s
        JOIN referrals r ON r.referred_user_id = s.buyer_id AND r.tier <= 3
        JOIN mlm_tiers t ON t.level = r.tier AND t.is_active
    ) c
    ORDER BY created_at
"""
# A payout at the start of the month after its commissions became payable.
PAYOUTS = """
    INSERT INTO payouts (id, user_id, amount, payment_method, status, period, completed_at,
                         created_at, updated_at)
    SELECT payout_id, user_id, sum(amount), 'stripe', 'completed',
           to_char(at, 'YYYY-MM'), at, at, at
    FROM (SELECT payout_id, user_id, amount, clawed_back,
                 least(date_trunc('month', payable_at) + interval '1 month 6 hours',
                       now()) AS at
          FROM commissions WHERE payout_id IS NOT NULL) c
    GROUP BY payout_id, user_id, at
"""
LEDGER = [
    """INSERT INTO ledger_entries (user_id, kind, amount, available_at, commission_id,
                                   created_at)
       SELECT user_id, 'accrual', gross_amount, payable_at, id, created_at
       FROM commissions ORDER BY created_at""",
    """INSERT INTO ledger_entries (user_id, kind, amount, available_at, commission_id,
                                   created_at)
       SELECT c.user_id, 'reversal', c.amount - c.gross_amount, c.payable_at, c.id,
              least(s.occurred_at + interval '10 days', now())
       FROM commissions c JOIN sales s ON s.id = c.sale_id
       WHERE c.amount <> c.gross_amount""",
    """INSERT INTO ledger_entries (user_id, kind, amount, available_at, payout_id, created_at)
       SELECT user_id, 'payout', -amount, created_at, id, created_at FROM payouts""",
    """INSERT INTO ledger_entries (user_id, kind, amount, available_at, commission_id,
                                   created_at)
       SELECT c.user_id, 'clawback', -c.clawed_back, x.at, c.id, x.at
       FROM commissions c JOIN payouts p ON p.id = c.payout_id
       CROSS JOIN LATERAL (SELECT least(p.created_at + interval '3 days', now()) AS at) x
       WHERE c.clawed_back > 0""",
]
# The branch of a commission on B's sale at tier t: B and B's uplines below the earner
# (migration 0004's add_branch_earning), counting amount - clawed_back (0005), cancelled
# commissions left out. Rows of members whose commissions net to zero are not kept (the
# trigger may leave such a row at 0 after a full refund: it reads the same).
BRANCH_EARNINGS = [
    "TRUNCATE branch_earnings",
    """INSERT INTO branch_earnings (earner_id, member_id, amount)
       SELECT c.user_id, m.member_id, sum(c.amount - c.clawed_back)
       FROM commissions c
       JOIN referrals r ON r.id = c.referral_id
       CROSS JOIN LATERAL (
           SELECT r.referred_user_id AS member_id
           UNION ALL
           SELECT up.referrer_id FROM referrals up
           WHERE up.referred_user_id = r.referred_user_id AND up.tier < r.tier
       ) m
       WHERE c.status <> 'cancelled' AND c.amount <> c.clawed_back
       GROUP BY c.user_id, m.member_id""",
]
# Derived tables that other branches add (issue 14), rebuilt when their module exists.
OPTIONAL_REBUILDS = (
    "app.services.money.ledger_totals",
    "app.services.money.commission_rollups",
)


def rebuild_derived() -> list[str]:
    """Every table derived from commissions and the ledger, recomputed from them (the
    loading switched their triggers off). Flushes; the caller commits. Returns what ran."""
    done = []
    started = time.perf_counter()
    for statement in BRANCH_EARNINGS:
        db.session.execute(text(statement))
    done.append(f"branch_earnings {time.perf_counter() - started:.0f} s")
    for name in OPTIONAL_REBUILDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            done.append(f"{name.rsplit('.', 1)[1]}: absent")
            continue
        started = time.perf_counter()
        module.rebuild_all()
        db.session.flush()
        done.append(f"{name.rsplit('.', 1)[1]} {time.perf_counter() - started:.0f} s")
    return done


def _step(label: str, started: float) -> float:
    print(f"<!-- {label}: {time.perf_counter() - started:.0f} s -->", flush=True)
    return time.perf_counter()


def generate(app, users: int, commissions: int, top_commissions: int) -> None:
    started = time.perf_counter()
    with app.app_context():
        password_hash = hash_password("bench")
        original, accounts.hash_password = accounts.hash_password, lambda _p: password_hash
        try:
            root = accounts.create_user(username="root", email="root@example.com", password="x")
        finally:
            accounts.hash_password = original
        generate_network(users, attach_to=root)
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        started = _step(f"network of {users:,} users", started)
        hold_days = db.session.scalar(text("SELECT hold_days FROM referral_program_settings"))
        db.session.execute(text("SET session_replication_role = replica"))
        # The newcomer: a generated user with one referral and no deeper ones.
        member = db.session.scalar(
            text(
                """SELECT u.id FROM downline_counts d
                   JOIN users u ON u.referred_by = d.user_id
                   WHERE d.depth = 1 AND d.members = 1 AND d.user_id LIKE 'gen%'
                     AND NOT EXISTS (SELECT 1 FROM downline_counts x
                                     WHERE x.user_id = d.user_id AND x.depth = 2)
                   ORDER BY d.user_id DESC LIMIT 1"""
            )
        )
        db.session.execute(
            text(
                """CREATE TEMP TABLE top_buyers ON COMMIT DROP AS
                   SELECT row_number() OVER (ORDER BY referred_user_id) - 1 AS n,
                          referred_user_id AS buyer
                   FROM referrals WHERE referrer_id = :top AND tier <= 3"""
            ),
            {"top": TOP},
        )
        db.session.execute(
            text(
                """CREATE TEMP TABLE other_buyers ON COMMIT DROP AS
                   SELECT row_number() OVER (ORDER BY r.referred_user_id) - 1 AS n,
                          r.referred_user_id AS buyer
                   FROM referrals r
                   WHERE r.tier = 3 AND r.referred_user_id <> :member
                     AND NOT EXISTS (SELECT 1 FROM referrals x
                                     WHERE x.referred_user_id = r.referred_user_id
                                       AND x.referrer_id = :top)"""
            ),
            {"top": TOP, "member": member},
        )
        db.session.execute(
            text("CREATE TEMP TABLE newcomer_buyers ON COMMIT DROP AS SELECT 0 AS n, :m AS buyer"),
            {"m": member},
        )
        params = {"days": DAYS}
        db.session.execute(
            text(SALES.format(buyers="top_buyers")), {**params, "prefix": "t", "n": top_commissions}
        )
        from_top = db.session.scalar(
            text(
                """SELECT count(*) FROM sales s
                   JOIN referrals r ON r.referred_user_id = s.buyer_id AND r.tier <= 3"""
            )
        )
        others = max(0, (commissions - from_top - NEWCOMER_SALES) // 3)
        db.session.execute(
            text(SALES.format(buyers="other_buyers")), {**params, "prefix": "o", "n": others}
        )
        db.session.execute(
            text(SALES.format(buyers="newcomer_buyers")),
            {**params, "prefix": "n", "n": NEWCOMER_SALES},
        )
        started = _step(f"sales ({top_commissions:,} + {others:,} + {NEWCOMER_SALES})", started)
        db.session.execute(text(COMMISSIONS), {"hold_days": hold_days, "top": TOP})
        started = _step("commissions", started)
        db.session.execute(text(PAYOUTS))
        for statement in LEDGER:
            db.session.execute(text(statement))
        started = _step("payouts and ledger entries", started)
        db.session.execute(text("SET session_replication_role = origin"))
        print(f"<!-- rebuilt: {', '.join(rebuild_derived())} -->", flush=True)
        db.session.commit()
        started = _step("derived tables", started)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        _step("VACUUM ANALYZE", started)
        db.session.remove()
        db.engine.dispose()


def users_of(app) -> dict[str, tuple[str, str]]:
    """{"top": (id, email), "newcomer": (id, email)}."""
    with app.app_context():
        newcomer = db.session.scalar(
            text(
                """SELECT c.user_id FROM commissions c JOIN sales s ON s.id = c.sale_id
                   WHERE s.id LIKE 'n%' AND c.tier = 1 LIMIT 1"""
            )
        )
        found = {
            name: (
                user_id,
                db.session.scalar(text("SELECT email FROM users WHERE id = :id"), {"id": user_id}),
            )
            for name, user_id in (("top", TOP), ("newcomer", newcomer))
        }
        db.session.remove()
    return found


def data_size(app, users: dict[str, tuple[str, str]]) -> str:
    with app.app_context():
        counts = {
            t: db.session.scalar(
                text("SELECT reltuples::bigint FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                {"t": t},
            )
            for t in ("users", "sales", "commissions", "ledger_entries", "payouts")
        }
        per_user = {
            name: db.session.execute(
                text(
                    """SELECT (SELECT count(*) FROM commissions WHERE user_id = :id),
                              (SELECT count(*) FROM ledger_entries WHERE user_id = :id),
                              (SELECT count(*) FROM payouts WHERE user_id = :id)"""
                ),
                {"id": user_id},
            ).one()
            for name, (user_id, _) in users.items()
        }
        db.session.remove()
    sizes = ", ".join(f"~{n:,} {t}" for t, n in counts.items())
    mine = "; ".join(
        f"{name}: {c:,} commissions, {e:,} ledger entries, {p:,} payouts"
        for name, (c, e, p) in per_user.items()
    )
    return f"{sizes}; {mine}"


QUERIES = {
    "balances (dashboard, payouts)": lambda u: balances(u),
    "becoming_available (payouts)": lambda u: becoming_available(u),
    "payable_amount (payouts)": lambda u: payable_amount(u),
    "network_summary (dashboard)": lambda u: network_summary(u),
    "commission_totals (commissions)": lambda u: commission_totals(u, CommissionFilters(), 2),
    "monthly_earnings (commissions)": lambda u: monthly_earnings(u, CommissionFilters()),
    "list_commissions, first page": lambda u: list_commissions(u, CommissionFilters()),
}


def time_queries(app, users: dict[str, tuple[str, str]], samples: int) -> None:
    print("| query (page) | top: median ms | newcomer: median ms | ratio |")
    print("|---|---|---|---|")
    with app.app_context():
        for name, query in QUERIES.items():
            medians = {}
            for who, (user_id, _) in users.items():
                query(user_id)  # warm
                times = []
                for _ in range(samples):
                    started = time.perf_counter()
                    query(user_id)
                    times.append((time.perf_counter() - started) * 1000)
                    db.session.rollback()
                medians[who] = statistics.median(times)
            top, new = medians["top"], medians["newcomer"]
            print(f"| {name} | {top:,.1f} | {new:.2f} | {top / new:,.0f}x |", flush=True)
        db.session.remove()


def run_mixed(requests: list[tuple[str, bytes]], clients: int) -> tuple[dict, float]:
    """Latencies (s) per label of ``requests`` (each sent once, in the given order) by
    ``clients`` threads; checks every status."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    lock = threading.Lock()
    items = iter(requests)

    def client() -> None:
        local = []
        while (item := next(items, None)) is not None:
            label, raw = item
            started = time.perf_counter()
            status, response = fetch(raw)
            local.append((label, time.perf_counter() - started))
            if status != 200:
                errors.append(f"{label}: {status} {response[:200]!r}")
        with lock:
            for label, latency in local:
                latencies[label].append(latency)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"non-200 answers: {errors[:3]}")
    return latencies, time.perf_counter() - started


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def pages(
    env: dict[str, str], users: dict[str, tuple[str, str]], rounds: int, block: int, clients: int
) -> None:
    """Each (page, user) and hello in blocks of ``block`` requests by ``clients`` clients
    (so a block measures that one page at that concurrency), ``rounds`` blocks each, the
    blocks of a round in a shuffled order (so load noise on the machine hits both users)."""
    server = serve(env, "bench.tree_server:app")
    try:
        hx = {"HX-Request": "true"}
        routes = {
            "/dashboard": ("/dashboard", {}),
            "/payouts": ("/payouts", {}),
            "/commissions": ("/commissions", {}),
            "/commissions (HTMX list)": ("/commissions", hx),
        }
        requests = {"hello": request_bytes("/bench/hello", "")}
        for who, (_, email) in users.items():
            cookie = log_in(email)
            for name, (path, headers) in routes.items():
                requests[f"{name}|{who}"] = request_bytes(path, cookie, headers)
        run_mixed([(label, raw) for label, raw in requests.items()] * 2, clients)  # warm-up
        latencies: dict[str, list[float]] = defaultdict(list)
        spent: dict[str, float] = defaultdict(float)
        order = list(requests)
        rng = random.Random(14)
        started = time.perf_counter()
        for _ in range(rounds):
            rng.shuffle(order)
            for label in order:
                found, elapsed = run_mixed([(label, requests[label])] * block, clients)
                latencies[label] += found[label]
                spent[label] += elapsed
        elapsed = time.perf_counter() - started
        rss = workers_rss(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        f"\n{rounds} rounds of a {block}-request block per page and user, {clients} clients, "
        f"{elapsed:.0f} s in all\n"
    )
    print(
        "| page | top: p50 / p95 ms, req/s | newcomer: p50 / p95 ms, req/s "
        "| top p95 ÷ newcomer p95 |"
    )
    print("|---|---|---|---|")

    def cell(label: str) -> str:
        values = latencies[label]
        rate = len(values) / spent[label]
        rate_text = f"{rate:,.0f}" if rate >= 10 else f"{rate:.2f}"
        return f"{_p(values, 50):,.1f} / **{_p(values, 95):,.1f}**, {rate_text}"

    print(f"| hello-world | {cell('hello')} |  |  |")
    for name in routes:
        top, new = latencies[f"{name}|top"], latencies[f"{name}|newcomer"]
        print(
            f"| {name} | {cell(f'{name}|top')} | {cell(f'{name}|newcomer')} "
            f"| {_p(top, 95) / _p(new, 95):,.1f}x |",
            flush=True,
        )
    print(
        "\nWeb workers' RSS after the run: "
        + ", ".join(f"pid {pid}: {mb:.0f} MB" for pid, mb in sorted(rss))
    )


def _admin(server_url: str):
    return psycopg.connect(server_url, autocommit=True)


def _drop(server_url: str, name: str) -> None:
    with _admin(server_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _create(server_url: str, name: str, template: str | None = None) -> str:
    _drop(server_url, name)
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with _admin(server_url) as conn:
        conn.execute(statement)
    return sqlalchemy_url(with_database(server_url, name))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--commissions", type=int, default=5_000_000)
    parser.add_argument("--top-commissions", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5, help="blocks per page and user")
    parser.add_argument("--block", type=int, default=20, help="requests per block")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--samples", type=int, default=5, help="calls per query and user")
    parser.add_argument("--keep", action="store_true", help="keep bench_pages_data")
    parser.add_argument("--reuse", action="store_true", help="measure a copy of the kept data")
    args = parser.parse_args()
    server_url, redis_url = server_urls()
    if args.reuse:
        name = RUN
        url = _create(server_url, RUN, template=DATA)
    else:
        name = DATA
        url = _create(server_url, DATA)
    try:
        app = migrated_app(url, redis_url)
        if args.reuse:
            with app.app_context():
                started = time.perf_counter()
                print(f"<!-- rebuilt: {', '.join(rebuild_derived())} -->", flush=True)
                db.session.commit()
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    c.execute(text("VACUUM ANALYZE"))
                _step("derived tables on the copy", started)
                db.session.remove()
                db.engine.dispose()
        else:
            generate(app, args.users, args.commissions, args.top_commissions)
        users = users_of(app)
        print(f"<!-- {data_size(app, users)}; load {os.getloadavg()[0]:.1f} -->", flush=True)
        time_queries(app, users, args.samples)
        with app.app_context():
            db.engine.dispose()
        env = {
            **os.environ,
            "DATABASE_URL": url.replace("+psycopg", ""),
            "REDIS_URL": redis_url,
            "RATELIMIT_ENABLED": "false",
        }
        pages(env, users, args.rounds, args.block, args.clients)
        print(f"<!-- load average at the end {os.getloadavg()[0]:.1f} -->")
    finally:
        if args.reuse or not args.keep:
            _drop(server_url, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
