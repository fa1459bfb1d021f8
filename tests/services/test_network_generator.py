"""The network generator: the shape asked for, and the same derived rows registration writes."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from app.extensions import db
from app.models import MailNotice, Referral, User
from app.services.network.network_generator import AlreadyGenerated, generate_network
from app.services.network.referrals import backfill_referral_tiers
from tests.factories import make_chain, make_user
from tests.services.test_downline import assert_counts_exact


def test_generated_network_has_exact_counts_and_full_referral_chains():
    top, anchor = make_chain(2)
    network = generate_network(3_000, attach_to=anchor, seed=7)
    db.session.commit()
    assert network.users == 3_000
    assert db.session.scalar(select(func.count()).select_from(User)) == 3_002
    assert network.max_depth == 30  # levels below the attachment point, the cap
    assert network.largest_fan_out > 100
    assert_counts_exact()  # includes the real uplines above the attachment point
    # Referral rows are what the backfill would write: nothing is missing.
    before = db.session.scalar(select(func.count()).select_from(Referral))
    assert before == network.referrals + 1
    assert backfill_referral_tiers() == 0
    tiers = db.session.execute(
        text("SELECT tier, count(*) FROM referrals WHERE referrer_id = :id GROUP BY 1 ORDER BY 1"),
        {"id": top.id},
    ).all()
    assert [tier for tier, _ in tiers] == [1, 2, 3]
    # Generated members are no news: only the anchor's own sign-up waits for a digest.
    notices = db.session.scalars(select(MailNotice.referred_user_id)).all()
    assert notices == [anchor.id]


def test_generator_runs_once_per_database():
    (anchor,) = make_chain(1)
    generate_network(10, attach_to=anchor)
    db.session.commit()
    with pytest.raises(AlreadyGenerated):
        generate_network(10, attach_to=anchor)


def test_registration_counts_again_after_generation():
    (anchor,) = make_chain(1)
    generate_network(50, attach_to=anchor)
    db.session.commit()
    joined = make_user(referrer=db.session.get(User, "gen49"))
    assert_counts_exact()
    # The mail notices' trigger is back on too.
    assert db.session.scalars(select(MailNotice.referred_user_id)).all() == [joined.id]
