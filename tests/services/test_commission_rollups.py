"""Earnings rollups (``commission_rollups``): exact after every kind of change to commissions
and sales, single- and multi-row, under concurrent writers; the commissions page's totals and
chart read them and agree with the commission rows."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, text

from app.extensions import db
from app.models import Commission, CommissionRollup, Sale, User
from app.money import _MINOR_UNITS, minor_units
from app.services.money.cancellations import cancel_commission
from app.services.money.commission_listing import (
    CommissionFilters,
    commission_totals,
    monthly_earnings,
)
from app.services.money.commission_rollups import differences, rebuild_all
from app.services.money.commissions import adjust_for_refunds
from app.services.money.sales import record_dispute, record_refund
from tests.factories import make_chain, make_payout, make_sale, make_user, set_program
from tests.rollup_checks import assert_rollups_exact

TODAY = datetime.now(UTC).date()


def _commissions(sale_id: str) -> list[Commission]:
    return list(
        db.session.scalars(
            select(Commission).where(Commission.sale_id == sale_id).order_by(Commission.tier)
        )
    )


def _refund(sale_id: str, amount: str) -> None:
    sale = db.session.get(Sale, sale_id)
    record_refund(sale.provider, sale.external_id, Decimal(amount))
    adjust_for_refunds(sale_id)
    db.session.commit()


def _rollups(user: User) -> dict[tuple[date, int, str], tuple[int, Decimal, Decimal, Decimal]]:
    rows = db.session.scalars(select(CommissionRollup).where(CommissionRollup.user_id == user.id))
    return {
        (r.day, r.tier, r.status): (r.commissions, r.amount, r.clawed_back, r.sale_net)
        for r in rows
    }


_INSERT = text(
    """
    INSERT INTO commissions (id, user_id, referral_id, sale_id, tier, rate, base_amount,
                             gross_amount, amount, status, payable_at, created_at)
    SELECT new_id(), r.referrer_id, r.id, s.id, r.tier, 0.1, s.amount,
           round(s.amount * 0.1, 2), round(s.amount * 0.1, 2), 'pending',
           s.occurred_at + interval '30 days', now() - make_interval(days => s.amount::int % 3)
    FROM sales s JOIN referrals r ON r.referred_user_id = s.buyer_id
    WHERE s.id = ANY(:ids)
    ORDER BY CASE WHEN :reverse THEN r.tier ELSE -r.tier END
    """
)
_CANCEL = text(
    "UPDATE commissions SET status = 'cancelled', amount = 0 "
    "WHERE sale_id = ANY(:ids) AND status = 'pending'"
)
_REFUND = text("UPDATE sales SET refunded_amount = amount / 3 WHERE id = ANY(:ids)")


def _raw_sales(buyers: list[User], count: int) -> list[str]:
    """``count`` sales (10 + n) by ``buyers`` in turn, not accrued: the tests write their
    commissions. Ordered by amount."""
    db.session.execute(
        text(
            "INSERT INTO sales (id, provider, external_id, amount, currency, occurred_at, "
            "buyer_id) SELECT new_id(), 'manual', 'c-' || g, 10 + g, 'USD', now(), "
            "(CAST(:buyers AS varchar[]))[1 + g % :n] FROM generate_series(1, :count) g"
        ),
        {"buyers": [b.id for b in buyers], "n": len(buyers), "count": count},
    )
    db.session.commit()
    return list(db.session.scalars(select(Sale.id).order_by(Sale.amount)))


def test_the_sql_minor_units_are_the_apps():
    codes = [*_MINOR_UNITS, "USD", "EUR", "GBP", "jpy", "kwd"]
    found = dict(
        db.session.execute(
            text(
                "SELECT code, currency_minor_units(code) FROM unnest(CAST(:codes AS text[])) code"
            ),
            {"codes": codes},
        ).all()
    )
    assert found == {code: minor_units(code) for code in codes}


def test_accrued_commissions_are_rolled_up_per_day_tier_and_status():
    *uplines, buyer = make_chain(4)
    make_sale(buyer, "100.00")
    make_sale(buyer, "33.33")
    assert _rollups(uplines[2]) == {
        (TODAY, 1, "pending"): (2, Decimal("13.33"), Decimal(0), Decimal("133.33")),
    }
    assert set(_rollups(uplines[0])) == {(TODAY, 3, "pending")}
    assert_rollups_exact(uplines)


def test_refunds_disputes_cancellations_and_clawbacks_keep_the_rollups_exact():
    *uplines, buyer = make_chain(4)
    admin = make_user(is_admin=True)
    partly = make_sale(buyer, "80.00", days_ago=45)
    fully = make_sale(buyer, "45.00")
    disputed = make_sale(buyer, "19.99")
    paid = make_sale(buyer, "600.00", days_ago=40)
    cancelled = make_sale(buyer, "12.34")
    assert_rollups_exact(uplines)

    _refund(partly, "20.00")  # amounts and net sale down
    _refund(fully, "45.00")  # cancelled
    assert_rollups_exact(uplines)
    record_dispute("manual", db.session.get(Sale, disputed).external_id, Decimal("19.99"))
    adjust_for_refunds(disputed)  # held at zero while the dispute is open
    db.session.commit()
    assert_rollups_exact(uplines)

    make_payout(uplines[2], complete=True)  # pending -> paid, many rows in one statement
    assert {status for _, _, status in _rollups(uplines[2])} >= {"paid"}
    _refund(paid, "150.00")  # paid: clawed back, the net sale down
    assert _commissions(paid)[0].clawed_back > 0
    assert_rollups_exact(uplines)

    for commission in _commissions(cancelled):
        cancel_commission(commission.id, admin, "test order")
    cancel_commission(_commissions(paid)[1].id, admin, "fraud")  # paid: clawed back in full
    db.session.commit()
    assert_rollups_exact(uplines)


def test_multi_row_statements_move_rows_between_keys_and_drop_empty_rows():
    *uplines, buyer = make_chain(4)
    sales = _raw_sales([buyer], 8)
    db.session.execute(_INSERT, {"ids": sales, "reverse": False})  # 24 rows, one statement
    db.session.commit()
    assert_rollups_exact(uplines)
    # One statement moving commissions of three users to other days, tiers and statuses.
    db.session.execute(
        text(
            """
            UPDATE commissions SET created_at = created_at - make_interval(days => tier * 40),
                   status = CASE WHEN tier = 2 THEN 'held' ELSE status END,
                   amount = CASE WHEN tier = 3 THEN amount / 2 ELSE amount END
            WHERE sale_id = ANY(:ids)
            """
        ),
        {"ids": sales[:4]},
    )
    db.session.commit()
    assert_rollups_exact(uplines)
    assert any(day < TODAY - timedelta(days=79) for day, _, _ in _rollups(uplines[1]))

    # Updates that change none of the rolled-up figures leave the rollups alone.
    before = _rollups(uplines[0])
    db.session.execute(text("UPDATE commissions SET updated_at = now()"))
    db.session.execute(text("UPDATE sales SET note = 'seen', accrued_at = now()"))
    db.session.commit()
    assert _rollups(uplines[0]) == before

    # Every commission of a key gone in one statement: its row goes too.
    db.session.execute(
        text("DELETE FROM commissions WHERE sale_id = ANY(:ids)"), {"ids": sales[:4]}
    )
    db.session.commit()
    assert {status for _, _, status in _rollups(uplines[1])} == {"pending"}
    assert_rollups_exact(uplines)

    db.session.execute(text("TRUNCATE commissions CASCADE"))
    db.session.commit()
    assert db.session.scalar(text("SELECT count(*) FROM commission_rollups")) == 0


def test_a_new_minor_unit_rounds_every_net_sale_again():
    """The settings refuse a new currency once there are sales; changed around them (here by
    SQL), the rollups follow."""
    set_program(currency="JPY")
    *uplines, buyer = make_chain(3)
    for amount in ("1001", "333", "7"):
        make_sale(buyer, amount, currency="JPY")
    _refund(db.session.scalar(select(Sale.id).where(Sale.amount == 333)), "100")
    # Bases that are not the whole sale (as with tax excluded): net sales with fractions.
    db.session.execute(text("UPDATE commissions SET base_amount = round(base_amount / 3, 4)"))
    db.session.commit()
    assert_rollups_exact(uplines)
    db.session.execute(text("UPDATE referral_program_settings SET currency = 'KWD'"))
    db.session.commit()
    assert_rollups_exact(uplines)
    net = commission_totals(uplines[0].id, CommissionFilters(), 3).sale_net
    assert net == commission_totals(uplines[0].id, CommissionFilters(), 3, from_rows=True).sale_net
    assert net != commission_totals(uplines[0].id, CommissionFilters(), 0, from_rows=True).sale_net


def test_the_page_figures_come_from_the_rollups_except_in_hold_and_available():
    *uplines, buyer = make_chain(3)
    make_sale(buyer, "100.00")
    make_sale(buyer, "50.00", days_ago=40)
    user_id, today = uplines[1].id, CommissionFilters(since=TODAY, until=TODAY)
    db.session.execute(text("UPDATE commission_rollup_months SET amount = amount + 1000"))
    db.session.execute(text("UPDATE commission_rollups SET amount = amount + 7"))
    everything = commission_totals(user_id, CommissionFilters(), 2)
    assert everything.amount == Decimal("1015.00")  # this month's row, off by 1000
    chart = monthly_earnings(user_id, CommissionFilters())
    assert sum(chart.totals.values()) == Decimal("1015.00")
    assert commission_totals(user_id, today, 2).amount == Decimal("22.00")  # a day: day rows
    for state in ("in_hold", "available"):  # by payable date: the commission rows
        figures = commission_totals(user_id, CommissionFilters(state=state), 2)
        assert figures.amount in (Decimal("10.00"), Decimal("5.00"))
    another_minor = commission_totals(user_id, CommissionFilters(), 3)
    assert another_minor.amount == Decimal("15.00")  # rounded otherwise: the rows
    db.session.rollback()


def test_filters_read_whole_months_and_edge_days_alike():
    """Every way a date range falls on months and days gives the rows' figures."""
    *uplines, buyer = make_chain(3)
    sales = _raw_sales([buyer], 40)
    db.session.execute(_INSERT, {"ids": sales, "reverse": False})
    # Spread over 14 months: day n of the series is n * 11 days ago.
    db.session.execute(
        text(
            "UPDATE commissions c SET created_at = c.created_at - make_interval(days => "
            "(s.amount::int - 10) * 11) FROM sales s WHERE s.id = c.sale_id"
        )
    )
    db.session.commit()
    first = (TODAY - timedelta(days=40 * 11)).replace(day=1)
    bounds = [None, first, TODAY - timedelta(days=100), TODAY.replace(day=1)]
    bounds += [(TODAY.replace(day=1) - timedelta(days=n)) for n in (1, 31, 45)]
    ranges = [
        CommissionFilters(since=since, until=until)
        for since in bounds
        for until in bounds
        if since is None or until is None or since <= until
    ]
    assert_rollups_exact(uplines, tuple(ranges))


