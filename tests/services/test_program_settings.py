"""Program settings from the admin console: each field parsed and refused with a message,
rates exact, consequences counted before saving, every change audited with old and new."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.jobs.queueing import get_queue
from app.models import AuditEntry, MLMTier, ReferralProgramSettings
from app.services.network.referrals import backfill_referral_tiers
from app.services.program.program import get_settings
from app.services.program.settings import (
    SECTIONS,
    SettingsRefused,
    changes,
    consequences,
    parse_section,
    save_section,
    stored,
)
from tests.factories import make_chain, make_sale


def form_of(section: str, **overrides: str) -> dict[str, str]:
    """The section's form as the page shows it (stored values), with ``overrides``."""
    settings = get_settings()
    form = {f.name: stored(getattr(settings, f.name), f.kind) for f in SECTIONS[section][1]}
    form = {
        name: ("y" if value == "True" else "" if value == "False" else value)
        for name, value in form.items()
    }
    return {**form, **overrides}


def _row() -> dict[str, object]:
    db.session.expire_all()
    settings = get_settings()
    return {c.name: getattr(settings, c.name) for c in ReferralProgramSettings.__table__.columns}


def test_rates_are_percentages_stored_as_exact_fractions():
    values = parse_section("tiers", form_of("tiers", default_commission_rate="12.3456"))
    assert values["default_commission_rate"] == Decimal("0.123456")
    assert isinstance(values["default_commission_rate"], Decimal)
    assert parse_section("tiers", form_of("tiers", default_commission_rate="100"))[
        "default_commission_rate"
    ] == Decimal("1.000000")
    save_section(
        "tiers",
        parse_section("tiers", form_of("tiers", default_commission_rate="7.5")),
        actor_id=None,
    )
    db.session.commit()
    assert _row()["default_commission_rate"] == Decimal("0.075000")
    assert form_of("tiers")["default_commission_rate"] == "7.5"


BAD_INPUT = [
    ("tiers", "max_tier_level", "0"),
    ("tiers", "max_tier_level", "11"),
    ("tiers", "max_tier_level", "2.5"),
    ("tiers", "default_commission_rate", "100.01"),
    ("tiers", "default_commission_rate", "-1"),
    ("tiers", "default_commission_rate", "12.34567"),
    ("tiers", "default_commission_rate", "NaN"),
    ("tiers", "default_commission_rate", "ten"),
    ("commissions", "commission_base", "gross"),
    ("commissions", "max_recurring_payments", "0"),
    ("commissions", "attribution_window_days", "0"),
    ("commissions", "attribution_window_days", "366"),
    ("commissions", "currency", "US"),
    ("commissions", "currency", "€UR"),
    ("holds", "refund_window_days", "-1"),
    ("holds", "hold_days", "400"),
    ("holds", "hold_days", "10"),  # shorter than the 30-day refund window
    ("payouts", "min_payout_amount", "-5"),
    ("payouts", "min_payout_amount", "10.001"),
    ("payouts", "min_payout_amount", "Infinity"),
    ("payouts", "payout_frequency", "hourly"),
    ("payouts", "dual_approval_above", "abc"),
]


@pytest.mark.parametrize(("section", "field", "bad"), BAD_INPUT)
def test_every_setting_refuses_bad_input_with_a_message(section, field, bad):
    before = _row()
    with pytest.raises(SettingsRefused) as refused:
        parse_section(section, form_of(section, **{field: bad}))
    assert list(refused.value.errors) == [field]
    assert refused.value.errors[field]
    assert _row() == before


def test_a_save_audits_each_changed_field_with_old_and_new_values():
    values = parse_section(
        "payouts",
        form_of(
            "payouts",
            min_payout_amount="75.5",
            payouts_need_approval="y",
            dual_approval_above="1000",
        ),
    )
    changed = save_section("payouts", values, actor_id=None)
    db.session.commit()
    assert set(changed) == {"min_payout_amount", "payouts_need_approval", "dual_approval_above"}
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "program.settings_changed")
    ).one()
    assert entry.details == {
        "section": "payouts",
        "changes": {
            "min_payout_amount": {"old": "50.0000", "new": "75.5"},
            "payouts_need_approval": {"old": False, "new": True},
            "dual_approval_above": {"old": None, "new": "1000"},
        },
    }
    row = _row()
    assert row["min_payout_amount"] == Decimal("75.5")
    assert row["payouts_need_approval"] and row["dual_approval_above"] == Decimal(1000)


def test_saving_unchanged_values_changes_and_audits_nothing():
    for section in SECTIONS:
        assert save_section(section, parse_section(section, form_of(section)), actor_id=None) == {}
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_raising_the_max_tier_shows_exactly_the_rows_the_backfill_adds():
    make_chain(7)
    make_chain(4)
    values = parse_section("tiers", form_of("tiers", max_tier_level="5"))
    [note] = consequences(changes(values))
    save_section("tiers", values, actor_id=None)
    db.session.commit()
    assert [job.func_name for job in get_queue().jobs] == [
        "app.jobs.referrals.backfill_referral_tiers_job"
    ]
    added = backfill_referral_tiers()
    assert added == 5  # tier 4 for the 5th-7th of the chain of 7, tier 5 for the last two
    assert note == (
        f"Raising the max tier to 5 backfills {added} referral rows (tiers 4-5), in the background."
    )


def test_turning_mlm_off_says_which_tiers_stop():
    values = parse_section("tiers", form_of("tiers", is_mlm_enabled=""))
    assert consequences(changes(values)) == [
        "Turning MLM off stops tiers 2-3 on new sales: only direct referrers earn, at the "
        "default rate. Commissions already accrued stay."
    ]
    lowering = parse_section("tiers", form_of("tiers", max_tier_level="2"))
    assert consequences(changes(lowering)) == []


def test_the_currency_changes_only_before_the_first_sale():
    values = parse_section("commissions", form_of("commissions", currency="eur"))
    assert values["currency"] == "EUR"
    assert consequences(changes(values)) == []
    _root, buyer = make_chain(2)
    make_sale(buyer, "100.00")
    with pytest.raises(SettingsRefused) as refused:
        save_section("commissions", values, actor_id=None)
    assert "relabelled, not converted" in refused.value.errors["currency"]
    db.session.rollback()
    assert _row()["currency"] == "USD"


def test_the_cap_on_tier_rates_cannot_drop_below_what_the_active_tiers_pay():
    # Defaults: 10 + 5 + 2.5 = 17.5 % across tiers 1-3.
    with pytest.raises(SettingsRefused) as refused:
        save_section(
            "tiers",
            parse_section("tiers", form_of("tiers", max_total_tier_rate="17")),
            actor_id=None,
        )
    assert (
        "pay 17.5 % of a sale together, above the cap of 17 %"
        in (refused.value.errors["max_total_tier_rate"])
    )
    db.session.rollback()
    save_section(
        "tiers", parse_section("tiers", form_of("tiers", max_total_tier_rate="17.5")), actor_id=None
    )
    db.session.commit()
    assert _row()["max_total_tier_rate"] == Decimal("0.175")


def test_raising_the_max_tier_cannot_wake_tiers_past_the_cap():
    db.session.add(MLMTier(level=4, commission_rate=Decimal("0.4"), is_active=True))
    db.session.commit()
    with pytest.raises(SettingsRefused) as refused:
        consequences(changes(parse_section("tiers", form_of("tiers", max_tier_level="4"))))
    assert "above the cap of 50 %" in refused.value.errors["max_tier_level"]
