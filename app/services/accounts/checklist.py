"""The first-session guide: the dashboard's checklist for a new affiliate (copy the link,
share it, set up payouts, read the program terms), each step ticked from what really
happened, never from a click on the checklist itself (except "copied", which only the
affiliate can tell: the copy button records it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import exists, or_, select

from app.extensions import db
from app.models import ArchivedReferralClick, ReferralClick, User
from app.services.payouts.payouts import ready_methods
from app.services.program.terms import needs_acceptance


@dataclass(frozen=True)
class Step:
    key: str
    done: bool


@dataclass(frozen=True)
class Checklist:
    steps: tuple[Step, ...]

    @property
    def is_done(self) -> bool:
        return all(step.done for step in self.steps)

    @property
    def done_count(self) -> int:
        return sum(step.done for step in self.steps)

    def __getitem__(self, key: str) -> Step:
        return next(step for step in self.steps if step.key == key)


def checklist(user: User) -> Checklist:
    """The steps and whether each is done: copied (the copy button said so), shared (a
    visit through the link was counted, archived or not), payouts (an account that can be
    paid now, ``PayoutAccount.is_ready``: a Stripe account whose onboarding was left or that
    Stripe will not pay yet does not count), terms (the version in force is accepted)."""
    shared = db.session.scalar(
        select(
            or_(
                exists().where(ReferralClick.referrer_id == user.id),
                exists().where(ArchivedReferralClick.referrer_id == user.id),
            )
        )
    )
    return Checklist(
        (
            Step("copy", user.link_copied_at is not None),
            Step("share", bool(shared)),
            Step("payouts", bool(ready_methods(user.id))),
            Step("terms", not needs_acceptance(user)),
        )
    )


def mark_link_copied(user: User) -> bool:
    """Record the first time the affiliate copied their link (later copies change
    nothing: False). Flushes."""
    if user.link_copied_at is not None:
        return False
    user.link_copied_at = datetime.now(UTC)
    db.session.flush()
    return True
