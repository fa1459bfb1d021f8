"""A real gunicorn worker answers a huge request body with 413/400 and stays small."""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path

import pytest
import requests

from tests.gunicorn_server import gunicorn
from tests.signing import stripe_headers

HUGE = 200 * 1024 * 1024  # bytes sent at most, streamed, never held by the test
GROWTH_LIMIT_KB = 50 * 1024  # the worker's peak memory may grow this much at most
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _peak_rss_kb(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def gunicorn_worker(app):
    """One sync gunicorn worker, warmed up on every path measured below (so that only the
    bodies could grow it): its port and pid."""
    with gunicorn(app) as served:
        [worker] = _children(served.pid)
        over_the_limit = b"x" * (3 << 20)  # the default app-wide limit is 2 MiB
        requests.post(f"{served.url}/login", data=over_the_limit, headers=FORM, timeout=10)
        for provider in ("stripe", "lemonsqueezy"):
            requests.post(f"{served.url}/webhooks/{provider}", data=b"{}", timeout=10)
        yield served.port, worker


def _post_huge(port: int, path: str, headers: dict, chunked: bool) -> int:
    """POST up to ``HUGE`` bytes, a 64 KiB chunk at a time, until the server answers; its
    status code. Bounded in time (60 s)."""
    deadline = time.monotonic() + 60
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {HUGE}")
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        chunk = b"x" * 65536
        framed = b"10000\r\n" + chunk + b"\r\n" if chunked else chunk
        sent = 0
        try:
            while sent < HUGE and not select.select([conn], [], [], 0)[0]:
                assert time.monotonic() < deadline, "the server neither read nor answered"
                conn.sendall(framed)
                sent += len(chunk)
            if chunked and sent >= HUGE:
                conn.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed: read the answer
        status_line = conn.makefile("rb").readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    return int(status_line.split()[1])


@pytest.mark.parametrize(
    ("path", "headers", "chunked", "status"),
    [
        ("/webhooks/stripe", {}, False, 400),
        ("/webhooks/stripe", {}, True, 400),
        ("/webhooks/stripe", stripe_headers(b"{}"), False, 413),
        ("/webhooks/stripe", stripe_headers(b"{}"), True, 413),
        ("/webhooks/lemonsqueezy", {"X-Signature": "a" * 64}, True, 413),
        ("/webhooks/stripe", {**stripe_headers(b"{}"), **FORM}, True, 413),
        ("/login", FORM, False, 413),
        ("/login", FORM, True, 400),  # the form cut at the limit fails to parse
    ],
    ids=[
        "webhook-unsigned",
        "webhook-unsigned-chunked",
        "webhook",
        "webhook-chunked",
        "lemon-chunked",
        "webhook-form-chunked",
        "form",
        "form-chunked",
    ],
)
def test_a_huge_body_leaves_the_worker_small(gunicorn_worker, path, headers, chunked, status):
    port, worker = gunicorn_worker
    before = _peak_rss_kb(worker)
    assert _post_huge(port, path, headers, chunked) == status
    assert _peak_rss_kb(worker) - before < GROWTH_LIMIT_KB
