"""A commission's receipt: where its money came from and went — the sale, the chain from
the buyer to the earner, the terms, every ledger entry, refunds, clawbacks and the payout
that carried it. Admins see any; an affiliate their own, without the buyer's email."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from app.extensions import db
from app.models import Commission, LedgerEntry, Payout, Referral, Sale, User
from app.services.money.commission_states import label, state_of


@dataclass(frozen=True)
class Receipt:
    commission: Commission
    earner: str
    sale: Sale
    buyer: str | None
    buyer_email: str | None  # for admins only
    # Buyer first, then each referrer up to the earner: (tier, username); tier 0 the buyer.
    path: list[tuple[int, str]]
    entries: list[LedgerEntry]
    payout: Payout | None

    @property
    def state(self) -> str:
        """The status as the affiliate reads it (``commission_states``), now."""
        return state_of(self.commission.status, self.commission.payable_at, datetime.now(UTC))

    @property
    def status_label(self) -> str:
        return label(self.commission.status, self.commission.payable_at, datetime.now(UTC))


def receipt(commission_id: str, *, owner_id: str | None = None) -> Receipt | None:
    """The commission's receipt; ``None`` when there is none, or when ``owner_id`` is given
    and it is not theirs (the affiliate's view: then without the buyer's email). Reads
    only: a few indexed lookups (the referral chain by ``(referred_user_id, tier)``)."""
    commission = db.session.get(Commission, commission_id)
    if commission is None or (owner_id is not None and commission.user_id != owner_id):
        return None
    sale = db.session.get(Sale, commission.sale_id)
    buyer = db.session.get(User, sale.buyer_id) if sale.buyer_id else None
    chain = db.session.execute(
        select(Referral.tier, User.username)
        .join(User, User.id == Referral.referrer_id)
        .where(Referral.referred_user_id == sale.buyer_id, Referral.tier <= commission.tier)
        .order_by(Referral.tier)
    )
    path = ([(0, buyer.username)] if buyer else []) + [tuple(row) for row in chain]
    entries = db.session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.commission_id == commission.id)
        .order_by(LedgerEntry.id)
    )
    return Receipt(
        commission=commission,
        earner=db.session.get(User, commission.user_id).username,
        sale=sale,
        buyer=buyer.username if buyer else None,
        buyer_email=buyer.email if buyer and owner_id is None else None,
        path=path,
        entries=list(entries),
        payout=db.session.get(Payout, commission.payout_id) if commission.payout_id else None,
    )
