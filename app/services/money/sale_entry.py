"""Sales an admin records by hand or attributes to a buyer: audited, settled by a worker."""

from __future__ import annotations

from datetime import UTC, datetime, time
from datetime import date as Date
from decimal import Decimal

from sqlalchemy import exists, func, select

from app.extensions import db
from app.jobs.queueing import RETRY, enqueue_after_commit
from app.jobs.sales import settle_sales_job
from app.models import Sale, User
from app.money import quantize
from app.services.money.sales import SaleReport, attribute_sale, record_sale, sale_date_problem
from app.services.ops import audit


def _paid_at(paid_on: Date) -> datetime:
    # A day without a time: noon UTC keeps it on that date in every time zone near UTC.
    return datetime.combine(paid_on, time(12), UTC)


def paid_on_problem(paid_on: Date) -> str | None:
    """Why an admin cannot record a sale paid on ``paid_on``, or None when they can."""
    return sale_date_problem(_paid_at(paid_on))


def record_manual_sale(
    admin: User,
    buyer: User,
    amount: Decimal,
    currency: str,
    paid_on: Date,
    token: str,
    note: str | None = None,
) -> str | None:
    """Record a sale by hand, audit it and have a worker settle it after the commit.

    ``token`` (from the form) makes any number of submits one sale: only the first records,
    audits and enqueues anything; the others return None and change nothing. Concurrent
    submits of one token queue up on a transaction-level advisory lock, so the check below
    sees a committed sale (the unique key on the external id stays the last line).
    """
    currency = currency.upper()
    external_id = f"manual:{token}"
    db.session.execute(select(func.pg_advisory_xact_lock(func.hashtext(external_id))))
    if db.session.scalar(
        select(exists().where(Sale.provider == "manual", Sale.external_id == external_id))
    ):
        return None
    sale_id = record_sale(
        SaleReport(
            provider="manual",
            external_id=external_id,
            amount=quantize(amount, currency),
            currency=currency,
            occurred_at=_paid_at(paid_on),
            buyer_id=buyer.id,
        ),
        recorded_by=admin.id,
        note=note,
    )
    audit.record(
        "sale.recorded",
        actor_id=admin.id,
        subject_type="sale",
        subject_id=sale_id,
        buyer_id=buyer.id,
        amount=str(amount),
        currency=currency,
    )
    enqueue_after_commit(settle_sales_job, [sale_id], retry=RETRY)
    return sale_id


def attribute(admin: User, sale_id: str, buyer: User) -> bool:
    """Attribute an unattributed sale; it then accrues. False if it was attributed already."""
    if not attribute_sale(sale_id, buyer.id):
        return False
    audit.record(
        "sale.attributed",
        actor_id=admin.id,
        subject_type="sale",
        subject_id=sale_id,
        buyer_id=buyer.id,
    )
    enqueue_after_commit(settle_sales_job, [sale_id], retry=RETRY)
    return True
