"""One user as an admin sees them: upline, balances, recent commissions and payouts, fraud
flags and the audit entries about them; each part from the service that owns it."""

from __future__ import annotations

from dataclasses import dataclass

from app.extensions import db
from app.models import AuditEntry, Payout, ReferralFlag, User
from app.services.money.commission_listing import (
    CommissionFilters,
    CommissionPage,
    list_commissions,
)
from app.services.money.fraud import flags_about
from app.services.money.ledger import Balances, balances
from app.services.network.referrals import upline_path
from app.services.ops.audit import entries_about
from app.services.payouts.payouts import history

RECENT = 20


@dataclass(frozen=True)
class UserProfile:
    user: User
    upline: list[tuple[str, str, int]]  # (id, username, tier), nearest first
    balances: Balances
    commissions: CommissionPage
    payouts: list[Payout]
    flags: list[tuple[ReferralFlag, str, str]]  # (flag, buyer, referrer)
    audit: list[AuditEntry]


def user_profile(user_id: str) -> UserProfile | None:
    """The user's profile, or ``None`` when there is no such user. Reads only."""
    user = db.session.get(User, user_id)
    if user is None:
        return None
    return UserProfile(
        user=user,
        upline=upline_path(user.id),
        balances=balances(user.id),
        commissions=list_commissions(user.id, CommissionFilters()),
        payouts=history(user.id, RECENT),
        flags=flags_about(user.id),
        audit=entries_about("user", user.id),
    )
