"""Sales as the providers report them: upserts that converge whatever the order of events.

Every function here is idempotent: the same report twice changes nothing the second time,
and reports can arrive in any order (a refund before its sale, a subscription payment
before the checkout that names its customer). Amounts from providers are cumulative
(refunded so far, disputed now), so a repeated or late report never subtracts twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, VARCHAR, insert

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
    amount: Decimal  # what the buyer paid, tax included
    currency: str
    occurred_at: datetime
    buyer_id: str | None = None
    customer_id: str | None = None  # resolves the buyer through customer_links when needed
    subscription_id: str | None = None
    tax_amount: Decimal = Decimal(0)
    payer_email: str | None = None  # lower-case
    aliases: tuple[str, ...] = ()  # other ids of the same payment (see ``SaleKey``)


def _keys(external_id: str, aliases: tuple[str, ...]) -> list[str]:
    return list(dict.fromkeys((external_id, *aliases)))


_FIND_SALES = text(
    """
    SELECT DISTINCT s.id, s.amount IS NULL AS is_placeholder, s.created_at
    FROM sale_keys k JOIN sales s ON s.id = k.sale_id
    WHERE k.provider = :provider AND k.key = ANY(:keys)
    ORDER BY is_placeholder, s.created_at, s.id
    """
).bindparams(bindparam("keys", type_=ARRAY(VARCHAR)))
# A refund-only row (no amount, so never accrued) that turns out to be the same payment as
# another sale: its refund and dispute move there, its keys too, and it goes.
_FOLD_PLACEHOLDER = (
    text(
        """
        UPDATE sales t SET
            refunded_amount = greatest(t.refunded_amount, g.refunded_amount),
            disputed_amount = CASE WHEN t.dispute_closed_at IS NOT NULL THEN t.disputed_amount
                                   WHEN g.dispute_closed_at IS NOT NULL THEN g.disputed_amount
                                   ELSE greatest(t.disputed_amount, g.disputed_amount) END,
            dispute_closed_at = coalesce(t.dispute_closed_at, g.dispute_closed_at),
            updated_at = now()
        FROM sales g WHERE t.id = :target AND g.id = :source
        """
    ),
    text("UPDATE sale_keys SET sale_id = :target WHERE sale_id = :source"),
    text("DELETE FROM sales WHERE id = :source AND amount IS NULL"),
)
_ADD_KEYS = text(
    """
    INSERT INTO sale_keys (provider, key, sale_id)
    SELECT :provider, key, :sale_id FROM unnest(CAST(:keys AS varchar[])) AS key
    ON CONFLICT (provider, key) DO NOTHING
    """
)
_NEW_PLACEHOLDER = text(
    "INSERT INTO sales (id, provider, external_id) VALUES (new_id(), :provider, :external_id) "
    "RETURNING id"
)


_LOCK_KEYS = text(
    """
    SELECT count(pg_advisory_xact_lock(h)) FROM (
        SELECT DISTINCT hashtextextended('sale:' || k, 0) AS h FROM unnest(:keys) k ORDER BY 1
    ) ordered
    """
).bindparams(bindparam("keys", type_=ARRAY(VARCHAR)))


_LOCKED_PAYMENTS = "locked_payments"  # session.info: (root transaction, keys it locked)


def lock_payments(payments: Iterable[tuple[str, list[str]]]) -> None:
    """Take the transaction-level advisory lock of every (provider, key) of these payments,
    in one statement, in hash order: a batch locks all its payments' keys before it changes
    any sale, so batches that share a payment wait for each other and never each hold a
    key the other wants. A key locked already by this transaction is taken again at no
    cost; keys this transaction locked already are not sent again (the drain locks its whole
    batch, then each upsert asks for its own keys)."""
    transaction = db.session().get_transaction()
    held = db.session.info.get(_LOCKED_PAYMENTS)
    if held is None or held[0] is not transaction:
        held = db.session.info[_LOCKED_PAYMENTS] = (transaction, set())
    keys = {f"{provider}:{key}" for provider, payment_keys in payments for key in payment_keys}
    if keys - held[1]:
        db.session.execute(_LOCK_KEYS, {"keys": sorted(keys - held[1])})
        held[1].update(keys)


def payment_keys(
    provider: str, external_id: str, aliases: tuple[str, ...]
) -> tuple[str, list[str]]:
    """The keys a report names its payment by, for ``lock_payments``."""
    return provider, _keys(external_id, aliases)


def _sale_for(provider: str, keys: list[str]) -> str:
    """The one sale any of ``keys`` names, created (without an amount) when none does; every
    key then names it. Sale facts arrive in any order and under different ids of one
    payment, so refund-only rows found under other keys are folded into the sale. Two
    recorded payments are never merged: a key of another paid sale stays with it.

    Serialized with every other upsert naming any of these keys (``lock_payments``), so two
    events naming different ids of one payment cannot each create a sale."""
    lock_payments([(provider, keys)])
    found = db.session.execute(_FIND_SALES, {"provider": provider, "keys": keys}).all()
    if not found:
        sale_id = db.session.execute(
            _NEW_PLACEHOLDER, {"provider": provider, "external_id": keys[0]}
        ).scalar_one()
    else:
        sale_id = found[0].id
        for other in found[1:]:
            if other.is_placeholder:
                for statement in _FOLD_PLACEHOLDER:
                    db.session.execute(statement, {"source": other.id, "target": sale_id})
    db.session.execute(_ADD_KEYS, {"provider": provider, "keys": keys, "sale_id": sale_id})
    return sale_id


_FILL_SALE = text(
    """
    UPDATE sales SET
        amount = coalesce(amount, :amount),
        tax_amount = CASE WHEN amount IS NULL THEN :tax_amount ELSE tax_amount END,
        currency = coalesce(currency, :currency),
        occurred_at = coalesce(occurred_at, :occurred_at),
        buyer_id = coalesce(buyer_id, :buyer_id),
        subscription_id = coalesce(subscription_id, :subscription_id),
        customer_id = coalesce(customer_id, :customer_id),
        payer_email = coalesce(payer_email, :payer_email),
        is_foreign_currency = CASE WHEN amount IS NULL
            THEN CAST(:currency AS varchar) <> (SELECT currency FROM referral_program_settings)
            ELSE is_foreign_currency END,
        recorded_by = coalesce(recorded_by, :recorded_by),
        note = coalesce(note, :note),
        updated_at = now()
    WHERE id = :id
    """
)
_SET_REFUND = text(
    """
    UPDATE sales SET refunded_amount = greatest(refunded_amount, :refunded), updated_at = now()
    WHERE id = :id
    """
)
# A closed dispute is final: a late or redelivered "created" cannot reopen it.
_SET_DISPUTE = text(
    """
    UPDATE sales SET
        disputed_amount = CASE WHEN dispute_closed_at IS NOT NULL AND NOT :closed
                               THEN disputed_amount ELSE :disputed END,
        dispute_closed_at = coalesce(dispute_closed_at, CASE WHEN :closed THEN now() END),
        updated_at = now()
    WHERE id = :id
    """
)


def _is_plausible_id(candidate: object) -> bool:
    return isinstance(candidate, str) and 0 < len(candidate) <= 32


def existing_user_ids(candidates: Iterable[object]) -> set[str]:
    """Those of ``candidates`` that are ids of our users (one statement for a batch): ids in
    provider payloads come from outside (a stale or mistyped id makes an unattributed sale,
    not an event that fails forever)."""
    ids = sorted({c for c in candidates if _is_plausible_id(c)})
    if not ids:
        return set()
    return set(db.session.scalars(select(User.id).where(User.id.in_(ids))))


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
    ``user_id`` must be one of our users' ids (see ``existing_user_ids``)."""
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

    The sale is found by any of its ids (``external_id`` and ``aliases``); its facts are
    set once, by the first report that has them. A sale in another currency than the
    program's is stored and flagged, never converted. ``report.buyer_id`` must be one of
    our users' ids or None (provider payloads are checked with ``existing_user_ids`` first);
    without it the customer link, if known, names the buyer.
    """
    buyer_id = report.buyer_id or buyer_for_customer(report.provider, report.customer_id)
    sale_id = _sale_for(report.provider, _keys(report.external_id, report.aliases))
    db.session.execute(
        _FILL_SALE,
        {
            "id": sale_id,
            "buyer_id": buyer_id,
            "amount": report.amount,
            "tax_amount": report.tax_amount,
            "currency": report.currency.upper(),
            "occurred_at": report.occurred_at,
            "subscription_id": report.subscription_id,
            "customer_id": report.customer_id,
            "payer_email": report.payer_email,
            "recorded_by": recorded_by,
            "note": note,
        },
    )
    return sale_id


def record_refund(
    provider: str, external_id: str, refunded_total: Decimal, aliases: tuple[str, ...] = ()
) -> str:
    """The cumulative refunded amount; a smaller or repeated report changes nothing."""
    sale_id = _sale_for(provider, _keys(external_id, aliases))
    db.session.execute(_SET_REFUND, {"id": sale_id, "refunded": refunded_total})
    return sale_id


def record_dispute(
    provider: str,
    external_id: str,
    disputed: Decimal,
    *,
    is_closed: bool = False,
    aliases: tuple[str, ...] = (),
) -> str:
    """The amount under dispute (0 once won); it counts as refunded. Once a dispute is
    closed, reports of it being open are ignored, whatever order they arrive in."""
    sale_id = _sale_for(provider, _keys(external_id, aliases))
    params = {"id": sale_id, "disputed": disputed, "closed": is_closed}
    db.session.execute(_SET_DISPUTE, params)
    return sale_id


def lock_sale(sale_id: str) -> Sale | None:
    """The sale, locked for the rest of the transaction: adjustments of one sale queue up.
    None when it is gone (a refund-only row merged into its sale earlier in the batch)."""
    return db.session.scalars(
        select(Sale)
        .where(Sale.id == sale_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


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
