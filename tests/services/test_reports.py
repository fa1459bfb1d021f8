"""Reports: after a refresh each report equals the same figures computed from the base tables
(and a hand-computed case); refreshes are harmless twice and one at a time; reads go through
REPORTS_DATABASE_URL when it is set (a schema that shadows views; a real streaming replica)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from flask import Flask
from sqlalchemy import select, text, update

from app import create_app
from app.extensions import db
from app.jobs.reports import refresh_reports_job
from app.models import ArchivedReferralClick, Commission, Referral, ReferralClick, Sale, User
from app.services.money.cancellations import cancel_commission
from app.services.money.commissions import adjust_for_refunds
from app.services.money.sales import record_refund
from app.services.reports.figures import (
    FunnelRow,
    collect,
    last_refreshed,
    read_reports,
    snapshot,
)
from app.services.reports.ranges import ReportRange, last_days, utc_today
from app.services.reports.refresh import refresh_reports
from tests.factories import make_chain, make_payout, make_sale, make_user, set_program
from tests.replica import pause_replay, resume_replay, wait_for_replay
from tests.report_queries import DIRECT_QUERIES


@dataclass(frozen=True)
class Network:
    alice: User
    bob: User
    carol: User
    dave: User
    erin: User


def _refund(sale_id: str, amount: str) -> None:
    sale = db.session.get(Sale, sale_id)
    record_refund(sale.provider, sale.external_id, Decimal(amount))
    adjust_for_refunds(sale_id)
    db.session.commit()


def _commission(sale_id: str, tier: int) -> Commission:
    return db.session.scalars(
        select(Commission).where(Commission.sale_id == sale_id, Commission.tier == tier)
    ).one()


def _clicks(model, referrer: User, days_ago: int, visitors: int) -> None:
    day = utc_today() - timedelta(days=days_ago)
    for n in range(visitors):
        extra = {"id": 10_000 + n} if model is ArchivedReferralClick else {}
        db.session.add(
            model(
                referrer_id=referrer.id,
                visitor_hash=f"{days_ago}-{n}",
                user_agent="test",
                clicked_on=day,
                created_at=datetime.now(UTC) - timedelta(days=days_ago),
                **extra,
            )
        )
    db.session.commit()


def build_network() -> Network:
    """alice ← bob ← carol, alice ← dave ← erin (tiers 10 %, 5 %, 2.5 %), and:

    - S1 carol 100.00, 2 days ago: bob 10.00 (tier 1), alice 5.00 (tier 2);
    - S2 bob 200.00, 40 days ago: alice 20.00, paid out, then refunded in full (clawed back);
    - S3 dave 50.00, 2 days ago: alice 5.00, refunded 20.00 before payout (3.00 left);
    - S4 carol 30.00 EUR, yesterday: a foreign-currency sale, no commission;
    - S5 carol 10.00, 3 days ago: bob 1.00 cancelled by an admin, alice 0.50;
    - S6 carol 300.00, 45 days ago: bob 30.00, alice 15.00 (paid out);
    - payouts today: alice 35.00 by Stripe, completed; bob 30.00 by Lemon Squeezy, pending;
    - bob joined 40 days ago, the others today; erin never bought;
    - clicks on alice's link: 5 today, 3 ten days ago, 2 archived 200 days ago."""
    set_program(min_payout_amount=Decimal("10.00"))
    alice = make_user(username="alice")
    bob = make_user(alice, username="bob")
    carol = make_user(bob, username="carol")
    dave = make_user(alice, username="dave")
    erin = make_user(dave, username="erin")
    db.session.execute(
        update(Referral)
        .where(Referral.referred_user_id == bob.id)
        .values(created_at=datetime.now(UTC) - timedelta(days=40))
    )
    db.session.commit()
    make_sale(carol, "100.00", days_ago=2)
    s2 = make_sale(bob, "200.00", days_ago=40)
    s3 = make_sale(dave, "50.00", days_ago=2)
    make_sale(carol, "30.00", days_ago=1, currency="EUR")
    s5 = make_sale(carol, "10.00", days_ago=3)
    make_sale(carol, "300.00", days_ago=45)
    make_payout(alice, complete=True)
    make_payout(bob, method="lemon_squeezy")
    _refund(s2, "200.00")
    _refund(s3, "20.00")
    cancel_commission(_commission(s5, 1).id, make_user(is_admin=True), "test: a mistake")
    db.session.commit()
    _clicks(ReferralClick, alice, 0, 5)
    _clicks(ReferralClick, alice, 10, 3)
    _clicks(ArchivedReferralClick, alice, 200, 2)
    return Network(alice, bob, carol, dave, erin)


def _refreshed() -> None:
    assert refresh_reports() is True
    db.session.commit()


def _direct(report_range: ReportRange, top: int = 10):
    with snapshot(db.engine) as conn:
        return collect(conn, report_range, DIRECT_QUERIES, top)


def _same_figures(report_range: ReportRange, top: int = 10) -> None:
    ours = read_reports(report_range, top)
    assert replace(_direct(report_range, top), freshness=ours.freshness) == ours


