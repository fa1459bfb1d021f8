"""Stripe transfers for payouts: exactly one transfer per payout, whatever fails."""

from __future__ import annotations


def send_payout(payout_id: str) -> None:
    """Send a pending Stripe payout to its connected account. Flushes; the job commits."""
    raise NotImplementedError("Stripe transfers are being built (issue 11)")
