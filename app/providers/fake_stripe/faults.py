"""Faults to inject into the fake Stripe server, each for the next N matching requests."""

from __future__ import annotations

import dataclasses
import threading
from fnmatch import fnmatchcase

KINDS = (
    "timeout_after_success",  # the request is done (and its idempotent answer kept), then
    # the connection is dropped, after ``stall_seconds`` if given (longer than the client's
    # timeout: the client sees a timeout) — the client cannot know the transfer was made
    "delay_after_success",  # the request is done (and its idempotent answer kept), then the
    # answer is sent after ``stall_seconds``: a client killed meanwhile never learns of it
    "rate_limited",  # 429 rate_limit, nothing done, nothing kept for the idempotency key
    "idempotency_key_in_use",  # 409 idempotency_error: another request with the same key
    # is still running at Stripe (it may yet make the transfer); nothing done, nothing kept
    "server_error",  # 500 api_error, nothing done; kept for the key, as Stripe keeps 500s
    "balance_insufficient",  # POST /v1/transfers only: 400 balance_insufficient, no transfer
    "account_restricted",  # POST /v1/transfers only: the destination becomes restricted
    # (payouts disabled, transfers inactive), then 400 insufficient_capabilities_for_transfer
    "prune_idempotency_keys",  # the request's idempotency key is forgotten first, as Stripe
    # prunes keys after 24 hours: a repeat is a new request
)
_TRANSFER_ONLY = {"balance_insufficient", "account_restricted"}


@dataclasses.dataclass
class Fault:
    kind: str
    times: int = 1
    method: str = "POST"
    path: str = "/v1/transfers"  # a glob: "/v1/transfers/*/reversals", "/v1/*"
    stall_seconds: float | None = None

    def matches(self, kind: str, method: str, path: str) -> bool:
        return self.kind == kind and self.method == method and fnmatchcase(path, self.path)


class Faults:
    """The pending faults, first injected first used; shares the server's lock."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._pending: list[Fault] = []

    def inject(
        self,
        kind: str,
        times: int = 1,
        *,
        method: str = "POST",
        path: str = "/v1/transfers",
        stall_seconds: float | None = None,
    ) -> None:
        """Make the next ``times`` requests matching ``method`` and ``path`` fail as ``kind``."""
        method = method.upper()
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(KINDS)}")
        if not isinstance(times, int) or times < 1:
            raise ValueError("times must be a positive integer")
        if kind in _TRANSFER_ONLY and not (method == "POST" and fnmatchcase("/v1/transfers", path)):
            raise ValueError(f"{kind} applies to POST /v1/transfers only")
        with self._lock:
            self._pending.append(Fault(kind, times, method, path, stall_seconds))

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return [dataclasses.replace(fault) for fault in self._pending]

    def take(self, kind: str, method: str, path: str) -> Fault | None:
        """Use up one occurrence of the first pending fault of ``kind`` matching the request."""
        with self._lock:
            for fault in self._pending:
                if fault.matches(kind, method, path):
                    fault.times -= 1
                    if fault.times == 0:
                        self._pending.remove(fault)
                    return fault
            return None
