"""Program configuration: the settings row and the MLM tier table."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from app.extensions import db
from app.models import MLMTier, ReferralProgramSettings
from app.models.base import new_id
from app.services.program.terms import seed_first_terms

DEFAULT_TIERS = (
    (1, Decimal("0.100000"), "Direct referrals: people who joined through your own link."),
    (2, Decimal("0.050000"), "Second tier: people your direct referrals brought in."),
    (3, Decimal("0.025000"), "Third tier: people brought in by your second tier."),
)
DEFAULT_SETTINGS = {
    "max_tier_level": 3,
    "min_payout_amount": Decimal("50.00"),
    "payout_frequency": "monthly",
    "is_mlm_enabled": True,
    "default_commission_rate": Decimal("0.100000"),
}


def get_settings() -> ReferralProgramSettings:
    """The one settings row (the database guarantees there is exactly one once seeded)."""
    return db.session.execute(select(ReferralProgramSettings)).scalar_one()


def set_max_tier_level(level: int, *, actor_id: str | None) -> None:
    """Change the max tier; raising it enqueues the referral backfill after commit. Audited."""
    from app.services.ops import audit

    settings = get_settings()
    previous = settings.max_tier_level
    settings.max_tier_level = level
    audit.record(
        "settings.max_tier_changed",
        actor_id=actor_id,
        subject_type="settings",
        subject_id=settings.id,
        before=previous,
        after=level,
    )
    enqueue_backfill_if_raised(previous, level)
    db.session.flush()


def enqueue_backfill_if_raised(previous: int, level: int) -> None:
    """A raised max tier needs referral rows for the new tiers: the backfill runs after commit."""
    # Imported here: the job module imports the referral services, which import this one.
    from app.jobs.queueing import enqueue_after_commit
    from app.jobs.referrals import backfill_referral_tiers_job

    if level > previous:
        enqueue_after_commit(backfill_referral_tiers_job)


def list_tiers() -> list[MLMTier]:
    return list(db.session.execute(select(MLMTier).order_by(MLMTier.level)).scalars())


def seed_program_defaults() -> None:
    """Insert the default settings row, tiers and first terms where missing. Idempotent;
    never overwrites."""
    db.session.execute(
        insert(ReferralProgramSettings)
        .values(id=new_id(), **DEFAULT_SETTINGS)
        .on_conflict_do_nothing(index_elements=["singleton"])
    )
    for level, rate, description in DEFAULT_TIERS:
        db.session.execute(
            insert(MLMTier)
            .values(
                id=new_id(),
                level=level,
                commission_rate=rate,
                description=description,
            )
            .on_conflict_do_nothing(index_elements=["level"])
        )
    seed_first_terms()
    db.session.flush()
