"""A commission's status as an affiliate reads it, from its real status and its payable date.

The stored statuses say what the program did (``pending`` until paid, ``held`` for review);
an affiliate wants to know when the money is theirs. A pending commission is "in hold until
<payable date>" while its hold period runs and "available" once it is over, as the dashboard's
balances count it (ledger entries are available from the same ``payable_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_

from app.models import Commission

IN_HOLD, AVAILABLE, HELD, PAID, CANCELLED = "in_hold", "available", "held", "paid", "cancelled"


@dataclass(frozen=True)
class State:
    key: str
    name: str  # as a filter choice and in the legend
    meaning: str  # the legend's explanation


STATES = (
    State(IN_HOLD, "In hold", "The sale's hold period (counted from the sale date) is not over; "
          "a refund in that time reduces or cancels it"),
    State(AVAILABLE, "Available", "The hold period is over: it counts in your available balance "
          "and goes into your next payout"),
    State(HELD, "Held for review", "The sale or sign-up was flagged; an admin releases it "
          "(back to the hold period or available) or cancels it"),
    State(PAID, "Paid", "Sent to you in a payout; a later refund is taken back from a later "
          "payout (clawed back)"),
    State(CANCELLED, "Cancelled", "Refunded in full, lost in a dispute, or cancelled by an admin: "
          "it earns nothing"),
)  # fmt: skip


def state_of(status: str, payable_at: datetime, now: datetime) -> str:
    """The affiliate's status of a commission with this stored status and payable date."""
    if status == "pending":
        return IN_HOLD if payable_at > now else AVAILABLE
    return status


def label(status: str, payable_at: datetime, now: datetime) -> str:
    """``"in hold until 2026-12-31"``, ``"available"``, ``"held for review"``, ..."""
    state = state_of(status, payable_at, now)
    if state == IN_HOLD:
        return f"in hold until {payable_at:%Y-%m-%d}"
    return next(s.name for s in STATES if s.key == state).lower()


def where_state(state: str, now: datetime) -> ColumnElement[bool]:
    """The SQL condition for commissions in ``state`` (a key of ``STATES``) at ``now``."""
    if state == IN_HOLD:
        return and_(Commission.status == "pending", Commission.payable_at > now)
    if state == AVAILABLE:
        return and_(Commission.status == "pending", Commission.payable_at <= now)
    return Commission.status == state
