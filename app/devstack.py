"""``bin/run``: the whole app on one machine — services, migrations, seed, demo, web and worker.

Uses ``DATABASE_URL`` / ``REDIS_URL`` when set; otherwise starts embedded PostgreSQL and Redis
with their data under ``var/``. Without ``STRIPE_SECRET_KEY`` it starts the fake Stripe on
loopback (test mode, labelled on every signed-in page), so onboarding and payouts work end to
end. Runs gunicorn, one RQ worker (with RQ's retry scheduler) and RQ's cron scheduler
(``scheduler.py``: scheduled payouts) until Ctrl-C, and stops everything if any of them dies.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from cryptography.fernet import Fernet

from app import ROOT
from app.embedded import start_postgres, start_redis
from app.providers.fake_stripe.server import DEFAULT_API_KEY

VAR = ROOT / "var"


def _persistent_secret(
    name: str, make: Callable[[], str] = lambda: secrets.token_urlsafe(48)
) -> str:
    """A random secret kept in ``var/`` so sessions (and encrypted payee details) survive a
    restart of the dev stack."""
    path = VAR / name
    if not path.exists():
        VAR.mkdir(exist_ok=True)
        # Created private (0600), never readable by others even for a moment.
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(make())
    return path.read_text().strip()


def _environment(handles: list[object]) -> dict[str, str]:
    env = dict(os.environ)
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = start_postgres(VAR)
        print(f"Embedded PostgreSQL: {env['DATABASE_URL']}")
    if not env.get("REDIS_URL"):
        url, handle = start_redis(VAR)
        handles.append(handle)
        env["REDIS_URL"] = url
        print(f"Embedded Redis: {url}")
    env.setdefault("SECRET_KEY", _persistent_secret("secret_key"))
    env.setdefault(
        "FERNET_KEYS", _persistent_secret("fernet_keys", lambda: Fernet.generate_key().decode())
    )
    env["FLASK_APP"] = "app:create_app"
    return env


def start_fake_stripe(env: dict[str, str]) -> subprocess.Popen:
    """The fake Stripe as a process on a free loopback port, with ``env`` pointed at it
    (``STRIPE_SECRET_KEY`` a test-mode key, ``STRIPE_API_BASE`` its URL)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "app.providers.fake_stripe", "--port", "0"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    # Its first line names its URL: "Fake Stripe (test mode) on http://127.0.0.1:<port>".
    first_line = process.stdout.readline()
    if not first_line.startswith("Fake Stripe"):
        process.kill()
        raise RuntimeError(f"The fake Stripe did not start: {first_line!r}")
    env["STRIPE_SECRET_KEY"] = DEFAULT_API_KEY
    env["STRIPE_API_BASE"] = first_line.rsplit(" ", 1)[-1].strip()
    return process


def _flask(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "flask", *args], env=env, cwd=ROOT, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args(argv)

    handles: list[object] = []
    env = _environment(handles)
    children: list[subprocess.Popen] = []
    if not env.get("STRIPE_SECRET_KEY"):
        children.append(start_fake_stripe(env))
        print(f"Fake Stripe (test mode, no real money): {env['STRIPE_API_BASE']}")
    env.setdefault("PUBLIC_BASE_URL", f"http://{args.host}:{args.port}")
    _flask(env, "db", "upgrade")
    _flask(env, "seed")
    _flask(env, "demo")

    bind = f"{args.host}:{args.port}"
    gunicorn = [sys.executable, "-m", "gunicorn", "--bind", bind, "--workers"]
    children += [
        subprocess.Popen(
            [*gunicorn, str(args.web_workers), "--access-logfile", "-", "app:create_app()"],
            env=env,
            cwd=ROOT,
        ),
        subprocess.Popen([sys.executable, "worker.py", "--with-scheduler"], env=env, cwd=ROOT),
        subprocess.Popen([sys.executable, "scheduler.py"], env=env, cwd=ROOT),
    ]
    print(f"\n  Referral program running at http://{bind}/  (Ctrl-C to stop)\n", flush=True)

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.5)
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
    return 0 if stopping else 1


if __name__ == "__main__":
    raise SystemExit(main())
