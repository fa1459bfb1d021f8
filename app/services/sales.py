"""Sales as the providers report them: upserts that converge whatever the order of events.

Every function here is idempotent: the same report twice changes nothing the second time,
and reports can arrive in any order (a refund before its sale, a subscription payment
before the checkout that names its customer). Amounts from providers are cumulative
(refunded so far, disputed now), so a repeated or late report never subtracts twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert

from app.extensions import db
from app.models import CustomerLink, Sale, User

# Sale dates outside these bounds are refused at every entry (admin form, provider
# reports); the database holds the fixed bounds too. A payment up to a day ahead of our
# clock is clock skew; further ahead it is a mistake or a forgery.
EARLIEST_SALE_AT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_SALE_AHEAD = timedelta(days=1)


def sale_date_problem(occurred_at: datetime) -> str | None:
    """Why a sale cannot have happened at ``occurred_at``, or ``None`` when it can."""
    if occurred_at < EARLIEST_SALE_AT:
        return "A sale date cannot be before 2000."
    if occurred_at > datetime.now(UTC) + LATEST_SALE_AHEAD:
        return "A sale date cannot be in the future."
    return None


@dataclass(frozen=True)
class SaleReport:
    provider: str
    external_id: str
    amount: Decimal
    currency: str
    occurred_at: datetime
    buyer_id: str | None = None
    customer_id: str | None = None  # resolves the buyer through customer_links when needed
    subscription_id: str | None = None


_UPSERT_SALE = text(
    """
    INSERT INTO sales (id, provider, external_id, buyer_id, amount, currency, occurred_at,
                       subscription_id, customer_id, is_foreign_currency, recorded_by, note)
    VALUES (new_id(), :provider, :external_id, :buyer_id, :amount, :currency, :occurred_at,
            :subscription_id, :customer_id,
            CAST(:currency AS varchar) <> (SELECT currency FROM referral_program_settings),
            :recorded_by, :note)
    ON CONFLICT (provider, external_id) DO UPDATE SET
        amount = coalesce(sales.amount, EXCLUDED.amount),
        currency = coalesce(sales.currency, EXCLUDED.currency),
        occurred_at = coalesce(sales.occurred_at, EXCLUDED.occurred_at),
        buyer_id = coalesce(sales.buyer_id, EXCLUDED.buyer_id),
        subscription_id = coalesce(sales.subscription_id, EXCLUDED.subscription_id),
        customer_id = coalesce(sales.customer_id, EXCLUDED.customer_id),
        is_foreign_currency = CASE WHEN sales.amount IS NULL
                                   THEN EXCLUDED.is_foreign_currency
                                   ELSE sales.is_foreign_currency END,
        updated_at = now()
    RETURNING id
    """
)
_UPSERT_REFUND = text(
    """
    INSERT INTO sales (id, provider, external_id, refunded_amount)
    VALUES (new_id(), :provider, :external_id, :refunded)
    ON CONFLICT (provider, external_id) DO UPDATE SET
        refunded_amount = greatest(sales.refunded_amount, EXCLUDED.refunded_amount),
        updated_at = now()
    RETURNING id
    """
)
# A closed dispute is final: a late or redelivered "created" cannot reopen it.
_UPSERT_DISPUTE = text(
    """
    INSERT INTO sales (id, provider, external_id, disputed_amount, dispute_closed_at)
    VALUES (new_id(), :provider, :external_id, :disputed,
            CASE WHEN :closed THEN now() END)
    ON CONFLICT (provider, external_id) DO UPDATE SET
        disputed_amount = CASE WHEN sales.dispute_closed_at IS NOT NULL AND NOT :closed
                               THEN sales.disputed_amount ELSE EXCLUDED.disputed_amount END,
        dispute_closed_at = coalesce(sales.dispute_closed_at, EXCLUDED.dispute_closed_at),
        updated_at = now()
    RETURNING id
    """
)


def existing_user_id(candidate: object) -> str | None:
    """``candidate`` if it is the id of one of our users, else None: ids in provider
    payloads come from outside (a stale or mistyped id makes an unattributed sale, not an
    event that fails forever)."""
    if not isinstance(candidate, str) or not 0 < len(candidate) <= 32:
        return None
    return db.session.scalar(select(User.id).where(User.id == candidate))


def buyer_for_customer(provider: str, customer_id: str | None) -> str | None:
    if not customer_id:
        return None
    return db.session.scalar(
        select(CustomerLink.user_id).where(
            CustomerLink.provider == provider, CustomerLink.customer_id == customer_id
        )
    )


_ATTRIBUTE_BY_CUSTOMER = text(
    """
    UPDATE sales SET buyer_id = :user_id, updated_at = now()
    WHERE provider = :provider AND customer_id = :customer_id AND buyer_id IS NULL
    RETURNING id
    """
)


def link_customer(provider: str, customer_id: str | None, user_id: str | None) -> list[str]:
    """Remember which user a provider's customer is (first link wins), and attribute that
    customer's sales that arrived before the link. Returns those sales (to be settled).
    ``user_id`` must be one of our users' ids (see ``existing_user_id``)."""
    if not customer_id or not user_id:
        return []
    db.session.execute(
        insert(CustomerLink)
        .values(provider=provider, customer_id=customer_id, user_id=user_id)
        .on_conflict_do_nothing()
    )
    params = {"provider": provider, "customer_id": customer_id, "user_id": user_id}
    return list(db.session.scalars(_ATTRIBUTE_BY_CUSTOMER, params))