def _day(days_ago: int) -> date:
    return utc_today() - timedelta(days=days_ago)


@pytest.mark.parametrize("days", [30, 90, 365])
def test_each_report_equals_the_direct_query_after_a_refresh(days):
    build_network()
    _refreshed()
    _same_figures(last_days(days))
    _same_figures(ReportRange(_day(60), _day(1)))  # from … to: no ranking
    _same_figures(replace(last_days(days), daily=True), top=100)  # the CSV's


def test_the_last_30_days_by_hand():
    net = build_network()
    _refreshed()
    reports = read_reports(last_days(30))
    sales = {row.start: row for row in reports.sales if row.sales or row.foreign_sales}
    assert {day: (r.sales, r.sales_amount, r.refunded_amount) for day, r in sales.items()} == {
        _day(1): (0, 0, 0),
        _day(2): (2, Decimal("150.00"), Decimal("20.00")),
        _day(3): (1, Decimal("10.00"), 0),
    }
    assert sales[_day(1)].foreign_sales == 1
    total = reports.sales_total
    assert (total.sales, total.net_amount, total.foreign_sales) == (3, Decimal("140.00"), 1)
    # bob's cancelled 1.00 is left out; alice's 5.00 counts as the 3.00 left after the refund.
    assert total.commissions == {1: Decimal("13.00"), 2: Decimal("5.50")}
    assert total.gross_commissions == Decimal("20.50")
    assert total.paid_out_share == Decimal("0.1321")  # 18.50 / 140.00

    funnel = reports.funnel_total
    # None of the visitors signed up: carol, dave and erin joined by a typed code.
    assert funnel == FunnelRow(last_days(30).start, 8, 3, 2, 0, Decimal("18.50"))
    assert (funnel.signup_rate, funnel.paying_rate, funnel.earnings_per_click) == (
        0,
        Decimal("0.6667"),
        Decimal("2.3125"),
    )
    assert [(r.start, r.clicks) for r in reports.funnel if r.clicks] == [
        (_day(10), 3),
        (_day(0), 5),
    ]

    top = [(a.username, a.earnings, a.sales, a.sales_amount, a.signups, a.paying_referrals)
           for a in reports.top_affiliates]  # fmt: skip
    assert top == [
        ("bob", Decimal("10.00"), 2, Decimal("110.00"), 1, 1),
        ("alice", Decimal("8.50"), 1, Decimal("30.00"), 1, 1),
        ("dave", 0, 0, 0, 1, 0),
    ]
    assert [a.conversion for a in reports.top_affiliates] == [1, 1, 0]
    assert reports.top_affiliates[0].user_id == net.bob.id
    assert reports.payout_totals == {
        ("stripe", "completed"): (1, Decimal("35.00")),
        ("lemon_squeezy", "pending"): (1, Decimal("30.00")),
    }


def test_the_last_90_and_365_days_by_hand():
    build_network()
    _refreshed()
    ninety = read_reports(last_days(90))
    # S2's commission was paid, then clawed back in full: nothing of it counts, nor of S2.
    assert [
        (a.username, a.earnings, a.sales, a.sales_amount, a.signups, a.paying_referrals)
        for a in ninety.top_affiliates
    ] == [
        ("bob", Decimal("40.00"), 3, Decimal("410.00"), 1, 1),
        ("alice", Decimal("23.50"), 2, Decimal("30.00"), 2, 2),
        ("dave", 0, 0, 0, 1, 0),
    ]
    year = read_reports(last_days(365))
    assert year.range.unit == "week"
    total = year.sales_total
    assert (total.sales, total.sales_amount, total.refunded_amount) == (
        5,
        Decimal("660.00"),
        Decimal("220.00"),
    )
    assert total.commissions == {1: Decimal("43.00"), 2: Decimal("20.50")}
    assert (year.funnel_total.clicks, year.funnel_total.signups) == (10, 4)
    assert year.funnel_total.paying_referrals == 3


def test_the_visit_rate_is_visitors_who_signed_up_never_above_100_percent():
    """One visitor of alice's link today, who signs up; two people join by a typed code and
    another visitor of ten days ago signs up through bob's link: alice's sign-ups outnumber
    her clicks, yet the rate counts the visitors who signed up through the link clicked."""
    alice = make_user(username="alice")
    bob = make_user(username="bob")
    _clicks(ReferralClick, alice, 0, 1)  # visitor "0-0"
    _clicks(ReferralClick, bob, 10, 2)  # visitors "10-0", "10-1"
    make_user(alice, signup_ip_hash="0-0")
    make_user(alice, signup_ip_hash="typed-1")
    make_user(alice)
    make_user(bob, signup_ip_hash="10-1")
    make_user(alice, signup_ip_hash="10-0")  # bob's visitor, but joined through alice
    _refreshed()
    for report_range in (last_days(30), replace(last_days(30), daily=True)):
        _same_figures(report_range)
    reports = read_reports(last_days(30))
    today = reports.funnel[-1]
    assert (today.clicks, today.signups, today.signed_up_visitors) == (1, 5, 1)
    assert today.signup_rate == 1
    total = reports.funnel_total
    assert (total.clicks, total.signups, total.signed_up_visitors) == (3, 5, 2)
    assert total.signup_rate == Decimal("0.6667")
    assert all(r.signup_rate is None or r.signup_rate <= 1 for r in reports.funnel)


