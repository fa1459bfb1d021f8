"""Every GET page of the app, read from its URL map, as the user who may see it, at 360 px and
1280 px wide, with data in its tables: the document never scrolls sideways, no card's content
sticks out, every table sits in a labelled scroll region of its own, and (at 360 px) every
form control can be reached. The error page (a 404) too. Screenshots go to
test-artifacts/layout/<endpoint>-<width>.png. A new GET rule is visited without being listed
here (as the first of anonymous, affiliate, admin that gets a page); the test fails if it
cannot be: a URL argument with no fixture value below, or no page for anyone; add the value,
or the rule to NOT_PAGES with the reason.

The header: below 40rem its links fold into a <details> menu that opens from the keyboard
and without JavaScript, keeps aria-current, and holds "Log out" inside the screen."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from flask import url_for
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.jobs.queueing import get_queue
from app.models import Commission, OutboxMail, ReferralFlag
from app.services.accounts.email_change import request_email_change
from app.services.accounts.moderation import set_suspended
from app.services.accounts.password_reset import request_password_reset
from app.services.mail.unsubscribe import unsubscribe_url
from app.services.reports.refresh import refresh_reports
from tests.e2e.conftest import screenshot, unreachable_controls
from tests.e2e.test_commission_journey import _log_in
from tests.e2e.test_payouts_page import _fits
from tests.factories import PASSWORD, make_payout, make_sale, make_user
from tests.signing import run_jobs
from tests.web.test_admin_health import _parked
from tests.web.test_admin_health_panels import fail_loudly

pytestmark = pytest.mark.browser

WIDTHS = {"360": {"width": 360, "height": 800}, "1280": {"width": 1280, "height": 800}}
AUDIENCES = ("anonymous", "affiliate", "admin")

# GET rules that answer no page to lay out, and why.
NOT_PAGES = {
    "static": "stylesheets, scripts and images",
    "health.healthz": "JSON for the orchestrator",
    "health.readyz": "JSON for load balancers",
    "health.webhook_alarm": "JSON for monitoring",
    "health.mail_alarm": "JSON for monitoring",
    "portal.qr": "the shared link as an SVG or PNG image",
    "portal.commissions_csv": "a CSV download",
    "payouts.statement_download": "a CSV download",
    "admin.audit_csv": "a CSV download",
    "admin.report_csv": "a CSV download",
    "payouts.stripe_refresh": "a redirect to Stripe's onboarding",
    "payouts.stripe_return": "a redirect back to the payouts page",
    "main.logo": "the program's logo (an image)",
    "main.theme": "the program's accent colour as CSS",
    "devmail.html_part": "a mail's own HTML, framed by /dev/mail/<id> (sandboxed, not our layout)",
}

# Query strings that make a page show more than its empty form.
QUERIES = {
    "admin.simulate_tiers": {"max_tier": 3, "days": 90, "rate_1": 12, "rate_2": 5, "rate_3": 2.5},
    "tree.search": {"q": "bru"},
    "admin.users": {"q": "dina"},
    "admin.user_network_search": {"q": "bru"},
}

# What a page shows with the data below, so it is measured with its data.
SHOWS = {
    "portal.dashboard": "main table td",
    "portal.commissions": "tr[data-commission]",
    "portal.commission": "main table td",
    "payouts.index": "#becoming-available td",
    "payouts.statement_page": "main table td",
    "tree.network": '[role="treeitem"]',
    "tree.search": ".search-results li",
    "admin.settings": "#settings-payouts select",
    "admin.tiers": "#tiers tbody tr",
    "admin.simulate_tiers": "#simulator td",
    "admin.user": "tr[data-flag], tr[data-payout], tr[data-audit]",
    "admin.commissions": "tr[data-commission]",
    "admin.commission": "#tier-path li, tr[data-entry]",
    "admin.payouts": "main table td",
    "admin.users": "#users td",
    "admin.flags": "main table td",
    "admin.sales": "main table td",
    "admin.reports": "svg.bar-chart rect",
    "admin.audit_log": "tr[data-audit]",
    "admin.health": 'tr[id^="parked-"]',
    "admin.health_database": "#health-database table",
    "admin.health_queues": 'tr[id^="failed-"]',
}

# Panels HTMX loads after the page (hx-trigger="load"), gone once they have all arrived.
_LOADING = '[hx-trigger="load"], .htmx-request'
# Stacked tables (one block per row on a phone) fit their box: nothing to scroll sideways.
_STACKED_TOO_WIDE = """() => [...document.querySelectorAll('table.stack')]
  .filter((table) => table.parentElement.scrollWidth > table.parentElement.clientWidth).length"""
# Cards whose content sticks out of them (a wide table scrolls inside its region instead).
_CARDS_TOO_NARROW = """() => [...document.querySelectorAll('.card')]
  .filter((card) => card.scrollWidth > card.clientWidth).map((card) => card.id || card.className)"""
# Tables outside a scroll region that a keyboard can reach and a screen reader can name.
_TABLES_OUTSIDE_REGION = """() => [...document.querySelectorAll('table')].filter((table) =>
  !table.closest('.table-scroll[role=region][tabindex="0"]:is([aria-label], [aria-labelledby])')
).map((table) => table.closest('[id]')?.id || table.outerHTML.slice(0, 60))"""


def _layout_data(app) -> dict:
    """An affiliate (dina) with an upline, a downline, commissions, a paid payout and a flag; an
    admin; audit entries, a parked provider event and a failed job. Their emails, and the
    values the URL arguments take (by name, or by endpoint and name)."""
    tessa = make_user(username="tessa")
    dina = make_user(referrer=tessa, username="dina")
    bruce = make_user(referrer=dina, username="bruce")
    make_sale(bruce, "1234.56", days_ago=40, provider="stripe", external_id="pi_3PqLongPaymentId")
    make_sale(bruce, "99.90", days_ago=2)
    payout = make_payout(dina, method="lemon_squeezy", complete=True)
    make_payout(tessa, method="lemon_squeezy")  # waiting in the admin's queue
    db.session.add(ReferralFlag(referred_user_id=bruce.id, referrer_id=dina.id, reason="same_ip"))
    boss = make_user(username="boss", is_admin=True)
    set_suspended(dina, True, boss, "Checking a chargeback with the payment provider")
    set_suspended(dina, False, boss, "The chargeback was the bank's mistake")
    _parked()
    db.session.commit()
    get_queue().enqueue(fail_loudly, "e2e")
    run_jobs(app)
    refresh_reports()
    db.session.commit()
    commission = db.session.scalars(select(Commission.id).where(Commission.user_id == dina.id))
    # Mails with links in them, as dina gets them (kept in the outbox: no MAIL_URL).
    request_password_reset(dina.email, None)
    assert request_email_change(dina, "dina.new@example.com", PASSWORD, None) == {}
    db.session.commit()
    mails = {mail.kind: mail for mail in db.session.scalars(select(OutboxMail))}
    return {
        "affiliate": dina.email,
        "admin": boss.email,
        "commission_id": commission.first(),
        "payout_id": payout.id,
        "user_id": dina.id,
        "code": dina.referral_code,
        "mail_id": mails["password_reset"].id,
        # Three kinds of token: the value by endpoint.
        ("auth.reset_password_with_link", "token"): _token(
            mails["password_reset"], "/password/reset/"
        ),
        ("auth.confirm_email", "token"): _token(mails["email_change_confirm"], "/confirm/"),
        ("auth.unsubscribe", "token"): unsubscribe_url(dina, "network").rsplit("/", 1)[1],
    }


def _token(mail: OutboxMail, path: str) -> str:
    """The token of the link in a mail's text whose path has ``path`` before it."""
    return re.search(re.escape(path) + r"([\w.-]+)", mail.body_text).group(1)


