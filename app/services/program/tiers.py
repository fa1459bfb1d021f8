"""Editing the MLM tier table from the admin console, within the program's guardrails.

Guardrails (README, "Commission rules"): a tier's level is 1 to the max tier and its rate
0 to 100 %; the active tiers that pay (levels up to the max tier) may not add up to more than the
program's cap (``max_total_tier_rate``, default 50 %): such a change is refused. A deeper tier
paying more than the nearest active tier above it is allowed but warned about. Every change
is audited with its old and new values. Each change locks the settings row first, so two
admins editing at once cannot each stay under the cap and together exceed it."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from app.extensions import db
from app.models import MLMTier, ReferralProgramSettings
from app.services.ops import audit
from app.services.program.rates import is_whole, percent, percent_text

MAX_DESCRIPTION_LENGTH = 500


class TierRefused(Exception):
    """Bad input or a broken guardrail: ``errors`` maps each field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def _locked_settings() -> ReferralProgramSettings:
    return db.session.execute(
        select(ReferralProgramSettings).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()


def active_rates(max_tier: int, changed: MLMTier | None = None) -> dict[int, Decimal]:
    """level -> rate of the active tiers that pay (up to ``max_tier``), ``changed`` as edited."""
    tiers = db.session.scalars(select(MLMTier).where(MLMTier.level <= max_tier))
    rates = {t.level: t.commission_rate for t in tiers if t.is_active}
    if changed is not None:
        rates.pop(changed.level, None)
        if changed.is_active and changed.level <= max_tier:
            rates[changed.level] = changed.commission_rate
    return rates


def cap_problem(rates: dict[int, Decimal], cap: Decimal) -> str | None:
    """Why these active rates break the cap on their sum, or None."""
    total = sum(rates.values(), Decimal(0))
    if total > cap:
        return (
            f"The active tiers would pay {percent_text(total)} % of a sale together, above the "
            f"cap of {percent_text(cap)} %: lower a rate or deactivate a tier first."
        )
    return None


def warnings(rates: dict[int, Decimal]) -> list[str]:
    """A deeper tier paying more than the nearest active tier above it: allowed, but it
    rewards recruiting deep networks over selling, so the admin is told."""
    notes, above = [], None
    for level in sorted(rates):
        if above is not None and rates[level] > rates[above]:
            notes.append(
                f"Tier {level} pays more ({percent_text(rates[level])} %) than tier {above} "
                f"({percent_text(rates[above])} %) above it."
            )
        above = level
    return notes


def parse_tier(form: dict[str, str], *, with_level: bool) -> dict[str, object]:
    """Level (when adding), rate and description from a form; ``TierRefused`` lists every
    bad field. The level must be within the max tier."""
    errors, values = {}, {}
    if with_level:
        max_tier = db.session.scalar(select(ReferralProgramSettings.max_tier_level))
        raw = form.get("level", "").strip()
        if not is_whole(raw) or not 1 <= int(raw) <= max_tier:
            errors["level"] = f"A level from 1 to the max tier, {max_tier}."
        else:
            values["level"] = int(raw)
    try:
        values["commission_rate"] = percent(form.get("commission_rate", ""))
    except ValueError as problem:
        errors["commission_rate"] = str(problem)
    description = form.get("description", "").strip()
    if len(description) > MAX_DESCRIPTION_LENGTH:
        errors["description"] = f"Use at most {MAX_DESCRIPTION_LENGTH} characters."
    values["description"] = description or None
    if errors:
        raise TierRefused(errors)
    return values


def _check(settings: ReferralProgramSettings, tier: MLMTier) -> list[str]:
    rates = active_rates(settings.max_tier_level, tier)
    if problem := cap_problem(rates, settings.max_total_tier_rate):
        raise TierRefused({"commission_rate": problem})
    return warnings(rates)


def _state(tier: MLMTier) -> dict[str, object]:
    return {
        "commission_rate": str(tier.commission_rate),
        "description": tier.description,
        "is_active": tier.is_active,
    }


def _audit(action: str, tier: MLMTier, before: dict | None, actor_id: str | None) -> None:
    after = _state(tier)
    audit.record(
        action,
        actor_id=actor_id,
        subject_type="mlm_tier",
        subject_id=tier.id,
        level=tier.level,
        changes={
            name: {"old": (before or {}).get(name), "new": value}
            for name, value in after.items()
            if before is None or before[name] != value
        },
    )


def update_tier(tier: MLMTier, values: dict, *, actor_id: str | None) -> list[str]:
    """Change a tier's rate and description. Refuses (``TierRefused``, nothing changed once
    rolled back) what breaks the cap; returns the warnings. Audited; flushes."""
    settings = _locked_settings()
    db.session.refresh(tier, with_for_update=True)
    before = _state(tier)
    tier.commission_rate = values["commission_rate"]
    tier.description = values["description"]
    notes = _check(settings, tier)
    if _state(tier) != before:
        _audit("program.tier_changed", tier, before, actor_id)
    db.session.flush()
    return notes


def add_tier(values: dict, *, actor_id: str | None) -> tuple[MLMTier, list[str]]:
    """Add an active tier at a free level (``TierRefused`` when taken or over the cap)."""
    settings = _locked_settings()
    if db.session.scalar(select(MLMTier.id).where(MLMTier.level == values["level"])):
        raise TierRefused({"level": f"Tier {values['level']} exists: edit it instead."})
    tier = MLMTier(is_active=True, **values)
    notes = _check(settings, tier)
    db.session.add(tier)
    db.session.flush()
    _audit("program.tier_added", tier, None, actor_id)
    return tier, notes


def set_tier_active(tier: MLMTier, active: bool, *, actor_id: str | None) -> list[str]:
    """Deactivate (it pays nothing on new sales) or reactivate a tier (within the cap)."""
    settings = _locked_settings()
    db.session.refresh(tier, with_for_update=True)
    if tier.is_active == active:
        return warnings(active_rates(settings.max_tier_level))
    before = _state(tier)
    tier.is_active = active
    notes = _check(settings, tier)
    _audit(
        "program.tier_reactivated" if active else "program.tier_deactivated", tier, before, actor_id
    )
    db.session.flush()
    return notes
