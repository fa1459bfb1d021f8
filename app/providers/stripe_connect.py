"""Stripe Connect events (the Connect endpoint, its own signing secret): what connected
accounts' events say about their readiness for payouts. Signatures are checked exactly as on
the platform endpoint (``stripe.verify``, the official SDK)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from app.providers import AccountReport, MalformedEvent, Report, unix_time
from app.providers.stripe import verify

__all__ = ["DEAUTHORIZED", "account_report", "reports", "verify"]

PROVIDER = "stripe_connect"
DEAUTHORIZED = "deauthorized"


def account_report(account: Mapping, stated_at: datetime) -> AccountReport:
    """An account object (an event's, or a retrieve's as a dict) in our terms: ready means
    ``payouts_enabled`` and the transfers capability ``active``; the restriction is Stripe's
    ``requirements.disabled_reason``. Raises ``MalformedEvent`` for an object not shaped as
    Stripe's."""
    account_id = account.get("id")
    payouts_enabled = account.get("payouts_enabled")
    capabilities = account.get("capabilities") or {}
    requirements = account.get("requirements") or {}
    reason = requirements.get("disabled_reason") if isinstance(requirements, Mapping) else None
    if not isinstance(account_id, str) or not account_id.startswith("acct_"):
        raise MalformedEvent(f"an account needs an acct_ id, got {account_id!r:.80}")
    if not isinstance(payouts_enabled, bool) or not isinstance(capabilities, Mapping):
        raise MalformedEvent("an account needs payouts_enabled and capabilities")
    if reason is not None and not isinstance(reason, str):
        raise MalformedEvent(f"requirements.disabled_reason is not text: {reason!r:.80}")
    return AccountReport(
        account_id=account_id,
        stated_at=stated_at,
        payouts_enabled=payouts_enabled,
        transfers_active=capabilities.get("transfers") == "active",
        restriction=reason or None,
    )


def reports(payload: dict) -> list[Report]:
    """``account.updated``: the account's readiness as of the event's ``created``;
    ``account.application.deauthorized``: the account (the event's ``account``) can no longer
    be paid. Other events say nothing we keep."""
    kind = payload.get("type")
    if kind == "account.updated":
        data = payload.get("data")
        account = data.get("object") if isinstance(data, dict) else None
        if not isinstance(account, dict):
            raise MalformedEvent("account.updated without its account object")
        return [account_report(account, unix_time(payload, "created"))]
    if kind == "account.application.deauthorized":
        account_id = payload.get("account")
        if not isinstance(account_id, str) or not account_id.startswith("acct_"):
            raise MalformedEvent(f"a deauthorization names no account: {account_id!r:.80}")
        stated_at = unix_time(payload, "created")
        return [AccountReport(account_id, stated_at, False, False, DEAUTHORIZED)]
    return []