def test_differences_name_what_is_off_and_rebuild_all_repairs_it():
    *uplines, buyer = make_chain(3)
    make_sale(buyer, "100.00")
    make_sale(buyer, "20.00", days_ago=40)
    db.session.execute(text("UPDATE commission_rollups SET sale_net = sale_net + 1 WHERE tier = 2"))
    db.session.execute(text("DELETE FROM commission_rollups WHERE tier = 1"))
    db.session.execute(
        text("INSERT INTO commission_rollups VALUES (:user, '2001-01-01', 1, 'paid', 1, 5, 0, 50)"),
        {"user": buyer.id},
    )
    found = differences()  # the day rows were changed, not the month rows
    assert {d.table for d in found} == {"commission_rollups"}
    assert [(d.user_id, d.tier) for d in found] == sorted(
        [(buyer.id, 1), (uplines[0].id, 2), (uplines[1].id, 1)]
    )
    off = next(d for d in found if d.tier == 2)
    assert off.stored.sale_net == off.recounted.sale_net + 1
    assert next(d for d in found if d.user_id == buyer.id).recounted is None
    assert next(d for d in found if d.user_id == uplines[1].id).stored is None
    db.session.execute(text("UPDATE commission_rollup_months SET commissions = 0"))
    assert {d.table for d in differences()} == {"commission_rollups", "commission_rollup_months"}
    rebuild_all()
    db.session.commit()
    assert_rollups_exact(uplines)


