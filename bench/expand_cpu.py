"""CPU per request of the tree's expand fragment against the bare route, in-process.

    .venv/bin/python bench/expand_cpu.py --users 5000

``bench/tree.py`` measures throughput through gunicorn; on a shared 2-core machine its
figures move with whatever else runs. This one calls the two WSGI apps directly (no
sockets, no server) in one process and counts the CPU time the process spends per request
(``time.process_time``, so waiting for PostgreSQL is not counted) and the statements each
sends, alternating the two routes for ``--rounds`` rounds and keeping each one's best. Same
data as ``bench/tree.py`` (demo network, generated network below alice, alice logged in,
expanding a sample of her tier-1/2 members); the bare route is ``bench/tree_server.py``'s,
and the bench checks that both answer the same bytes.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

from bench.tree import build  # noqa: E402
from tests.services_under_test import recreate_database, server_urls  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=300, help="per route per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--database", default="refmlm_bench_cpu")
    args = parser.parse_args()
    server_url, redis_url = server_urls()
    url = recreate_database(server_url, args.database)
    alice_id, nodes, built = build(url, redis_url, args.users)
    os.environ["DATABASE_URL"] = url.replace("+psycopg", "")
    from app import create_app
    from app.services.program.demo import DEMO_PASSWORD, demo_email
    from bench.tree_server import BareExpand

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url})
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    login = {"csrf_token": token, "email": demo_email("alice"), "password": DEMO_PASSWORD}
    assert client.post("/login", data=login).status_code == 302
    # As a browser sends them: the session cookie, from the address and agent it was made for.
    headers = {
        "HX-Request": "true",
        "Cookie": f"session={client.get_cookie('session').value}",
        "User-Agent": client.environ_base["HTTP_USER_AGENT"],
    }
    statements = [0]
    execute = psycopg.Cursor.execute

    def counted(self, *a, **k):
        statements[0] += 1
        return execute(self, *a, **k)

    psycopg.Cursor.execute = counted

    def caller(wsgi, path: str, request_headers: dict[str, str]):
        environs = [
            EnvironBuilder(
                path=path.format(node),
                headers=request_headers,
                environ_base={"REMOTE_ADDR": "127.0.0.1"},
            ).get_environ()
            for node in nodes
        ]

        def call(i: int) -> bytes:
            environ = dict(environs[i % len(environs)], **{"wsgi.input": io.BytesIO()})
            status = []
            body = b"".join(wsgi(environ, lambda s, h, e=None: status.append((s, h))))
            assert status[0][0].startswith("200"), status
            assert not any(k == "Set-Cookie" for k, _ in status[0][1]), "session rewritten"
            return body

        return call

    routes = {
        "bare expand": caller(BareExpand(app, alice_id), "/?node={}", {}),
        "expand": caller(app.wsgi_app, "/network?node={}", headers),
    }
    assert routes["bare expand"](0) == routes["expand"](0)
    best: dict[str, tuple[float, float]] = {}
    for call in routes.values():  # warm-up: prepared statements, template cache
        for i in range(100):
            call(i)
    for _ in range(args.rounds):
        for name, call in routes.items():
            statements[0] = 0
            started = time.process_time()
            for i in range(args.requests):
                call(i)
            cpu = (time.process_time() - started) / args.requests * 1e6
            if name not in best or cpu < best[name][0]:
                best[name] = (cpu, statements[0] / args.requests)
    print(f"<!-- {args.users:,} users built in {built:.0f} s; {len(nodes)} sample nodes -->")
    print("| route | CPU µs per request (best of rounds) | statements per request | bare ÷ route |")
    print("|---|---|---|---|")
    for name, (cpu, sent) in best.items():
        print(f"| {name} | {cpu:,.0f} | {sent:.1f} | {best['bare expand'][0] / cpu:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
