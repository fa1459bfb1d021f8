"""/admin/reports: the figures as of the last refresh (charts and tables), the range form
(HTMX swaps the reports; bad input 422 with the reason, never a 500), a CSV per report, and
"Refresh now" (CSRF, audited, the refresh run by a worker after the commit)."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.jobs.queueing import get_queue
from app.jobs.reports import refresh_reports_job
from app.models import AuditEntry
from app.services.reports.ranges import utc_today
from app.services.reports.refresh import refresh_reports
from tests.conftest import csrf_token
from tests.factories import make_payout, make_sale, make_user, set_program
from tests.signing import run_jobs

HX = {"HX-Request": "true"}
AS_OF = re.compile(r'Figures as of <strong><time datetime="([^"]+)">')


def _sales():
    """``=SUM(1)`` (a name a spreadsheet would run) referred a buyer who bought 100.00
    yesterday and 300.00 forty days ago; that paid for a Stripe payout of 30.00."""
    seller = make_user(username="=SUM(1)")
    buyer = make_user(seller)
    make_sale(buyer, "100.00", days_ago=1)
    make_sale(buyer, "300.00", days_ago=40)
    set_program(min_payout_amount=10)
    make_payout(seller, complete=True)
    return seller


def _refreshed() -> None:
    assert refresh_reports()
    db.session.commit()


def _audited(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _as_of(html: str) -> str:
    match = AS_OF.search(html)
    assert match, "no 'Figures as of'"
    return match.group(1)


def test_the_page_shows_every_report_as_of_the_last_refresh(client, admin):
    _sales()
    _refreshed()
    response = client.get("/admin/reports")
    assert response.status_code == 200 and "HX-Request" in response.vary
    html = response.get_data(as_text=True)
    assert '<a href="/admin/reports"' in html  # in the navigation
    _as_of(html)
    for title in ("Sales and commissions by tier", "Funnel", "Top affiliates", "Payouts by"):
        assert title in html
    assert "<dt>Net sales</dt><dd>100.00 USD</dd>" in html  # the last 30 days
    assert "<dt>Commissions (net)</dt><dd>10.00 USD</dd>" in html
    assert "<dt>Share of net sales</dt><dd>10 %</dd>" in html
    for chart in ("sales", "commissions", "funnel", "epc", "top-affiliates", "payouts"):
        assert f'data-chart="{chart}"' in html, chart
    assert "=SUM(1)</a>" in html  # escaped into the page as text, ranked first
    assert "<details><summary>As a table</summary>" in html


def test_a_range_is_a_fragment_for_htmx_and_a_page_without(client, admin):
    _sales()
    _refreshed()
    fragment = client.get("/admin/reports?period=90", headers=HX)
    assert fragment.status_code == 200 and "HX-Request" in fragment.vary
    html = fragment.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="reports">')
    assert "<dt>Net sales</dt><dd>400.00 USD</dd>" in html and "<html" not in html
    page = client.get("/admin/reports?period=90").get_data(as_text=True)
    assert "<html" in page and "<dt>Net sales</dt><dd>400.00 USD</dd>" in page
    start, end = utc_today() - timedelta(days=100), utc_today() - timedelta(days=2)
    custom = client.get(f"/admin/reports?period=custom&start={start}&end={end}", headers=HX)
    html = custom.get_data(as_text=True)
    assert custom.status_code == 200 and "by week" in html
    assert "<dt>Net sales</dt><dd>300.00 USD</dd>" in html
    assert "ranked over the last 30, 90 or 365 days" in html


def _future() -> str:
    return (utc_today() + timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("period=custom", "Give the first and the last day."),
        ("period=custom&start=2026-02-01&end=2026-01-01", "The end date is before the start"),
        ("period=custom&start=1999-12-31&end=2000-01-31", "at the earliest"),
        ("period=custom&start=2001-01-01&end=2002-12-31", "At most 366 days"),
        ("period=custom&start=yesterday&end=2001-01-01", "Not a valid date value"),
        ("period=7", "Not a valid choice"),
        ("period=custom&start=2001-01-01&end=FUTURE", "The end date is in the future."),
        ("period=custom&start=2001-01-01&end=2001-01-01T00:00", "Not a valid date value"),
    ],
)
def test_a_bad_range_answers_422_with_the_reason(client, admin, query, message):
    query = query.replace("FUTURE", _future())
    for headers in (HX, {}):
        response = client.get(f"/admin/reports?{query}", headers=headers)
        assert response.status_code == 422, query
        html = response.get_data(as_text=True)
        assert message in html and 'aria-invalid="true"' in html
        assert "Figures as of" not in html
    csv_response = client.get(f"/admin/reports/sales.csv?{query}")
    assert csv_response.status_code == 422 and message in csv_response.get_data(as_text=True)
    assert _audited("reports.exported") == []


def _csv(client, path: str) -> list[list[str]]:
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Cache-Control"] == "no-store"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_each_report_as_csv_a_row_per_day_formula_safe_and_audited(client, admin):
    seller = _sales()
    _refreshed()
    yesterday = (utc_today() - timedelta(days=1)).isoformat()
    rows = _csv(client, "/admin/reports/sales.csv?period=90")
    assert rows[0][:6] == ["day", "sales", "sales_amount", "refunded_amount", "net_sales_amount",
                           "foreign_currency_sales"]  # fmt: skip
    assert len(rows) == 1 + 90  # every day, though the page shows 90 days by week
    [sold] = [row for row in rows if row[0] == yesterday]
    assert sold[1:5] == ["1", "100.0000", "0.0000", "100.0000"]
    assert sold[rows[0].index("tier_1_commission_amount")] == "10.0000"
    assert len(_csv(client, "/admin/reports/sales.csv?period=365")) == 1 + 365  # not weekly

    funnel = _csv(client, "/admin/reports/funnel.csv")
    assert funnel[0] == [
        "day", "clicks", "signed_up_visitors", "signups", "paying_referrals", "signup_rate",
        "paying_rate", "earnings", "earnings_per_click",
    ]  # fmt: skip
    assert funnel[-1][1:5] == ["0", "0", "1", "1"]  # today: the buyer joined (and paid)

    top = _csv(client, "/admin/reports/affiliates.csv?period=30")
    assert top[1][:4] == ["1", "'=SUM(1)", seller.id, "10.0000"]
    assert top[1][-1] == "1.0000"  # one sign-up, paying

    payouts = _csv(client, "/admin/reports/payouts.csv")
    assert payouts[1:] == [[utc_today().isoformat(), "stripe", "completed", "1", "30.0000"]]

    start = (utc_today() - timedelta(days=5)).isoformat()
    custom = f"/admin/reports/affiliates.csv?period=custom&start={start}&end={yesterday}"
    assert len(_csv(client, custom)) == 1  # no ranking over any dates: the header alone
    exported = _audited("reports.exported")
    assert [e.details["report"] for e in exported] == [
        "sales", "sales", "funnel", "affiliates", "payouts", "affiliates",
    ]  # fmt: skip
    assert all(e.actor_id == admin.id for e in exported)
    assert exported[0].details["filters"] == {"period": "90"}


def test_refresh_now_needs_csrf_is_audited_and_runs_in_a_worker_after_the_commit(
    app, client, admin
):
    _refreshed()
    before = _as_of(client.get("/admin/reports").get_data(as_text=True))
    _sales()
    get_queue().empty()  # the payout's own jobs
    assert client.post("/admin/reports/refresh").status_code == 400
    assert client.post("/admin/reports/refresh", headers=HX).status_code == 400
    assert get_queue().count == 0 and _audited("reports.refresh_requested") == []

    token = csrf_token(client, "/admin/reports")
    response = client.post("/admin/reports/refresh", data={"csrf_token": token}, headers=HX)
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="report-freshness"')
    assert "the figures change as soon as a worker has run it" in fragment
    assert _as_of(fragment) == before  # no worker yet: still the last refresh's time
    [entry] = _audited("reports.refresh_requested")
    assert entry.actor_id == admin.id
    assert [job.func for job in get_queue().get_jobs()] == [refresh_reports_job]
    page = client.get("/admin/reports").get_data(as_text=True)
    assert _as_of(page) == before and "<dt>Net sales</dt><dd>0.00 USD</dd>" in page

    run_jobs(app)
    page = client.get("/admin/reports").get_data(as_text=True)
    assert _as_of(page) > before and "<dt>Net sales</dt><dd>100.00 USD</dd>" in page

    again = client.post("/admin/reports/refresh", data={"csrf_token": token})
    assert (again.status_code, again.headers["Location"]) == (302, "/admin/reports")
    assert "Refresh asked for" in client.get("/admin/reports").get_data(as_text=True)
    assert len(_audited("reports.refresh_requested")) == 2
