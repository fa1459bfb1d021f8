"""The payouts page names the day of the next scheduled payout."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from app.extensions import db
from app.models import ReferralProgramSettings
from app.services.payouts.schedule import next_run
from tests.conftest import log_in
from tests.factories import make_user


def test_the_page_shows_the_next_scheduled_payout(client):
    db.session.execute(update(ReferralProgramSettings).values(payout_frequency="weekly"))
    db.session.commit()
    log_in(client, make_user().email)
    for headers in ({}, {"HX-Request": "true"}):
        html = client.get("/payouts", headers=headers).get_data(as_text=True)
        day = next_run(datetime.now(UTC), "weekly").isoformat()
        assert f'data-term="next-scheduled"><time datetime="{day}">{day}</time>' in html
