"""Registration cost against network size: does a sign-up get slower as the network grows?

    .venv/bin/python bench/registration.py --users 10000 1000000 --samples 300

For each size: builds a network in a scratch database (the demo generator: power-law
fan-out, depth up to 30, COPY), then times, in the same run, sign-ups under random members:
  - service: create_user + referral chain through the app (password hash precomputed, so
    argon2's fixed ~50 ms does not hide the database work),
  - raw:     the same rows written by hand-written SQL over one psycopg connection
             (INSERT the user, INSERT ... SELECT the chain), the least the database must do.
Both include the trigger that adds the new member to every upline's downline counts.
Loopback only; bounded by --samples.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from app.extensions import db
from app.models import User
from app.services.accounts import accounts
from app.services.accounts.passwords import hash_password
from app.services.network.network_generator import generate_network
from bench.scratch import migrated_app
from tests.services_under_test import recreate_database, server_urls

RAW_USER = """
INSERT INTO users (id, username, email, password_hash, referral_code, referred_by)
VALUES (%(id)s, %(id)s, %(email)s, %(hash)s, %(code)s, %(referrer)s)
"""
RAW_CHAIN = """
INSERT INTO referrals (id, referrer_id, referred_user_id, tier)
SELECT new_id(), %(referrer)s::varchar, %(id)s::varchar, 1
UNION ALL
SELECT new_id(), referrer_id, %(id)s::varchar, tier + 1 FROM referrals
WHERE referred_user_id = %(referrer)s::varchar AND tier < 3
"""


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def build(app, n: int, password_hash: str) -> float:
    started = time.perf_counter()
    with app.app_context():
        accounts.hash_password = lambda _password: password_hash
        root = accounts.create_user(username="root", email="root@example.com", password="x")
        generate_network(n - 1, attach_to=root)
        db.session.commit()
        db.session.execute(db.text("ANALYZE"))
        db.session.commit()
    return time.perf_counter() - started


def referrer_id(n: int, rng) -> str:
    return f"gen{rng.randrange(n - 1)}"


def time_service(app, n: int, samples: int, password_hash: str, rng) -> list[float]:
    timings = []
    with app.app_context():
        accounts.hash_password = lambda _password: password_hash  # argon2 is not the subject
        for i in range(samples):
            referrer = db.session.get(User, referrer_id(n, rng))
            started = time.perf_counter()
            accounts.create_user(
                username=f"svc{i}", email=f"svc{i}@example.com", password="x", referrer=referrer
            )
            db.session.commit()
            timings.append(time.perf_counter() - started)
            db.session.expunge_all()
        accounts.hash_password = hash_password
    return timings


def time_raw(url: str, n: int, samples: int, password_hash: str, rng) -> list[float]:
    timings = []
    with psycopg.connect(url) as conn:
        for i in range(samples):
            params = {
                "id": f"raw{i}",
                "email": f"raw{i}@example.com",
                "hash": password_hash,
                "code": f"R{i:07d}",
                "referrer": referrer_id(n, rng),
            }
            started = time.perf_counter()
            with conn.transaction():
                conn.execute(RAW_USER, params)
                conn.execute(RAW_CHAIN, params)
            timings.append(time.perf_counter() - started)
    return timings


def main() -> int:
    import random

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--database", default="refmlm_bench", help="scratch database name")
    args = parser.parse_args()
    server, redis_url = server_urls()
    password_hash = hash_password("bench-password")
    print(
        "| existing users | build s | service mean ms | p95 ms "
        "| raw SQL mean ms | p95 ms | raw/service |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in args.users:
        url = recreate_database(server, args.database)
        app = migrated_app(url, redis_url)
        built = build(app, n, password_hash)
        rng = random.Random(n)
        service = time_service(app, n, args.samples, password_hash, rng)
        raw = time_raw(url.replace("+psycopg", ""), n, args.samples, password_hash, rng)
        s_mean, r_mean = statistics.mean(service) * 1000, statistics.mean(raw) * 1000
        print(
            f"| {n:,} | {built:.1f} | {s_mean:.2f} | {percentile(service, 95) * 1000:.2f} "
            f"| {r_mean:.2f} | {percentile(raw, 95) * 1000:.2f} | {r_mean / s_mean:.2f} |",
            flush=True,
        )
        with app.app_context():
            db.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
