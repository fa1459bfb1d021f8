"""All models, imported here so Alembic and the app see one complete metadata."""

from app.models.archive import ArchivedReferralClick, ArchivedWebhookEvent
from app.models.audit import AuditEntry
from app.models.clicks import ReferralClick
from app.models.commission_rollups import CommissionRollup, CommissionRollupMonth
from app.models.commissions import COMMISSION_TRANSITIONS, Commission
from app.models.downline import BranchEarning, DownlineCount
from app.models.flags import FLAG_REASONS, FLAG_TRANSITIONS, ReferralFlag
from app.models.ledger import LEDGER_KINDS, LedgerBucket, LedgerEntry, LedgerTotal
from app.models.notifications import (
    DIGEST_CATEGORIES,
    OPTIONAL_CATEGORIES,
    MailDigest,
    MailNotice,
    MailOptOut,
)
from app.models.outbox import MAIL_CATEGORIES, OUTBOX_TRANSITIONS, OutboxMail
from app.models.payout_accounts import PayoutAccount
from app.models.payouts import PAYMENT_METHODS, PAYOUT_TRANSITIONS, Payout, PayoutApproval
from app.models.program import (
    PAYOUT_FREQUENCIES,
    MLMTier,
    ProgramTerms,
    ReferralProgramSettings,
)
from app.models.referrals import REFERRAL_TRANSITIONS, Referral
from app.models.sales import PROVIDERS, SALE_SOURCES, CustomerLink, Sale, SaleKey, WebhookEvent
from app.models.transitions import InvalidTransition, Transitions
from app.models.users import User

__all__ = [
    "COMMISSION_TRANSITIONS",
    "DIGEST_CATEGORIES",
    "FLAG_REASONS",
    "FLAG_TRANSITIONS",
    "LEDGER_KINDS",
    "MAIL_CATEGORIES",
    "OPTIONAL_CATEGORIES",
    "OUTBOX_TRANSITIONS",
    "PAYMENT_METHODS",
    "PAYOUT_FREQUENCIES",
    "PAYOUT_TRANSITIONS",
    "PROVIDERS",
    "REFERRAL_TRANSITIONS",
    "SALE_SOURCES",
    "ArchivedReferralClick",
    "ArchivedWebhookEvent",
    "AuditEntry",
    "BranchEarning",
    "Commission",
    "CommissionRollup",
    "CommissionRollupMonth",
    "CustomerLink",
    "DownlineCount",
    "InvalidTransition",
    "LedgerBucket",
    "LedgerEntry",
    "LedgerTotal",
    "MLMTier",
    "MailDigest",
    "MailNotice",
    "MailOptOut",
    "OutboxMail",
    "Payout",
    "PayoutAccount",
    "PayoutApproval",
    "ProgramTerms",
    "Referral",
    "ReferralClick",
    "ReferralFlag",
    "ReferralProgramSettings",
    "Sale",
    "SaleKey",
    "Transitions",
    "User",
    "WebhookEvent",
]
