"""The tier editor's rules: levels within the max tier, rates 0-100 % stored exactly, the cap
on the active tiers' rates together refused, a deeper tier paying more warned, audited."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, MLMTier
from app.services.program.tiers import (
    TierRefused,
    add_tier,
    parse_tier,
    set_tier_active,
    update_tier,
)
from tests.factories import set_program


def _tier(level: int) -> MLMTier:
    db.session.expire_all()
    return db.session.scalars(select(MLMTier).where(MLMTier.level == level)).one()


def _audits(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"level": "0", "commission_rate": "1"}, "level"),
        ({"level": "4", "commission_rate": "1"}, "level"),  # the max tier is 3
        ({"level": "x", "commission_rate": "1"}, "level"),
        ({"level": "2", "commission_rate": "100.5"}, "commission_rate"),
        ({"level": "2", "commission_rate": "-0.1"}, "commission_rate"),
        ({"level": "2", "commission_rate": ""}, "commission_rate"),
        ({"level": "2", "commission_rate": "1", "description": "x" * 501}, "description"),
    ],
)
def test_bad_tier_input_is_refused_with_a_message(form, field):
    with pytest.raises(TierRefused) as refused:
        parse_tier(form, with_level=True)
    assert list(refused.value.errors) == [field]


def test_an_edit_stores_the_exact_rate_and_audits_old_and_new():
    tier = _tier(2)
    values = parse_tier({"commission_rate": "6.25", "description": "Second"}, with_level=False)
    assert update_tier(tier, values, actor_id=None) == []
    db.session.commit()
    assert _tier(2).commission_rate == Decimal("0.0625")
    [entry] = _audits("program.tier_changed")
    assert entry.subject_id == tier.id and entry.details["level"] == 2
    assert entry.details["changes"] == {
        "commission_rate": {"old": "0.050000", "new": "0.062500"},
        "description": {
            "old": "Second tier: people your direct referrals brought in.",
            "new": "Second",
        },
    }


def test_the_sum_of_active_rates_above_the_cap_is_refused():
    # 10 + 5 + 2.5 = 17.5 %; tier 2 at 37.5 % makes exactly 50 % (allowed), 37.5001 % not.
    values = parse_tier({"commission_rate": "37.5001"}, with_level=False)
    with pytest.raises(TierRefused) as refused:
        update_tier(_tier(2), values, actor_id=None)
    assert (
        "50.0001 % of a sale together, above the cap of 50 %"
        in (refused.value.errors["commission_rate"])
    )
    db.session.rollback()
    assert _tier(2).commission_rate == Decimal("0.05") and not _audits("program.tier_changed")
    update_tier(_tier(2), parse_tier({"commission_rate": "37.5"}, with_level=False), actor_id=None)
    db.session.commit()
    assert _tier(2).commission_rate == Decimal("0.375")


def test_the_cap_is_a_setting():
    set_program(max_total_tier_rate=Decimal("0.2"))
    with pytest.raises(TierRefused):
        update_tier(
            _tier(3), parse_tier({"commission_rate": "5.1"}, with_level=False), actor_id=None
        )


def test_a_deeper_tier_paying_more_is_saved_with_a_warning():
    notes = update_tier(
        _tier(3), parse_tier({"commission_rate": "6"}, with_level=False), actor_id=None
    )
    db.session.commit()
    assert notes == ["Tier 3 pays more (6 %) than tier 2 (5 %) above it."]
    assert _tier(3).commission_rate == Decimal("0.06")


def test_deactivating_and_reactivating_within_the_cap():
    set_tier_active(_tier(2), False, actor_id=None)
    db.session.commit()
    assert not _tier(2).is_active
    # With tier 2 off, tier 3 may rise to 40 % (10 + 40 = 50); tier 2 cannot then return.
    update_tier(_tier(3), parse_tier({"commission_rate": "40"}, with_level=False), actor_id=None)
    db.session.commit()
    with pytest.raises(TierRefused):
        set_tier_active(_tier(2), True, actor_id=None)
    db.session.rollback()
    assert not _tier(2).is_active
    assert [e.details["changes"] for e in _audits("program.tier_deactivated")] == [
        {"is_active": {"old": True, "new": False}}
    ]


def test_adding_a_tier_at_a_free_level_within_the_max_tier():
    set_program(max_tier_level=4)
    _tier_added, notes = add_tier(
        parse_tier({"level": "4", "commission_rate": "1"}, with_level=True), actor_id=None
    )
    db.session.commit()
    assert notes == [] and _tier(4).commission_rate == Decimal("0.01")
    assert _audits("program.tier_added")[0].details["changes"]["commission_rate"] == {
        "old": None,
        "new": "0.010000",
    }
    with pytest.raises(TierRefused) as refused:
        add_tier(parse_tier({"level": "4", "commission_rate": "1"}, with_level=True), actor_id=None)
    assert "exists" in refused.value.errors["level"]
