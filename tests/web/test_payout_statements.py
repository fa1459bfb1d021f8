"""The payouts page's balances and status badges (polling while in flight), and a payout's
statement: the page, its CSV, and 404 for anyone else's payout."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import update

from app.csv_stream import stream_csv
from app.extensions import db
from app.models import Payout, ReferralProgramSettings
from app.services.money.commissions import adjust_for_refunds
from app.services.money.ledger import append
from app.services.money.sales import record_refund
from app.services.payouts.payouts import complete_payout, fail_payout, start_processing
from tests.conftest import log_in
from tests.factories import make_chain, make_payout, make_sale, make_user

pytestmark = pytest.mark.usefixtures("ledger_holds")

HX = {"HX-Request": "true"}
POLL = 'hx-trigger="every 2s"'


def _status(client, payout: Payout, headers: dict[str, str] | None = HX):
    return client.get(f"/payouts/{payout.id}/status", headers=headers or {})


def _earner(client, amount: str = "1000.00"):
    root, buyer = make_chain(2)
    make_sale(buyer, amount, days_ago=40)
    log_in(client, root.email)
    return root, buyer


# --- balances -----------------------------------------------------------------------------------


def test_the_balances_explain_themselves_and_list_when_pending_money_arrives(client):
    _, buyer = _earner(client, "200.00")
    make_sale(buyer, "123.40", days_ago=1)
    make_sale(buyer, "1.00", days_ago=1)
    html = client.get("/payouts").get_data(as_text=True)
    assert 'data-stat="pending">12.44 USD<' in html
    assert "Can be paid out now." in html and "available 30 days after each sale" in html
    day = re.search(r'data-available-on="(\d{4}-\d\d-\d\d)"', html).group(1)
    assert f"<td>{day}</td><td>12.44 USD</td>" in html
    assert 'data-available-on="later"' not in html
    assert 'data-term="minimum">50.00 USD<' in html


def test_many_pending_dates_end_with_one_total_for_the_rest(client):
    _, buyer = _earner(client, "100.00")
    for days_ago in range(1, 13):
        make_sale(buyer, "10.00", days_ago=days_ago)
    html = client.get("/payouts").get_data(as_text=True)
    assert html.count("data-available-on=") == 11
    assert "Later (2 more dates)</td><td>2.00 USD</td>" in html


# --- status badges ------------------------------------------------------------------------------


def test_a_payout_in_flight_polls_its_status_until_it_is_final(client):
    root, _ = _earner(client)
    payout = make_payout(root)
    html = client.get("/payouts").get_data(as_text=True)
    assert f'hx-get="/payouts/{payout.id}/status" {POLL}' in html
    response = _status(client, payout)
    assert response.status_code == 200 and POLL in response.get_data(as_text=True)
    assert '<span class="badge badge-pending">Pending</span>' in response.get_data(as_text=True)
    assert "HX-Request" in response.headers["Vary"]
    assert response.headers["Cache-Control"] == "no-store"
    start_processing(payout)
    db.session.commit()
    assert "Sending</span>" in _status(client, payout).get_data(as_text=True)
    complete_payout(payout, "tr_1")
    db.session.commit()
    response = _status(client, payout)
    html = response.get_data(as_text=True)
    assert response.status_code == 286  # htmx stops polling
    assert '<span class="badge badge-completed">Paid</span>' in html
    assert POLL not in html and "hx-get" not in html
    assert POLL not in client.get("/payouts").get_data(as_text=True)


def test_a_failed_payout_shows_its_reason_and_stops_polling(client):
    root, _ = _earner(client)
    payout = make_payout(root)
    start_processing(payout)
    fail_payout(payout, "The bank account was closed.")
    db.session.commit()
    response = _status(client, payout)
    html = response.get_data(as_text=True)
    assert response.status_code == 286 and POLL not in html
    assert "Failed</span>" in html and "The bank account was closed." in html


def test_a_reversed_payout_is_final(client):
    root, _ = _earner(client)
    payout = make_payout(root, complete=True)
    payout.transition_to("reversed")
    append(root.id, "payout_reversal", payout.amount, datetime.now(UTC), payout_id=payout.id)
    db.session.commit()
    response = _status(client, payout)
    assert response.status_code == 286
    assert "Reversed</span>" in response.get_data(as_text=True)
    html = client.get(f"/payouts/{payout.id}").get_data(as_text=True)
    assert "The provider took this payout back" in html
    assert 'data-total="carried"' not in html and "not paid yet" not in html


@pytest.mark.parametrize(
    ("status", "waiting", "words"),
    [
        ("awaiting_approval", None, "Awaiting approval"),
        ("on_hold", None, "On hold"),
        ("pending", "balance_insufficient", "waiting for the program&#39;s funds"),
    ],
)
def test_waiting_payouts_say_why_in_plain_words_and_keep_polling(client, status, waiting, words):
    root, _ = _earner(client)
    payout = make_payout(root)
    db.session.execute(
        update(Payout).where(Payout.id == payout.id).values(status=status, waiting_reason=waiting)
    )
    db.session.commit()
    response = _status(client, payout)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and POLL in html and words in html


def test_the_status_without_htmx_is_the_statement_page(client):
    root, _ = _earner(client)
    payout = make_payout(root, complete=True)
    response = _status(client, payout, headers=None)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>Payout statement</h1>" in html and "Paid</span>" in html


# --- another user's payout ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["{}", "{}/status", "{}/statement.csv"])
@pytest.mark.parametrize("headers", [None, HX])
def test_another_users_payout_answers_404(app, client, path, headers):
    owner, buyer = make_chain(2)
    make_sale(buyer, "1000.00", days_ago=40)
    payout = make_payout(owner, complete=True)
    log_in(client, make_user().email)
    url = "/payouts/" + path.format(payout.id)
    response = client.get(url, headers=headers or {})
    assert response.status_code == 404
    assert str(payout.amount) not in response.get_data(as_text=True)
    missing = "/payouts/" + path.format("nope" * 20)
    assert client.get(missing, headers=headers or {}).status_code == 404
    owners = app.test_client()
    log_in(owners, owner.email)
    assert owners.get(url, headers=headers or {}).status_code in (200, 286)


def test_anonymous_visitors_are_sent_to_log_in(client):
    root, buyer = make_chain(2)
    make_sale(buyer, "1000.00", days_ago=40)
    payout = make_payout(root)
    for path in ("", "/status", "/statement.csv"):
        response = client.get(f"/payouts/{payout.id}{path}")
        assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- statements ---------------------------------------------------------------------------------


def _history_with_a_clawback(client):
    """Tier 3 earner (2.5 %): paid 30.85 for a 1,234.00 sale, 12.34 of it clawed back after
    a partial refund, then 61.70 earned on a 2,468.00 sale; the second payout is 49.36."""
    root, _, _, buyer = make_chain(4)
    db.session.execute(update(ReferralProgramSettings).values(min_payout_amount=0))
    db.session.commit()
    first_sale = make_sale(buyer, "1234.00", days_ago=45, provider="stripe", external_id="pi_s")
    first = make_payout(root, complete=True)
    record_refund("stripe", "pi_s", Decimal("493.60"))  # 40 %: 30.85 -> 18.51
    adjust_for_refunds(first_sale)
    db.session.commit()
    make_sale(buyer, "2468.00", days_ago=40)
    second = make_payout(root, complete=True)
    log_in(client, root.email)
    return root, buyer, first, second


def test_the_statement_lists_its_commissions_the_clawbacks_netted_and_totals(client):
    _, buyer, first, second = _history_with_a_clawback(client)
    response = client.get(f"/payouts/{second.id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert second.amount == Decimal("49.36")
    assert html.count('data-line="commission"') == 1
    assert html.count('data-line="clawback"') == 1
    assert 'data-label="Rate">2.5 %</td>' in html
    assert "2,468.00 USD <small>excl. tax</small>" in html
    assert 'data-label="Amount"><span>61.70 USD</span>' in html
    assert 'data-label="Amount"><span>-12.34 USD</span>' in html
    assert 'data-total="commissions">61.70 USD<' in html
    assert 'data-total="clawbacks">-12.34 USD<' in html
    assert 'data-total="carried"' not in html  # 61.70 - 12.34 = 49.36 exactly
    assert 'data-total="payout"><strong>49.36 USD</strong>' in html
    assert f'data-statement="reference">tr_{second.id}<' in html
    assert buyer.email not in html and buyer.username not in html
    assert 'media="print"' in html and "data-print hidden" in html
    first_html = client.get(f"/payouts/{first.id}").get_data(as_text=True)
    assert first_html.count('data-line="commission"') == 1
    assert "30.85 USD" in first_html and 'data-line="clawback"' not in first_html


def test_a_partial_payout_says_what_it_carries(client):
    root, buyer = make_chain(2)
    db.session.execute(update(ReferralProgramSettings).values(min_payout_amount=0))
    db.session.commit()
    for amount, days_ago in (("100.00", 50), ("200.00", 45), ("300.00", 40)):
        make_sale(buyer, amount, days_ago=days_ago)
    first = make_payout(root, "35.00", complete=True)
    second = make_payout(root, "25.00", complete=True)
    log_in(client, root.email)
    html = client.get(f"/payouts/{first.id}").get_data(as_text=True)
    assert "Carried to later payouts</dt>" in html
    assert 'data-total="carried">5.00 USD<' in html
    html = client.get(f"/payouts/{second.id}").get_data(as_text=True)
    assert "Carried from earlier payouts</dt>" in html
    assert 'data-total="carried">-5.00 USD<' in html
    assert "Earlier payouts already paid 5.00 USD" in html


def test_an_unpaid_payout_says_its_commissions_come_when_it_is_paid(client):
    root, _ = _earner(client)
    payout = make_payout(root)
    html = client.get(f"/payouts/{payout.id}").get_data(as_text=True)
    assert "The commissions are listed once the payout is paid." in html
    assert f'hx-get="/payouts/{payout.id}/status" {POLL}' in html


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_the_csv_has_every_line_and_its_amounts_add_up(client):
    _, buyer, _, second = _history_with_a_clawback(client)
    response = client.get(f"/payouts/{second.id}/statement.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Cache-Control"] == "no-store"
    day = second.completed_at.date().isoformat()
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="payout-{day}-{second.id[:8]}.csv"'
    )
    rows = _csv(response)
    assert rows[0] == [
        "line", "date", "sale_date", "tier", "rate", "base_amount", "base_tax",
        "amount_before_refunds", "amount", "detail", "reference",
    ]  # fmt: skip
    assert rows[1][:2] == ["payout", day] and rows[1][8] == "49.36"
    assert rows[1][9:] == ["Stripe; completed", f"tr_{second.id}"]
    assert [r[0] for r in rows[2:]] == ["commission", "clawback"]
    assert rows[2][3:9] == ["3", "0.025000", "2468.00", "excluded", "61.70", "61.70"]
    assert rows[3][8] == "-12.34" and rows[3][9] == "clawed back"
    assert sum(Decimal(r[8]) for r in rows[2:]) == Decimal(rows[1][8])
    assert buyer.email not in response.get_data(as_text=True)


@pytest.mark.parametrize("reference", ['=HYPERLINK("http://evil")', "+1+2", "-2+3", "@SUM(A1)"])
def test_csv_cells_that_would_be_formulas_are_text(client, reference):
    root, _ = _earner(client)
    payout = make_payout(root)
    start_processing(payout)
    complete_payout(payout, reference)
    db.session.commit()
    rows = _csv(client.get(f"/payouts/{payout.id}/statement.csv"))
    assert rows[1][10] == "'" + reference
    assert rows[1][8] == "100.00"


def test_negative_amounts_stay_numbers_in_the_csv():
    assert list(stream_csv([[Decimal("-12.34"), -3, "-12.34"]])) == ["-12.34,-3,'-12.34\r\n"]


def test_a_commission_reduced_by_a_refund_before_payout_says_what_it_was(client):
    root, buyer = make_chain(2)
    sale = make_sale(buyer, "1000.00", days_ago=40, provider="stripe", external_id="pi_r")
    record_refund("stripe", "pi_r", Decimal("250.00"))
    adjust_for_refunds(sale)
    db.session.commit()
    payout = make_payout(root, complete=True)
    log_in(client, root.email)
    html = client.get(f"/payouts/{payout.id}").get_data(as_text=True)
    assert "<span>75.00 USD <small>(was 100.00 USD before refunds)</small></span>" in html
    assert 'data-total="payout"><strong>75.00 USD</strong>' in html
    rows = _csv(client.get(f"/payouts/{payout.id}/statement.csv"))
    assert rows[2][5:9] == ["1000.00", "excluded", "100.00", "75.00"]
