"""The running totals balances are read from: bounded reads, checked and repaired from the
entries by ``flask ledger verify [--fix]``."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, text

from app.extensions import db
from app.models import AuditEntry
from app.services.money import ledger
from app.services.money.ledger_totals import differences, repair
from tests.factories import make_chain, make_sale
from tests.ledger_checks import assert_totals_exact, balances_from_entries


def _rows_read_from(table: str, statement, params: dict) -> int:
    """How many rows the statement's plan read from ``table`` (EXPLAIN ANALYZE)."""
    plan = db.session.execute(
        text(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement.text}"), params
    ).scalar_one()
    plan = plan if isinstance(plan, list) else json.loads(plan)

    def walk(node: dict) -> int:
        own = node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
        here = own if node.get("Relation Name") == table else 0
        return here + sum(walk(child) for child in node.get("Plans", []))

    return walk(plan[0]["Plan"])


def test_balances_read_the_current_hour_not_the_history():
    """A year of sales: the balance reads the few entries of the current hour and the hour
    buckets after it, whatever the history holds."""
    _, buyer = make_chain(2)
    for days_ago in range(0, 365, 3):
        make_sale(buyer, "10.00", days_ago=days_ago)
    (user_id,) = db.session.execute(text("SELECT user_id FROM ledger_totals")).one()
    now = datetime.now(UTC)
    params = {"user_id": user_id, "now": now, "held": ledger.HELD_UNTIL}
    assert db.session.scalar(text("SELECT count(*) FROM ledger_entries")) == 122
    assert _rows_read_from("ledger_entries", ledger._BALANCES, params) <= 1
    # The hold period's buckets (30 days, one sale every 3 days), not the year's.
    assert _rows_read_from("ledger_buckets", ledger._BALANCES, params) <= 2 * 11
    assert ledger.balances(user_id, now) == balances_from_entries(user_id, now)


def test_verify_reports_differences_and_fix_repairs_them_audited(runner):
    root, buyer = make_chain(2)
    make_sale(buyer, "100.00", days_ago=40)
    make_sale(buyer, "50.00")
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 0, result.output
    assert "verified" in result.output
    db.session.execute(text("UPDATE ledger_totals SET total = total + 1"))
    db.session.execute(text("DELETE FROM ledger_buckets WHERE available_hour > now()"))
    db.session.commit()
    assert differences() == [root.id]

    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1
    assert root.id in result.output and "--fix" in result.output
    assert differences() == [root.id]  # a check changes nothing

    result = runner.invoke(args=["ledger", "verify", "--fix"])
    assert result.exit_code == 0, result.output
    assert "total 16.0000 -> 15.0000" in result.output
    db.session.expire_all()
    assert differences() == []
    assert_totals_exact()
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "ledger.totals_repaired")
    ).one()
    assert (entry.subject_id, entry.details["total_after"]) == (root.id, "15.0000")


def test_verify_reports_and_rebuilds_differing_earnings_rollups(runner):
    _, buyer = make_chain(2)
    make_sale(buyer, "100.00")
    db.session.execute(text("UPDATE commission_rollup_months SET amount = amount + 1"))
    db.session.commit()
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1
    assert "EARNINGS ROLLUPS DIFFER for 1 users" in result.output
    result = runner.invoke(args=["ledger", "verify", "--fix"])
    assert result.exit_code == 0, result.output
    assert "Earnings rollups rebuilt (1 rows differed)." in result.output
    assert runner.invoke(args=["ledger", "verify"]).exit_code == 0
    count = select(func.count()).where(AuditEntry.action == "rollups.rebuilt")
    assert db.session.scalar(count) == 1


def test_a_repair_counts_entries_appended_meanwhile_once(app):
    """A repair holds the user's totals row; an accrual for that user waits on it and adds
    its part after the repair commits: nothing is lost or counted twice."""
    root, buyer = make_chain(2)
    make_sale(buyer, "100.00")
    db.session.execute(text("UPDATE ledger_totals SET total = 0"))
    db.session.commit()
    repaired, appended = threading.Event(), threading.Event()

    def accrue() -> None:
        with app.app_context():
            repaired.wait(5)
            make_sale(db.session.merge(buyer), "30.00")  # waits for the repair's locks
            appended.set()
            db.session.remove()

    thread = threading.Thread(target=accrue)
    thread.start()
    assert repair([root.id])[0].total_after == Decimal("10.0000")
    repaired.set()
    assert not appended.wait(0.5)  # the accrual waits for the repair's commit
    db.session.commit()
    thread.join(10)
    assert appended.is_set()
    assert differences() == []
    count = select(func.count()).where(AuditEntry.action == "ledger.totals_repaired")
    assert db.session.scalar(count) == 1


def test_becoming_available_splits_the_current_hour_at_now():
    """An entry later in the current hour is pending, one earlier is available: the bucket of
    the current hour is not read, its entries are."""
    _, buyer = make_chain(2)
    make_sale(buyer, "100.00", days_ago=30)  # available 30 days after: about now
    (user_id, available_at) = db.session.execute(
        text("SELECT user_id, available_at FROM ledger_entries")
    ).one()
    before, after = available_at - timedelta(seconds=1), available_at + timedelta(seconds=1)
    assert ledger.balances(user_id, before).pending == Decimal("10.00")
    assert ledger.becoming_available(user_id, before).dates == [
        (available_at.astimezone(UTC).date(), Decimal("10.00"))
    ]
    assert ledger.balances(user_id, after).available == Decimal("10.00")
    assert ledger.becoming_available(user_id, after).dates == []
