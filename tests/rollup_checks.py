"""The earnings rollups' check: equal to a recount, and every figure read from them equal to
the commission rows' own (for the tests of the rollups and their Hypothesis histories)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app.extensions import db
from app.models import User
from app.money import minor_units
from app.services.money.commission_listing import (
    CommissionFilters,
    commission_totals,
    monthly_earnings,
)
from app.services.money.commission_rollups import differences

TODAY = datetime.now(UTC).date()
FILTERS = (
    CommissionFilters(),
    CommissionFilters(tier=2),
    CommissionFilters(state="cancelled"),
    CommissionFilters(state="paid", tier=1),
    CommissionFilters(state="held"),
    CommissionFilters(status="pending"),
    CommissionFilters(since=TODAY - timedelta(days=40)),
    CommissionFilters(until=TODAY - timedelta(days=1)),
    CommissionFilters(since=TODAY - timedelta(days=400), until=TODAY - timedelta(days=35)),
)


CURRENCY = "SELECT currency FROM referral_program_settings"


def assert_rollups_exact(
    users: list[User] | None = None, filters: tuple[CommissionFilters, ...] = FILTERS
) -> None:
    """The rollups equal a recount, and every figure read from them equals the rows' own."""
    assert differences() == []
    for user_id in [u.id for u in users or []] + [None]:
        minor = minor_units(db.session.scalar(text(CURRENCY)))
        for one in filters:
            assert commission_totals(user_id, one, minor) == commission_totals(
                user_id, one, minor, from_rows=True
            )
            assert monthly_earnings(user_id, one) == monthly_earnings(user_id, one, from_rows=True)