def test_concurrent_writers_of_the_same_users_keep_the_rollups_exact(app):
    """Two connections insert, refund and cancel commissions that land on the same rollup
    rows at once, one statement per transaction, rows emptied and re-created under each other:
    no deadlock, and the rollups equal a recount. The buyers sit in two branches under one
    top affiliate, whose rows (3 days x 2 statuses) both write: the per-row branch_earnings
    trigger (rewritten in migration 0024) deadlocks on itself when two statements write the
    same uplines' rows in different orders, which is not what this test is about."""
    top = make_user()
    branches = []
    for _ in range(2):
        branch = [make_user(referrer=top)]
        branch += [make_user(referrer=branch[0])]
        branches.append([*branch, make_user(referrer=branch[1])])
    uplines = [top] + [u for branch in branches for u in branch[:2]]
    sale_ids = _raw_sales([branch[2] for branch in branches], 160)
    start = threading.Barrier(2)

    def write(worker: int) -> int:
        mine = sale_ids[worker::2]
        batches = [mine[n : n + 4] for n in range(0, len(mine), 4)]
        with app.app_context():
            start.wait()
            try:
                for n, batch in enumerate(batches):
                    db.session.execute(_INSERT, {"ids": batch, "reverse": worker == 1})
                    db.session.commit()
                    if n % 3 == 1:
                        db.session.execute(_REFUND, {"ids": batches[n - 1]})
                        db.session.commit()
                    if n % 2 == 1:
                        db.session.execute(_CANCEL, {"ids": batches[n - 1] + batch[:1]})
                        db.session.commit()
                return len(batches)
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(write, (0, 1))) == [20, 20]
    db.session.expire_all()
    assert db.session.scalar(text("SELECT count(*) FROM commissions")) == 480
    assert_rollups_exact(uplines)
