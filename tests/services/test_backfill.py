"""Raising the max tier backfills the missing referral rows, idempotently."""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.jobs.queueing import get_queue
from app.jobs.referrals import backfill_referral_tiers_job
from app.models import Referral
from app.services.program.program import get_settings, set_max_tier_level
from tests.factories import make_chain


def _tiers_of(user_id: str) -> list[int]:
    return list(
        db.session.scalars(
            select(Referral.tier)
            .where(Referral.referred_user_id == user_id)
            .order_by(Referral.tier)
        )
    )


def test_raising_the_max_tier_enqueues_a_backfill_that_fills_every_chain():
    chain = make_chain(7)
    assert _tiers_of(chain[-1].id) == [1, 2, 3]
    set_max_tier_level(5, actor_id=None)
    db.session.commit()
    assert [job.func_name for job in get_queue().jobs] == [
        "app.jobs.referrals.backfill_referral_tiers_job"
    ]
    added = backfill_referral_tiers_job()
    assert _tiers_of(chain[-1].id) == [1, 2, 3, 4, 5]
    assert _tiers_of(chain[4].id) == [1, 2, 3, 4]
    referrers = db.session.scalars(
        select(Referral.referrer_id)
        .where(Referral.referred_user_id == chain[-1].id)
        .order_by(Referral.tier)
    )
    assert list(referrers) == [u.id for u in reversed(chain[1:6])]
    total = db.session.scalar(select(func.count()).select_from(Referral))
    assert backfill_referral_tiers_job() == 0  # a second run adds nothing
    assert db.session.scalar(select(func.count()).select_from(Referral)) == total
    assert added == total - 15  # 1+2+3*4 rows existed before


def test_lowering_the_max_tier_enqueues_nothing():
    make_chain(3)
    set_max_tier_level(2, actor_id=None)
    db.session.commit()
    assert get_queue().count == 0
    assert get_settings().max_tier_level == 2
