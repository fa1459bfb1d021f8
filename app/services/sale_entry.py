"""Sales an admin records by hand or attributes to a buyer: audited, settled by a worker."""

from __future__ import annotations

from datetime import UTC, datetime, time
from datetime import date as Date
from decimal import Decimal

from app.jobs.queueing import RETRY, enqueue_after_commit
from app.jobs.sales import settle_sales_job
from app.models import User
from app.money import quantize
from app.services import audit
from app.services.sales import SaleReport, attribute_sale, record_sale


def record_manual_sale(
    admin: User,
    buyer: User,
    amount: Decimal,
    currency: str,
    paid_on: Date,
    token: str,
    note: str | None = None,
) -> str:
    """Record a sale by hand. ``token`` (from the form) makes a double submit one sale."""
    currency = currency.upper()
    sale_id = record_sale(
        SaleReport(
            provider="manual",
            external_id=f"manual:{token}",
            amount=quantize(amount, currency),
            currency=currency,
            occurred_at=datetime.combine(paid_on, time(12), UTC),
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
