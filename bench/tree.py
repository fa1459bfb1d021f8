"""Downline tree under load, on networks of 10k and 1M users, served by gunicorn on loopback.

    .venv/bin/python bench/tree.py --users 10000 1000000

For each size: builds the demo network plus a generated one below alice (``flask demo
--users``'s generator) in a scratch database, starts gunicorn (the same two sync workers as
``bin/run``) with ``bench/tree_server.py``, logs in as alice (max tier 3) and measures, in the
same run against the same server:
  - hello:        ``/bench/hello``, a hello-world Flask route,
  - bare expand:  ``/bare/expand``, the same SQL and template with no framework layers,
  - expand:       ``/network?node=<id>`` with ``HX-Request`` (the fragment),
  - tree page:    ``/network`` (the full page, opened at alice),
  - node page:    ``/network?node=<id>`` without HTMX (full page, path from alice),
  - search:       ``/network/search?q=<prefix>`` with HTMX, prefixes from common ("a") to
                  absent, cycling.
Expanded nodes cycle through a fixed sample of alice's tier-1 and tier-2 members with
children, hubs with tens of thousands of direct referrals among them (first page of 50).
Each route gets a latency run (one client, --requests requests) and a throughput run
(--concurrency clients for --seconds). Loopback only; every run is bounded.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import text  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.services.accounts.accounts import find_user_by_email  # noqa: E402
from app.services.network.network_generator import generate_network  # noqa: E402
from app.services.program.demo import DEMO_PASSWORD, build_demo_network, demo_email  # noqa: E402
from app.services.program.program import seed_program_defaults  # noqa: E402
from bench.loadgen import PORT, body, fetch, pct, request_bytes, run, serve  # noqa: E402
from tests.services_under_test import recreate_database, server_urls  # noqa: E402

SAMPLE = text(
    """
    SELECT r.referred_user_id FROM referrals r
    JOIN downline_counts d ON d.user_id = r.referred_user_id AND d.depth = 1
    WHERE r.referrer_id = :root AND r.tier <= 2
    ORDER BY r.referred_user_id LIMIT 200
    """
)


def build(url: str, redis_url: str, users: int) -> tuple[str, list[str], float]:
    started = time.perf_counter()
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url})
    with app.app_context():
        upgrade()
        seed_program_defaults()
        build_demo_network()
        alice = find_user_by_email(demo_email("alice"))
        generate_network(users - 9, attach_to=alice)
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        nodes = list(db.session.execute(SAMPLE, {"root": alice.id}).scalars())
        alice_id = alice.id
        db.session.remove()
        db.engine.dispose()
    return alice_id, nodes, time.perf_counter() - started


def log_in(email: str) -> str:
    _, page = fetch(request_bytes("/login", ""))
    cookie = re.search(rb"Set-Cookie: (session=[^;]+)", page).group(1).decode()
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page).group(1).decode()
    body = f"csrf_token={token}&email={email}&password={DEMO_PASSWORD}".replace("@", "%40")
    raw = (
        f"POST /login HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nConnection: close\r\n"
        f"Cookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()
    status, response = fetch(raw)
    assert status == 302, response[:300]
    return re.search(rb"Set-Cookie: (session=[^;]+)", response).group(1).decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--requests", type=int, default=500, help="latency run, one client")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0, help="throughput run")
    parser.add_argument("--database", default="refmlm_bench", help="scratch database name")
    args = parser.parse_args()
    server_url, redis_url = server_urls()
    print("| users | route | p50 ms | p95 ms | req/s | ÷ hello | ÷ bare |")
    print("|---|---|---|---|---|---|---|")
    for users in args.users:
        url = recreate_database(server_url, args.database)
        alice_id, nodes, built = build(url, redis_url, users)
        print(f"<!-- {users:,} users built in {built:.0f} s; {len(nodes)} sample nodes -->")
        env = {
            **os.environ,
            "DATABASE_URL": url.replace("+psycopg", ""),
            "REDIS_URL": redis_url,
            "BENCH_ROOT_ID": alice_id,
        }
        server = serve(env, "bench.tree_server:app")
        try:
            cookie = log_in(demo_email("alice"))
            random.Random(1).shuffle(nodes)
            hx = {"HX-Request": "true"}
            routes = {
                "hello": [request_bytes("/bench/hello", "")],
                "bare expand": [request_bytes(f"/bare/expand?node={n}", "") for n in nodes],
                "expand": [request_bytes(f"/network?node={n}", cookie, hx) for n in nodes],
                "tree page": [request_bytes("/network", cookie)],
                "node page": [request_bytes(f"/network?node={n}", cookie) for n in nodes],
                "search": [
                    request_bytes(f"/network/search?q={q}", cookie, hx)
                    for q in ("a", "mara1", "zoe99", "leo4", "nobody")
                ],
            }
            # The bare route must do the same work: byte-identical fragments.
            assert body(routes["expand"][0]) == body(routes["bare expand"][0])
            results = {}
            for name, requests in routes.items():
                run(requests, args.concurrency, None, 100)  # warm-up
                latency, _ = run(requests, 1, None, args.requests)
                done, elapsed = run(requests, args.concurrency, args.seconds, None)
                results[name] = (pct(latency, 50), pct(latency, 95), len(done) / elapsed)
            for name, (p50, p95, rps) in results.items():
                hello, bare = results["hello"][2], results["bare expand"][2]
                versus_bare = f"{rps / bare:.2f}" if "expand" in name else ""
                print(
                    f"| {users:,} | {name} | {p50:.1f} | {p95:.1f} | {rps:,.0f} "
                    f"| {rps / hello:.2f} | {versus_bare} |",
                    flush=True,
                )
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
