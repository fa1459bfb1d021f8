"""Referral chain jobs."""

from __future__ import annotations

from app.extensions import db
from app.services.network.referrals import backfill_referral_tiers


def backfill_referral_tiers_job() -> int:
    """Backfill referral rows after the max tier was raised. Idempotent; one commit."""
    added = backfill_referral_tiers()
    db.session.commit()
    return added
