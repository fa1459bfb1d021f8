"""Small HTTP load tools for the bench scripts: raw requests over loopback sockets, a
bounded multi-threaded runner, and gunicorn started with the project's settings."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# BENCH_PORT: another free port when two benches share a machine.
PORT = int(os.environ.get("BENCH_PORT", "8765"))


def request_bytes(path: str, cookie: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{PORT}", "Connection: close"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def post_bytes(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{PORT}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def fetch(raw: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", PORT)) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    return int(response[9:12]), response


def run(requests: list[bytes], clients: int, seconds: float | None, count: int | None):
    """Latencies (s) of ``requests`` sent in order (cycling) by ``clients`` threads, until
    ``count`` are sent or ``seconds`` pass; each index is taken once. Checks every status."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + (seconds or 3600)
    indexes = iter(range(count or 10**9))

    def client() -> None:
        local = []
        while time.perf_counter() < deadline and (i := next(indexes, None)) is not None:
            started = time.perf_counter()
            status, _ = fetch(requests[i % len(requests)])
            local.append(time.perf_counter() - started)
            if status != 200:
                errors.append(str(status))
        with lock:
            latencies.extend(local)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"non-200 answers: {errors[:5]}")
    return latencies, time.perf_counter() - started


def body(raw: bytes) -> bytes:
    return fetch(raw)[1].split(b"\r\n\r\n", 1)[1]


def serve(env: dict[str, str], app_module: str) -> subprocess.Popen:
    """Gunicorn with bin/run's two sync workers, ready when its hello route answers."""
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{PORT}"),
            *("--workers", "2", "--log-level", "warning", app_module),
        ],
        cwd=ROOT,
        env=env,
    )
    for _ in range(100):
        try:
            if fetch(request_bytes("/bench/hello", ""))[0] == 200:
                return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("gunicorn did not start")


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000


def rss_mb(pid: int) -> float:
    """A process's resident set size (VmRSS), from /proc, in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(kb) / 1024


def workers_rss(server_pid: int) -> list[tuple[int, float]]:
    """(pid, RSS in MB) of each child of ``server_pid`` (gunicorn's workers)."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return [(int(pid), rss_mb(int(pid))) for pid in children]
