"""Mail preferences and the unsubscribe page in a browser at 360 px: saved through htmx,
nothing wider than the screen, every control reachable."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.services.mail.preferences import opted_out
from app.services.mail.unsubscribe import unsubscribe_url
from tests.e2e.conftest import screenshot, unreachable_controls
from tests.e2e.test_commission_journey import _log_in
from tests.factories import make_user

pytestmark = pytest.mark.browser
PHONE = {"width": 360, "height": 740}


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_preferences_save_in_place_on_a_phone(live_server, page):
    user = make_user()
    page.set_viewport_size(PHONE)
    _log_in(page, live_server, user.email)
    page.goto(f"{live_server}/account#mail-preferences")
    box = page.get_by_label("Commissions earned")
    assert box.is_checked()
    box.uncheck()
    page.get_by_role("button", name="Save mail preferences").click()
    page.get_by_role("status").filter(has_text="Your mail preferences are saved.").wait_for()
    assert not page.get_by_label("Commissions earned").is_checked()
    assert page.get_by_label("New referrals").is_checked()
    assert _fits(page)
    assert unreachable_controls(page) == []
    screenshot(page, "mail-preferences-360")
    db.session.rollback()
    assert opted_out(user.id) == {"earnings"}


def test_the_unsubscribe_link_works_without_a_login_on_a_phone(app, live_server, page):
    user = make_user()
    page.set_viewport_size(PHONE)
    link = unsubscribe_url(user, "network").replace("http://localhost", live_server)
    page.goto(link)
    assert page.get_by_text("Stop “New referrals” mails to").is_visible()
    assert _fits(page)
    screenshot(page, "unsubscribe-360")
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_text("gets no more “New referrals” mails").wait_for()
    db.session.rollback()
    assert opted_out(user.id) == {"network"}
