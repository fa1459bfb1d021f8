"""All models, imported here so Alembic and the app see one complete metadata."""

from app.models.commissions import COMMISSION_TRANSITIONS, Commission
from app.models.payouts import PAYMENT_METHODS, PAYOUT_TRANSITIONS, Payout
from app.models.program import PAYOUT_FREQUENCIES, MLMTier, ReferralProgramSettings
from app.models.referrals import REFERRAL_TRANSITIONS, Referral
from app.models.transitions import InvalidTransition, Transitions
from app.models.users import User

__all__ = [
    "COMMISSION_TRANSITIONS",
    "PAYMENT_METHODS",
    "PAYOUT_FREQUENCIES",
    "PAYOUT_TRANSITIONS",
    "REFERRAL_TRANSITIONS",
    "Commission",
    "InvalidTransition",
    "MLMTier",
    "Payout",
    "Referral",
    "ReferralProgramSettings",
    "Transitions",
    "User",
]
