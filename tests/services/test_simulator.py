"""The what-if simulator: figures equal a hand-computed case, and it writes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import AuditEntry, Commission, LedgerEntry, MLMTier, Referral, Sale, User
from app.services.program.settings import MAX_TIER_LEVEL
from app.services.program.simulator import parse_draft, simulate
from app.services.program.tiers import TierRefused
from tests.factories import make_chain, make_sale, set_program

pytestmark = pytest.mark.usefixtures("ledger_holds")


def _counts() -> tuple:
    models = (Commission, LedgerEntry, Referral, Sale, AuditEntry)
    counts = [db.session.scalar(select(func.count()).select_from(m)) for m in models]
    return (*counts, db.session.scalar(select(func.sum(LedgerEntry.amount))))


def test_the_replay_equals_a_hand_computed_case_and_writes_nothing():
    a, b, c, d = make_chain(4)
    make_sale(d, "200.00", days_ago=5)  # pays C 20.00, B 10.00, A 5.00 (10 / 5 / 2.5 %)
    make_sale(d, "100.00", days_ago=60)  # outside the 30-day window, inside the 90-day one
    before = _counts()
    draft = {1: Decimal("0.12"), 2: Decimal("0.04"), 3: Decimal("0.033333")}
    result = simulate(draft, 3, 30)
    assert [(t.label, t.today, t.draft) for t in result.tiers] == [
        ("Tier 1", Decimal("20.0000"), Decimal("24.00")),
        ("Tier 2", Decimal("10.0000"), Decimal("8.00")),
        ("Tier 3", Decimal("5.0000"), Decimal("6.67")),  # 6.6666 rounded half up
    ]
    assert (result.total.today, result.total.draft) == (Decimal(35), Decimal("38.67"))
    assert result.revenue == Decimal(200)
    assert result.share(result.total.draft) == Decimal("19.34")
    assert [(a.label, a.change) for a in result.affiliates] == [
        (c.username, Decimal(4)),
        (b.username, Decimal(-2)),
        (a.username, Decimal("1.67")),
    ]
    # A lower max tier and a tier without a rate: tier 3 pays nothing, tier 1 the default.
    lower = simulate({2: Decimal("0.05")}, 2, 90)
    assert [(t.label, t.today, t.draft) for t in lower.tiers] == [
        ("Tier 1", Decimal(30), Decimal("30.00")),
        ("Tier 2", Decimal(15), Decimal("15.00")),
        ("Tier 3", Decimal("7.5"), Decimal(0)),
    ]
    assert lower.revenue == Decimal(300)
    assert _counts() == before


def test_with_mlm_off_only_tier_one_earns_at_the_default_rate():
    _a, _b, _c, d = make_chain(4)
    make_sale(d, "200.00", days_ago=1)
    set_program(is_mlm_enabled=False)
    result = simulate({1: Decimal("0.5"), 2: Decimal("0.5")}, 3, 30)
    assert result.total.draft == Decimal("20.00")


def _suspend(*users: User, suspended: bool = True) -> None:
    for user in users:
        user.is_suspended = suspended
    db.session.commit()


def test_sales_missing_a_tier_one_commission_replay_sale_by_sale():
    """A sale accrued while the direct referrer was suspended has no tier-1 commission: the
    buyer's draft is summed sale by sale (the direct referrer, active again, earns on it); a
    sale that accrued nothing stays out of the replay, but in the revenue."""
    a, b, c, d = make_chain(4)
    _suspend(c)
    make_sale(d, "100.00", days_ago=3)  # B 5.00, A 2.50; C suspended
    _suspend(a, b)
    make_sale(d, "30.00", days_ago=2)  # nobody earns
    _suspend(a, b, c, suspended=False)
    make_sale(d, "50.00", days_ago=1)  # C 5.00, B 2.50, A 1.25
    result = simulate({1: Decimal("0.20"), 2: Decimal("0.10"), 3: Decimal("0.05")}, 3, 30)
    assert [(t.label, t.today, t.draft) for t in result.tiers] == [
        ("Tier 1", Decimal(5), Decimal(30)),  # C: 20.00 + 10.00
        ("Tier 2", Decimal("7.5"), Decimal(15)),
        ("Tier 3", Decimal("3.75"), Decimal("7.5")),
    ]
    assert result.revenue == Decimal(180)
    assert result.share(result.total.draft) == Decimal("29.17")
    assert [(line.label, line.change) for line in result.affiliates] == [
        (c.username, Decimal(25)),
        (b.username, Decimal("7.5")),
        (a.username, Decimal("3.75")),
    ]


def test_suspended_affiliates_and_cancelled_referrals_earn_nothing_in_the_draft():
    a, b, _c, d = make_chain(4)
    make_sale(d, "100.00", days_ago=1)  # C 10.00, B 5.00, A 2.50
    _suspend(b)
    db.session.execute(
        update(Referral).where(Referral.referrer_id == a.id).values(status="cancelled")
    )
    db.session.commit()
    result = simulate({1: Decimal("0.10"), 2: Decimal("0.05"), 3: Decimal("0.025")}, 3, 30)
    assert [(t.label, t.today, t.draft) for t in result.tiers] == [
        ("Tier 1", Decimal(10), Decimal(10)),
        ("Tier 2", Decimal(5), Decimal(0)),
        ("Tier 3", Decimal("2.5"), Decimal(0)),
    ]
    assert [line.label for line in result.affiliates] == [b.username, a.username]


def test_tiers_deeper_than_the_settings_allow_are_still_counted():
    """A max tier above MAX_TIER_LEVEL (set in the database) left commissions that deep:
    today's figures include them (the statement runs again that deep)."""
    set_program(max_tier_level=MAX_TIER_LEVEL + 2)
    db.session.add_all(
        MLMTier(level=level, commission_rate=Decimal("0.01"), is_active=True)
        for level in (MAX_TIER_LEVEL + 1, MAX_TIER_LEVEL + 2)
    )
    db.session.commit()
    chain = make_chain(MAX_TIER_LEVEL + 3)
    make_sale(chain[-1], "100.00", days_ago=1)
    set_program(max_tier_level=3)
    result = simulate({1: Decimal("0.10"), 2: Decimal("0.05"), 3: Decimal("0.025")}, 3, 30)
    deep = [(t.label, t.today, t.draft) for t in result.tiers][3:]
    assert deep == [
        (f"Tier {MAX_TIER_LEVEL + 1}", Decimal(1), Decimal(0)),
        (f"Tier {MAX_TIER_LEVEL + 2}", Decimal(1), Decimal(0)),
    ]
    assert result.total.today == Decimal("19.5")


def test_bad_drafts_are_refused_field_by_field():
    with pytest.raises(TierRefused) as refused:
        parse_draft({"max_tier": "0", "days": "7", "rate_1": "101", "rate_2": "5"}, 3)
    assert set(refused.value.errors) == {"max_tier", "days", "rate_1"}
    assert parse_draft({"max_tier": "2", "days": "90", "rate_1": "7.5", "rate_3": ""}, 3) == (
        {1: Decimal("0.075")},
        2,
        90,
    )
