"""What the landing page of a shared link offers: the product, and what a referrer earns."""

from __future__ import annotations

from decimal import Decimal

from app.services.program.program import get_settings
from app.services.program.simulator import paying_rates
from app.services.program.tiers import active_rates


def referrer_rates() -> dict[int, Decimal]:
    """The rate each tier earns on a sale today, as accrual decides it: the active tiers up
    to the max tier (tier 1 at the default rate without a tier row); tier 1 alone, at the
    default rate, when MLM is off."""
    settings = get_settings()
    return paying_rates(settings, active_rates(settings.max_tier_level), settings.max_tier_level)