def test_the_views_change_only_when_refreshed():
    net = build_network()
    _refreshed()
    before = read_reports(last_days(30))
    make_sale(net.erin, "1000.00")
    assert read_reports(last_days(30)) == before
    _refreshed()
    after = read_reports(last_days(30))
    assert after.sales_total.sales_amount == before.sales_total.sales_amount + 1000
    assert after.freshness.refreshed_at > before.freshness.refreshed_at


def test_a_refresh_job_run_twice_is_harmless():
    build_network()
    assert refresh_reports_job() is True
    first = read_reports(last_days(90))
    assert refresh_reports_job() is True
    second = read_reports(last_days(90))
    assert replace(second, freshness=first.freshness) == first
    assert second.freshness.refreshed_at > first.freshness.refreshed_at


def test_a_refresh_while_another_runs_changes_nothing(app):
    build_network()
    _refreshed()
    as_of = last_refreshed()
    started, release = threading.Event(), threading.Event()

    def other_refresh():
        with app.app_context():
            assert refresh_reports() is True
            started.set()
            release.wait(10)
            db.session.rollback()

    other = threading.Thread(target=other_refresh)
    other.start()
    try:
        assert started.wait(10)
        assert refresh_reports() is False  # at once: no waiting behind the other one
        db.session.commit()
        assert last_refreshed() == as_of
    finally:
        release.set()
        other.join(10)


@contextmanager
def reports_from(app, url: str) -> Iterator[Flask]:
    """``app`` with ``REPORTS_DATABASE_URL`` = ``url``, its engines closed after."""
    reading = create_app({**app.config, "REPORTS_DATABASE_URL": url})
    try:
        yield reading
    finally:
        with reading.app_context():
            for engine in db.engines.values():
                engine.dispose()


@pytest.fixture
def reports_replica(app):
    """An app whose REPORTS_DATABASE_URL is the test database seen through a schema that
    shadows two report views with figures of its own: what it reads came through that URL."""
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS replica_probe CASCADE"))
        conn.execute(text("CREATE SCHEMA replica_probe"))
        for view in ("report_refreshed", "report_daily_sales"):
            conn.execute(
                text(f"CREATE TABLE replica_probe.{view} AS SELECT * FROM {view} WITH NO DATA")
            )
        conn.execute(
            text("INSERT INTO replica_probe.report_refreshed VALUES (1, '2001-02-03 04:05+00')")
        )
        conn.execute(
            text("INSERT INTO replica_probe.report_daily_sales VALUES (:day, 7, 4242.00, 0, 0)"),
            {"day": utc_today()},
        )
    url = db.engine.url.update_query_dict({"options": "-csearch_path=replica_probe,public"})
    try:
        with reports_from(app, url.render_as_string(hide_password=False)) as reading:
            yield reading
    finally:
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA replica_probe CASCADE"))


def test_reports_read_through_the_reports_database_url(reports_replica):
    _refreshed()  # on the primary: its views hold no sale
    with reports_replica.app_context():
        reports = read_reports(last_days(30))
        assert reports.freshness.refreshed_at == datetime(2001, 2, 3, 4, 5, tzinfo=UTC)
        assert reports.sales_total.sales_amount == Decimal("4242.00")
        assert refresh_reports() is True  # the refresh: on the primary, whatever the URL
        db.session.commit()
        assert read_reports(last_days(30)).sales_total.sales == 7
    assert read_reports(last_days(30)).sales_total.sales == 0


def test_reports_on_a_streaming_replica_show_a_sale_once_its_refresh_is_replayed(app, replica):
    """REPORTS_DATABASE_URL at a real replica: the figures are the replica's, so a refresh
    committed on the primary shows on the page only once the replica has replayed it."""
    primary = app.config["SQLALCHEMY_DATABASE_URI"]
    _, buyer = make_chain(2)
    _refreshed()
    wait_for_replay(primary, replica)
    with reports_from(app, replica) as reading:
        pause_replay(replica)
        try:
            make_sale(buyer, "250.00", days_ago=1)
            _refreshed()
            assert read_reports(last_days(30)).sales_total.sales_amount == Decimal("250.00")
            with reading.app_context():
                before = read_reports(last_days(30))
            assert before.sales_total.sales == 0
        finally:
            resume_replay(replica)
        wait_for_replay(primary, replica)
        with reading.app_context():
            after = read_reports(last_days(30))
    assert after.sales_total.sales_amount == Decimal("250.00")
    assert after.sales_total.commissions == {1: Decimal("25.00")}
    assert after.freshness.refreshed_at > before.freshness.refreshed_at
