"""The app served by a real gunicorn in a subprocess, for what the test client cannot show:
parallel requests on several workers, header encoding, an app whose Redis is down."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import requests

from tests.services_under_test import ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn(app, *, workers: int = 1, threads: int = 1, **env: str) -> Iterator[str]:
    """Serve ``create_app()`` configured like ``app`` (its database, Redis and secret, unless
    ``env`` says otherwise) and yield its base URL; stopped on exit."""
    port = _free_port()
    environ = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        **env,
    }
    command = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}"]
    command += ["-w", str(workers), "--threads", str(threads), "app:create_app()"]
    process = subprocess.Popen(command, cwd=ROOT, env=environ, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read().decode())
            with contextlib.suppress(requests.ConnectionError):
                requests.get(f"{base}/login", timeout=5)
                break
            time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
