"""My commissions as an affiliate reads them: statuses and their legend, sale and recorded
dates, the net sale, exact rates, the totals of a filter, a chart that follows the filters,
and filters that live in the URL (reload, bookmark, CSV)."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update

from app.extensions import db
from app.models import Commission, MLMTier, ReferralFlag, Sale
from app.services.money.commissions import adjust_for_refunds
from app.services.money.sales import record_refund
from tests.conftest import log_in
from tests.factories import make_chain, make_payout, make_sale, make_user

HX = {"HX-Request": "true"}
_STATE = re.compile(
    r'data-commission="([^"]+)">.*?data-state="([a-z_]+)">([^<]+)</span>', re.DOTALL
)
_TOTAL = re.compile(r'data-total="(sale-net|amount)">([^<]+)<')
_MORE = re.compile(r'class="show-more"><td colspan="8">\s*<a href="([^"]+)"')
_CSV_LINK = re.compile(r'id="commissions-csv" href="([^"]+)"')


def _states(page: str) -> dict[str, tuple[str, str]]:
    """Commission id → (state, label) as the list shows them."""
    return {cid: (state, label) for cid, state, label in _STATE.findall(page)}


def _totals(page: str) -> dict[str, str]:
    return dict(_TOTAL.findall(page))


def _commission_of(sale_id: str) -> Commission:
    return db.session.scalars(select(Commission).where(Commission.sale_id == sale_id)).one()


def _refund(sale_id: str, reference: str, amount: str) -> None:
    record_refund("manual", reference, Decimal(amount))
    adjust_for_refunds(sale_id)
    db.session.commit()


def _csv_rows(client, url: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(client.get(url).get_data(as_text=True))))


def test_each_status_reads_as_the_affiliate_sees_it_and_agrees_with_the_dashboard(client):
    root, buyer = make_chain(2)
    paid = make_sale(buyer, "600.00", days_ago=40)
    make_payout(root, complete=True)
    available = make_sale(buyer, "50.00", days_ago=35)  # hold over: available, not pending
    in_hold = make_sale(buyer, "20.00", days_ago=2)
    cancelled = make_sale(buyer, "30.00", external_id="refunded-in-full")
    _refund(cancelled, "refunded-in-full", "30.00")
    flagged = make_user(referrer=root)
    db.session.add(ReferralFlag(referred_user_id=flagged.id, referrer_id=root.id, reason="same_ip"))
    db.session.commit()
    held = make_sale(flagged, "70.00")
    log_in(client, root.email)

    page = client.get("/commissions").get_data(as_text=True)
    hold_end = (datetime.now(UTC) - timedelta(days=2) + timedelta(days=30)).date()
    assert _states(page) == {
        _commission_of(paid).id: ("paid", "paid"),
        _commission_of(available).id: ("available", "available"),
        _commission_of(in_hold).id: ("in_hold", f"in hold until {hold_end:%Y-%m-%d}"),
        _commission_of(cancelled).id: ("cancelled", "cancelled"),
        _commission_of(held).id: ("held", "held for review"),
    }
    assert "pending" not in re.sub(r'data-stat="pending"', "", page)
    legend = page[page.index('id="commission-legend"') :]
    for name in ("in hold", "available", "held for review", "paid", "cancelled"):
        assert f">{name}" in legend

    for sale_id, shown in ((available, "available"), (in_hold, f"in hold until {hold_end}")):
        receipt = client.get(f"/commissions/{_commission_of(sale_id).id}").get_data(as_text=True)
        assert f'data-receipt="status">{shown}<' in receipt

    dashboard = client.get("/dashboard").get_data(as_text=True)
    for state, stat in (("available", "available"), ("in_hold", "pending"), ("held", "held")):
        listed = client.get(f"/commissions?status={state}").get_data(as_text=True)
        assert len(_states(listed)) == 1
        assert f'data-stat="{stat}">{_totals(listed)["amount"]}<' in dashboard


def test_the_hold_counts_from_the_sale_date_which_is_shown_beside_the_date_recorded(client):
    root, buyer = make_chain(2)
    sale_id = make_sale(buyer, "10.00", days_ago=45)  # reported late: recorded today
    log_in(client, root.email)
    page = client.get("/commissions").get_data(as_text=True)
    sold, today = (datetime.now(UTC) - timedelta(days=45)).date(), datetime.now(UTC).date()
    row = page[page.index(f'data-commission="{_commission_of(sale_id).id}"') :]
    assert row.index(f"<td>{sold:%Y-%m-%d}</td>") < row.index(f">{today:%Y-%m-%d}</a>")
    assert 'data-state="available">available<' in row
    assert '<th scope="col">Sale date</th><th scope="col">Recorded</th>' in page
    [line] = _csv_rows(client, "/commissions.csv")
    assert (line["sale_date"], line["recorded_on"], line["status"], line["payable_from"]) == (
        sold.isoformat(),
        today.isoformat(),
        "available",
        (sold + timedelta(days=30)).isoformat(),
    )


def test_net_sale_after_partial_and_full_refunds_in_page_and_csv(client):
    root, buyer = make_chain(2)
    partial = make_sale(buyer, "80.00", external_id="partly-refunded")
    _refund(partial, "partly-refunded", "20.00")
    full = make_sale(buyer, "45.00", external_id="fully-refunded")
    _refund(full, "fully-refunded", "45.00")
    log_in(client, root.email)
    page = client.get("/commissions").get_data(as_text=True)
    partial_row = page[page.index(f'data-commission="{_commission_of(partial).id}"') :]
    assert partial_row.split("</tr>")[0].count("60.00 USD") == 1
    full_row = page[page.index(f'data-commission="{_commission_of(full).id}"') :]
    assert "0.00 USD <small>excl. tax" in full_row.split("</tr>")[0]
    assert "80.00 USD" not in page and "45.00 USD" not in page
    rows = {r["sale_reference"]: r for r in _csv_rows(client, "/commissions.csv")}
    assert (rows["partly-refunded"]["sale_amount_net"], rows["partly-refunded"]["amount"]) == (
        "60.00",
        "6.00",
    )
    assert (rows["fully-refunded"]["sale_amount_net"], rows["fully-refunded"]["status"]) == (
        "0.00",
        "cancelled",
    )


def test_rates_are_formatted_exactly_from_decimal(client):
    db.session.execute(
        update(MLMTier).where(MLMTier.level == 1).values(commission_rate=Decimal("0.125"))
    )
    db.session.commit()
    root, buyer = make_chain(2)
    make_sale(buyer, "80.00")
    log_in(client, root.email)
    page = client.get("/commissions").get_data(as_text=True)
    assert "<td data-rate>12.5 %</td>" in page
    assert "12.50 %" not in page and "12.500000" not in page


def test_the_totals_row_is_the_sum_of_every_filtered_commission(client):
    root, middle, buyer = make_chain(3)
    for n in range(52):
        make_sale(buyer, f"{10 + n}.33", days_ago=40 if n % 2 else 0)
    refunded = make_sale(buyer, "99.99", external_id="refund-in-totals")
    _refund(refunded, "refund-in-totals", "33.33")
    make_sale(make_user(referrer=root), "500.00")  # tier 1: left out by the tier filter
    log_in(client, root.email)

    page = client.get("/commissions?tier=2").get_data(as_text=True)
    assert len(_states(page)) == 50  # one page shown, the totals cover all 53
    assert "Total of 53 commissions matching the filters" in page
    rows = _csv_rows(client, "/commissions.csv?tier=2")
    assert len(rows) == 53
    expected_net = sum(Decimal(r["sale_amount_net"]) for r in rows)
    expected_amount = sum(Decimal(r["amount"]) for r in rows)
    assert _totals(page) == {
        "sale-net": f"{expected_net:,} USD",
        "amount": f"{expected_amount:,} USD",
    }
    available = client.get("/commissions?tier=2&status=available").get_data(as_text=True)
    in_csv = _csv_rows(client, "/commissions.csv?tier=2&status=available")
    assert {r["status"] for r in in_csv} == {"available"} and len(in_csv) == 26
    assert _totals(available)["amount"] == f"{sum(Decimal(r['amount']) for r in in_csv):,} USD"
    assert middle.username not in available


def test_the_chart_follows_the_filters_and_says_when_there_is_nothing_yet(client):
    root, buyer = make_chain(2)
    log_in(client, root.email)
    empty = client.get("/commissions").get_data(as_text=True)
    assert "data-chart-empty" in empty and "<svg" not in empty
    make_sale(buyer, "100.00")
    page = client.get("/commissions").get_data(as_text=True)
    assert "<svg" in page and "data-chart-empty" not in page
    fragment = client.get("/commissions?tier=2", headers=HX).get_data(as_text=True)
    assert "<html" not in fragment and 'id="earnings-chart"' in fragment
    assert "data-chart-empty" in fragment
    this_month = datetime.now(UTC).date().replace(day=1)
    since = (this_month - timedelta(days=1)).replace(day=1)  # last month and this one
    narrowed = client.get(f"/commissions?since={since}").get_data(as_text=True)
    chart = narrowed[narrowed.index('id="earnings-chart"') : narrowed.index("</section>")]
    assert f"{since:%b %Y} to {this_month:%b %Y}" in chart
    assert chart.count('<th scope="row">') == 2


def test_filters_survive_a_reload_and_reach_the_csv(client):
    root, buyer = make_chain(2)
    kept = make_sale(buyer, "10.00", days_ago=40)
    make_sale(buyer, "20.00")
    log_in(client, root.email)
    query = "status=available&tier=1"
    fragment = client.get(f"/commissions?{query}", headers=HX)
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="commission-list"')
    assert "HX-Request" in fragment.headers["Vary"]
    link = html.unescape(_CSV_LINK.search(body).group(1))
    assert link == f"/commissions.csv?{query}"
    reloaded = client.get(f"/commissions?{query}").get_data(as_text=True)
    assert "<!doctype html>" in reloaded
    assert list(_states(reloaded)) == [_commission_of(kept).id]
    assert '<option selected value="available">' in reloaded and 'value="1"' in reloaded
    assert html.unescape(_CSV_LINK.search(reloaded).group(1)) == link
    assert [r["sale_date"] for r in _csv_rows(client, link)] == [
        (datetime.now(UTC) - timedelta(days=40)).date().isoformat()
    ]


def test_show_older_answers_rows_only_without_totals_or_chart(client):
    root, buyer = make_chain(2)
    for _ in range(51):
        make_sale(buyer, "10.00")
    log_in(client, root.email)
    page = client.get("/commissions?tier=1").get_data(as_text=True)
    more = html.unescape(_MORE.search(page)[1])
    assert "tier=1" in more and "before=" in more
    rows = client.get(more, headers=HX).get_data(as_text=True)
    assert len(_states(rows)) == 1
    assert "earnings-chart" not in rows and "commission-totals" not in rows


def test_old_or_unknown_status_values_in_the_url_get_a_message_not_an_error(client):
    log_in(client, make_user().email)
    for url in ("/commissions?status=pending", "/commissions.csv?status=nope"):
        answer = client.get(url)
        assert answer.status_code == 422
        assert "Not a valid choice" in answer.get_data(as_text=True)
    assert db.session.scalar(select(Sale.id)) is None
