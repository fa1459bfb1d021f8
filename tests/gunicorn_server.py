"""The app served by a real gunicorn in a subprocess, for what the test client cannot show:
parallel requests on several workers, header encoding, an app whose Redis is down, a
worker's memory under a huge body."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import requests

from tests.services_under_test import ROOT, free_port, stop_process

_START_TIMEOUT = 60  # seconds


@dataclass(frozen=True)
class Served:
    url: str
    port: int
    pid: int  # gunicorn's master process


@contextlib.contextmanager
def gunicorn(app, *, workers: int = 1, threads: int = 1, **env: str) -> Iterator[Served]:
    """Serve ``create_app()`` configured like ``app`` (its database, Redis, secret and webhook
    secrets, unless ``env`` says otherwise) once it answers; always stopped on exit, its log
    printed (pytest shows it when a test fails)."""
    port = free_port()
    environ = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "STRIPE_WEBHOOK_SECRET": app.config["STRIPE_WEBHOOK_SECRET"],
        "LEMONSQUEEZY_WEBHOOK_SECRET": app.config["LEMONSQUEEZY_WEBHOOK_SECRET"],
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        **env,
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-b",
        f"127.0.0.1:{port}",
        "--timeout",
        "30",
        "--no-control-socket",
    ]
    command += ["-w", str(workers), "--threads", str(threads), "app:create_app()"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=log, stderr=log)
        served = Served(f"http://127.0.0.1:{port}", port, process.pid)
        try:
            deadline = time.monotonic() + _START_TIMEOUT
            while True:
                assert process.poll() is None, "gunicorn exited"
                try:
                    requests.get(f"{served.url}/healthz", timeout=5)
                    break
                # Not listening yet, or (on a busy machine) the workers still booting.
                except (requests.ConnectionError, requests.Timeout):
                    assert time.monotonic() < deadline, "gunicorn did not start in time"
                    time.sleep(0.05)
            yield served
        finally:
            stop_process(process)
            log.seek(0)
            sys.stdout.write(log.read().decode(errors="replace")[-4000:])
