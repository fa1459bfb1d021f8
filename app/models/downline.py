"""Precomputed downline figures, kept current by database triggers (migration 0004).

Counting a subtree with a recursive query costs 100+ ms at a million users; these tables
answer "how many below this node, per level" and "how much has this earner made from that
branch" with a handful of index lookups, whatever the network's size. The application never
writes them: the triggers do, in the same transaction as the row that changes them, so the
figures are exact under concurrency.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID_LENGTH, Base, Money


class DownlineCount(Base):
    """How many users sit exactly ``depth`` levels below ``user_id`` (1 = direct referrals)."""

    __tablename__ = "downline_counts"

    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    depth: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    members: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        CheckConstraint("depth >= 1", name="depth_positive"),
        CheckConstraint("members >= 0", name="members_non_negative"),
    )


class BranchEarning(Base):
    """What ``earner_id`` has earned (non-cancelled commissions) from ``member_id``'s branch.

    A commission from a sale by user B at tier t is added to B and to B's uplines below the
    earner: every node whose branch contains B, at most max-tier rows per commission.
    """

    __tablename__ = "branch_earnings"

    earner_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    amount: Mapped[Decimal] = mapped_column(Money)
