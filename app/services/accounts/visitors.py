"""Visitors without personal data in clear: IPs are kept only as keyed hashes."""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, request


def hash_ip(ip: str | None) -> str:
    """HMAC-SHA256 of the IP with a key derived from ``SECRET_KEY``: comparable, not reversible."""
    key = hashlib.sha256(b"ip-hash:" + current_app.config["SECRET_KEY"].encode()).digest()
    return hmac.new(key, (ip or "unknown").encode(), hashlib.sha256).hexdigest()


def request_ip_hash() -> str:
    """The current request's client IP (after ProxyFix, when configured), hashed."""
    return hash_ip(request.remote_addr)