def record_sale(
    report: SaleReport, *, recorded_by: str | None = None, note: str | None = None
) -> str:
    """Create the sale, or complete the row an earlier refund created. Returns its id.

    A sale in another currency than the program's is stored and flagged, never converted.
    ``report.buyer_id`` must be one of our users' ids or None (provider payloads are checked
    with ``existing_user_id`` first); without it the customer link, if known, names the buyer.
    """
    buyer_id = report.buyer_id or buyer_for_customer(report.provider, report.customer_id)
    return db.session.execute(
        _UPSERT_SALE,
        {
            "provider": report.provider,
            "external_id": report.external_id,
            "buyer_id": buyer_id,
            "amount": report.amount,
            "currency": report.currency.upper(),
            "occurred_at": report.occurred_at,
            "subscription_id": report.subscription_id,
            "customer_id": report.customer_id,
            "recorded_by": recorded_by,
            "note": note,
        },
    ).scalar_one()


def record_refund(provider: str, external_id: str, refunded_total: Decimal) -> str:
    """The cumulative refunded amount; a smaller or repeated report changes nothing."""
    params = {"provider": provider, "external_id": external_id, "refunded": refunded_total}
    return db.session.execute(_UPSERT_REFUND, params).scalar_one()


def record_dispute(
    provider: str, external_id: str, disputed: Decimal, *, is_closed: bool = False
) -> str:
    """The amount under dispute (0 once won); it counts as refunded. Once a dispute is
    closed, reports of it being open are ignored, whatever order they arrive in."""
    params = {
        "provider": provider,
        "external_id": external_id,
        "disputed": disputed,
        "closed": is_closed,
    }
    return db.session.execute(_UPSERT_DISPUTE, params).scalar_one()


def lock_sale(sale_id: str) -> Sale:
    """The sale, locked for the rest of the transaction: adjustments of one sale queue up."""
    return db.session.scalars(
        select(Sale)
        .where(Sale.id == sale_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def recent_sales(limit: int = 50) -> list[Sale]:
    return list(
        db.session.scalars(
            select(Sale)
            .where(Sale.amount.is_not(None))
            .order_by(Sale.created_at.desc())
            .limit(limit)
        )
    )


def find_unattributed(limit: int = 50) -> list[Sale]:
    """Paid sales whose buyer is unknown, newest first (a partial index holds them)."""
    return list(
        db.session.scalars(
            select(Sale)
            .where(Sale.buyer_id.is_(None), Sale.amount.is_not(None))
            .order_by(Sale.occurred_at.desc())
            .limit(limit)
        )
    )


def attribute_sale(sale_id: str, buyer_id: str) -> bool:
    """Name the buyer of an unattributed sale. False when it has a buyer already (so two
    admins attributing at once cannot both win)."""
    updated = db.session.execute(
        text(
            "UPDATE sales SET buyer_id = :buyer, updated_at = now() "
            "WHERE id = :id AND buyer_id IS NULL AND amount IS NOT NULL"
        ),
        {"buyer": buyer_id, "id": sale_id},
    ).rowcount
    return bool(updated)


def unaccrued_sale_ids(older_than: timedelta, limit: int = 1000) -> list[str]:
    """Attributable sales still not accrued after ``older_than`` (their job was lost)."""
    return list(
        db.session.scalars(
            text(
                "SELECT id FROM sales WHERE accrued_at IS NULL AND buyer_id IS NOT NULL "
                "AND amount IS NOT NULL AND NOT is_foreign_currency "
                "AND updated_at < clock_timestamp() - :age ORDER BY updated_at LIMIT :limit"
            ),
            {"age": older_than, "limit": limit},
        )
    )
