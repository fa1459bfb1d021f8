"""Attempt limits for sign-in, registration, password changes and resets, email changes.

An attempt is counted (one atomic ``INCR`` in Redis per limit) *before* the password or the
form is checked, so requests in flight cannot all slip under the limit; a sign-in that
succeeds gives its attempts back. Fail closed: when Redis cannot be reached the attempt is
refused with a clear 503 rather than let through unlimited.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass, field

from flask import current_app
from limits import RateLimitItem, parse

from app.extensions import limiter

TOO_MANY = "Too many attempts. Please try again {when}."
UNAVAILABLE = "{what} is temporarily unavailable. Please try again in a minute."
# What a refusal with Redis down asks the client to wait (the message says "a minute").
UNAVAILABLE_RETRY_AFTER = 60


@dataclass(frozen=True)
class Throttle:
    """A named limit; ``what`` names the guarded action in the message shown when Redis is down."""

    name: str
    rate: RateLimitItem
    what: str


LOGIN_PER_ACCOUNT = Throttle("login-account", parse("5 per minute"), "Sign-in")
LOGIN_PER_IP = Throttle("login-ip", parse("30 per minute"), "Sign-in")
# Guesses at one account from any number of addresses (a botnet, an IPv6 range). It can
# lock the owner out for the rest of the hour: the price of stopping distributed guessing.
LOGIN_PER_EMAIL = Throttle("login-email", parse("20 per hour"), "Sign-in")
REGISTRATION_PER_IP = Throttle("register-ip", parse("10 per hour"), "Registration")
# Reset links asked for, per client and per address (known or not: the same answer either way).
RESET_PER_IP = Throttle("reset-ip", parse("10 per hour"), "Password reset")
RESET_PER_EMAIL = Throttle("reset-email", parse("5 per hour"), "Password reset")
# Also counts email changes: both guess the current password.
PASSWORD_PER_USER = Throttle("password-user", parse("5 per 15 minutes"), "Changing the password")


def try_again_in(seconds: float) -> str:
    """When to try again, as a message says it: "in 45 seconds", "in 3 minutes", "in 2 hours"
    (rounded up, so that trying at that time works)."""
    seconds = max(1, math.ceil(seconds))
    if seconds <= 90:
        count, unit = seconds, "second"
    elif seconds <= 90 * 60:
        count, unit = math.ceil(seconds / 60), "minute"
    else:
        count, unit = math.ceil(seconds / 3600), "hour"
    return f"in {count} {unit}{'' if count == 1 else 's'}"


class Throttled(Exception):
    """The attempt was refused: ``status`` 429 (over a limit) or 503 (Redis unreachable);
    ``retry_after`` is the number of seconds to wait (the ``Retry-After`` header)."""

    def __init__(
        self,
        status: int,
        message: str,
        throttle: Throttle,
        *,
        retry_after: int,
        is_first: bool = False,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.throttle = status, message, throttle
        self.retry_after = retry_after
        # The first refusal of its window (one audit entry per window, not one per request).
        self.is_first = is_first


@dataclass
class Attempt:
    """Attempts counted by ``count_attempt``, so that a legitimate one can be given back."""

    counted: list[tuple[Throttle, tuple[str, ...]]] = field(default_factory=list)

    def refund(self) -> None:
        """Give the attempts back (a successful sign-in is not a guess). Best effort: if Redis
        went away meanwhile the attempt simply stays counted until its window ends."""
        for throttle, keys in self.counted:
            try:
                limiter.storage.incr(
                    throttle.rate.key_for(throttle.name, *keys),
                    throttle.rate.get_expiry(),
                    amount=-1,
                )
            except limiter.storage.base_exceptions:
                current_app.logger.warning("could not refund a %s attempt", throttle.name)


def count_attempt(*limits: tuple[Throttle, tuple[str, ...]]) -> Attempt:
    """Count one attempt against each ``(throttle, keys)`` before the guarded check runs.

    Every limit is counted (atomic increments), so concurrent requests are each counted before
    any of them is evaluated. Raises ``Throttled`` (429) when any limit is exceeded, and
    ``Throttled`` (503) when the counters cannot be reached: we fail closed. A 429 says when
    the exceeded limit's window ends (the longest wait when several are exceeded).
    """
    attempt, exceeded, reset_at = Attempt(), None, 0.0
    if not limiter.enabled:  # RATELIMIT_ENABLED=false turns every limit off
        return attempt
    for throttle, keys in limits:
        try:
            within = limiter.limiter.hit(throttle.rate, throttle.name, *keys)
            if not within:
                stats = limiter.limiter.get_window_stats(throttle.rate, throttle.name, *keys)
                reset_at = max(reset_at, stats.reset_time)
            if not within and exceeded is None:
                count = limiter.storage.get(throttle.rate.key_for(throttle.name, *keys))
                exceeded = (throttle, count == throttle.rate.amount + 1)
        except limiter.storage.base_exceptions as exc:
            current_app.logger.error("rate-limit storage unreachable (%s): refusing", exc)
            message = UNAVAILABLE.format(what=throttle.what)
            raise Throttled(503, message, throttle, retry_after=UNAVAILABLE_RETRY_AFTER) from exc
        attempt.counted.append((throttle, keys))
    if exceeded is not None:
        wait = max(1, math.ceil(reset_at - time.time()))
        message = TOO_MANY.format(when=try_again_in(wait))
        raise Throttled(429, message, exceeded[0], retry_after=wait, is_first=exceeded[1])
    return attempt


def client_key(address: str | None) -> str:
    """The client as the per-address limits count it: an IPv6 client by its /64 (what one
    subscriber gets, so rotating addresses inside it buys nothing), an IPv4 one by its
    address."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or ""
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network((ip, 64), strict=False))
    return str(getattr(ip, "ipv4_mapped", None) or ip)
