"""The what-if simulator: figures equal a hand-computed case, and it writes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Commission, LedgerEntry, Referral, Sale
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


def test_bad_drafts_are_refused_field_by_field():
    with pytest.raises(TierRefused) as refused:
        parse_draft({"max_tier": "0", "days": "7", "rate_1": "101", "rate_2": "5"}, 3)
    assert set(refused.value.errors) == {"max_tier", "days", "rate_1"}
    assert parse_draft({"max_tier": "2", "days": "90", "rate_1": "7.5", "rate_3": ""}, 3) == (
        {1: Decimal("0.075")},
        2,
        90,
    )