def _page_urls(app, values: dict) -> dict[str, str]:
    """endpoint -> path of every GET page in the URL map (NOT_PAGES left out)."""
    urls, unfilled = {}, []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods or rule.endpoint in NOT_PAGES:
                continue
            arguments = {
                name: values.get((rule.endpoint, name), values.get(name)) for name in rule.arguments
            }
            if missing := [name for name, value in arguments.items() if value is None]:
                unfilled.append(f"{rule.endpoint} {rule.rule} needs {sorted(missing)}")
                continue
            path = url_for(rule.endpoint, **arguments)
            query = QUERIES.get(rule.endpoint)
            urls[rule.endpoint] = f"{path}?{urlencode(query)}" if query else path
    assert unfilled == [], "give _layout_data a value for these, or add them to NOT_PAGES"
    for listed in (NOT_PAGES, QUERIES, SHOWS):
        assert not listed.keys() - app.view_functions.keys(), "an endpoint here is gone"
    return urls


def _audience(pages: dict, url: str) -> str | None:
    """The first of anonymous, affiliate and admin who gets an HTML page at ``url``."""
    for who in AUDIENCES:
        answer = pages[who].context.request.get(url, max_redirects=0)
        if answer.status == 200 and answer.headers["content-type"].startswith("text/html"):
            return who
    return None


def _open(page, url: str, status: int) -> None:
    assert page.goto(url).status == status, url
    page.locator(_LOADING).first.wait_for(state="detached")


