"""Every allowed status change is accepted, and every other one is refused."""

from __future__ import annotations

import itertools

import pytest

from app.models import (
    COMMISSION_TRANSITIONS,
    FLAG_TRANSITIONS,
    PAYOUT_TRANSITIONS,
    REFERRAL_TRANSITIONS,
    Commission,
    InvalidTransition,
    Payout,
    Referral,
    ReferralFlag,
)

EXPECTED = {
    "referral": (
        Referral,
        REFERRAL_TRANSITIONS,
        {("pending", "completed"), ("pending", "cancelled"), ("completed", "cancelled")},
    ),
    "commission": (
        Commission,
        COMMISSION_TRANSITIONS,
        {
            ("pending", "paid"),
            ("pending", "cancelled"),
            ("held", "pending"),
            ("held", "cancelled"),
            ("paid", "pending"),
        },
    ),
    "referral flag": (
        ReferralFlag,
        FLAG_TRANSITIONS,
        {("open", "cleared"), ("open", "confirmed")},
    ),
    "payout": (
        Payout,
        PAYOUT_TRANSITIONS,
        {
            ("awaiting_approval", "pending"),
            ("awaiting_approval", "on_hold"),
            ("awaiting_approval", "failed"),
            ("on_hold", "awaiting_approval"),
            ("on_hold", "pending"),
            ("on_hold", "failed"),
            ("pending", "processing"),
            ("pending", "on_hold"),
            ("pending", "failed"),
            ("processing", "completed"),
            ("processing", "failed"),
            ("processing", "pending"),
            ("completed", "reversed"),
        },
    ),
}

CASES = [
    (name, old, new, (old, new) in allowed)
    for name, (_, table, allowed) in EXPECTED.items()
    for old, new in itertools.product(sorted(table.statuses), repeat=2)
]


@pytest.mark.parametrize(("name", "old", "new", "allowed"), CASES)
def test_transition_table(name, old, new, allowed):
    model, _, _ = EXPECTED[name]
    obj = model(status=old)
    if allowed:
        # A payout fails only with a reason (tests/services/test_payouts.py).
        obj.transition_to(new, **({"reason": "why"} if new == "failed" else {}))
        assert obj.status == new
    else:
        with pytest.raises(InvalidTransition, match=f"cannot go from '{old}' to '{new}'"):
            obj.transition_to(new)
        assert obj.status == old


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_unknown_status_is_refused(name):
    model, _, _ = EXPECTED[name]
    obj = model(status=sorted(EXPECTED[name][1].statuses)[0])
    with pytest.raises(InvalidTransition, match="unknown status 'approved'"):
        obj.transition_to("approved")


def test_statuses_match_the_seed():
    """The seed's statuses, plus "held" for commissions of flagged referrals (issue 6) and
    approval, hold and reversal for payouts (issue 11)."""
    assert REFERRAL_TRANSITIONS.statuses == {"pending", "completed", "cancelled"}
    assert COMMISSION_TRANSITIONS.statuses == {"pending", "held", "paid", "cancelled"}
    assert PAYOUT_TRANSITIONS.statuses == {"pending", "processing", "completed", "failed"} | {
        "awaiting_approval",
        "on_hold",
        "reversed",
    }