def _problems(page, width: str) -> list[str]:
    problems = unreachable_controls(page) if width == "360" else []
    if not _fits(page):
        problems.append(f"{page.evaluate('document.documentElement.scrollWidth')} px wide")
    if page.evaluate(_STACKED_TOO_WIDE):
        problems.append("a stacked table scrolls sideways")
    problems += [f"sticks out of card {card}" for card in page.evaluate(_CARDS_TOO_NARROW)]
    problems += [f"not in a scroll region: {t}" for t in page.evaluate(_TABLES_OUTSIDE_REGION)]
    return problems


@pytest.fixture
def pages(browser):
    """A browser page for each audience (logged in later, once the users exist)."""
    contexts = {who: browser.new_context() for who in AUDIENCES}
    yield {who: context.new_page() for who, context in contexts.items()}
    for context in contexts.values():
        context.close()


def test_every_page_fits_360_and_1280_px_for_whoever_sees_it(app, live_server, pages, fake_stripe):
    """Stripe in test mode (the fake): signed-in headers carry the badge too."""
    errors: list[str] = []
    for page in pages.values():
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    values = _layout_data(app)
    for who in ("affiliate", "admin"):
        _log_in(pages[who], live_server, values[who])
    urls = {endpoint: live_server + path for endpoint, path in _page_urls(app, values).items()}
    audiences = {endpoint: _audience(pages, url) for endpoint, url in urls.items()}
    assert [endpoint for endpoint, who in audiences.items() if who is None] == []
    assert set(audiences.values()) == set(AUDIENCES)
    visits = [(endpoint, audiences[endpoint], url, 200) for endpoint, url in urls.items()]
    visits.append(("error-404", "affiliate", f"{live_server}/no-such-page", 404))  # error pages

    problems = {}
    for width, size in WIDTHS.items():
        for page in pages.values():
            page.set_viewport_size(size)
        for name, who, url, status in visits:
            page = pages[who]
            _open(page, url, status)
            screenshot(page, f"layout/{name.replace('.', '-')}-{width}")
            found = _problems(page, width)  # after the picture: it scrolls to each control
            if name in SHOWS and not page.locator(SHOWS[name]).count():
                found.append(f"shows no {SHOWS[name]}")
            if found:
                problems[f"{name} at {width} px"] = found
    assert problems == {}, "\n".join(f"{where}: {found}" for where, found in problems.items())
    assert [error for error in errors if "status of 404" not in error] == []


@pytest.mark.parametrize("javascript", [True, False], ids=["script", "no-script"])
def test_the_header_folds_into_a_menu_that_opens_from_the_keyboard(
    live_server, browser, javascript, fake_stripe
):
    admin = make_user(username="boss", is_admin=True)  # the most links of all
    context = browser.new_context(java_script_enabled=javascript, viewport=WIDTHS["360"])
    page = context.new_page()
    try:
        _log_in(page, live_server, admin.email)
        page.goto(f"{live_server}/commissions")
        nav = page.get_by_role("navigation", name="Main")
        log_out = page.get_by_role("button", name="Log out")
        expect(nav).to_be_hidden()
        expect(log_out).to_be_hidden()
        expect(page.get_by_text("Test mode")).to_be_visible()  # beside the brand and the menu
        page.get_by_text("Menu", exact=True).focus()
        page.keyboard.press("Enter")
        expect(nav.get_by_role("link", name="Commissions")).to_have_attribute(
            "aria-current", "page"
        )
        expect(log_out).to_be_visible()
        box = log_out.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTHS["360"]["width"]
        assert _fits(page)
        if javascript:
            screenshot(page, "layout/menu-open-360")
            page.keyboard.press("Escape")  # closes it, back on its button (static/js/app.js)
            expect(nav).to_be_hidden()
            expect(page.locator(".menu > summary")).to_be_focused()
            page.keyboard.press("Enter")
            expect(nav).to_be_visible()
            page.mouse.click(5, 790)  # so does a click elsewhere (the page's margin, below it)
            expect(nav).to_be_hidden()
            page.get_by_text("Menu", exact=True).click()
        log_out.click()  # Playwright clicks only what nothing covers
        page.wait_for_url(f"{live_server}/")
        expect(page.get_by_text("You are logged out.")).to_be_visible()
    finally:
        context.close()


def test_the_header_is_one_bar_at_1280_px(live_server, page):
    admin = make_user(username="boss", is_admin=True)
    page.set_viewport_size(WIDTHS["1280"])
    _log_in(page, live_server, admin.email)
    expect(page.get_by_text("Menu", exact=True)).to_be_hidden()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Dashboard")).to_have_attribute("aria-current", "page")
    brand = page.locator(".site-header .brand").bounding_box()
    for item in (
        nav.get_by_role("link", name="Health"),
        page.get_by_role("button", name="Log out"),
    ):
        box = item.bounding_box()
        assert box["y"] < brand["y"] + brand["height"] and brand["y"] < box["y"] + box["height"]
