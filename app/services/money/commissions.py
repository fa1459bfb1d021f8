"""Commissions from sales: accrual up the buyer's upline, and adjustment for refunds.

Accrual is one set-based statement for any number of sales: the terms (tier, rate, base) are
snapshotted into each commission, the ledger entry is written in the same statement, and
``ON CONFLICT (sale_id, tier) DO NOTHING`` makes it safe to run twice or concurrently. The
rules are in the README ("Commission rules").
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import bindparam, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY, VARCHAR
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import REFERRAL_TRANSITIONS, Commission, ReferralFlag, Sale
from app.money import minor_units, quantize
from app.services.money import ledger
from app.services.money.sales import lock_sale
from app.services.program.program import get_settings

# The sales about to accrue, what each upline's terms are (``terms``) and who earns at least
# one minor unit (``earning``): shared by accrual and the self-purchase signal, so that a
# sale is flagged only where a commission would be paid. ``considered`` sales are decided by
# this accrual, whether or not they earn (a payment past the recurring limit earns nothing,
# for good).
EARNING_TERMS = """
    st AS (SELECT * FROM referral_program_settings),
    considered AS (
        SELECT s.* FROM sales s
        WHERE s.id = ANY(:sale_ids) AND s.accrued_at IS NULL
          AND s.buyer_id IS NOT NULL AND s.amount IS NOT NULL AND NOT s.is_foreign_currency
    ),
    eligible AS (
        SELECT s.id AS sale_id, s.buyer_id, s.occurred_at,
               CASE WHEN st.commission_base = 'including_tax' THEN s.amount
                    ELSE s.amount - s.tax_amount END AS amount,
               st.commission_base = 'including_tax' AS base_includes_tax
        FROM considered s, st
        WHERE st.max_recurring_payments IS NULL OR s.subscription_id IS NULL
              OR (SELECT count(*) FROM sales p
                  WHERE p.provider = s.provider AND p.subscription_id = s.subscription_id
                    AND p.amount IS NOT NULL
                    AND (p.occurred_at, p.id) <= (s.occurred_at, s.id))
                 <= st.max_recurring_payments
    ),
    terms AS (
        SELECT e.sale_id, e.buyer_id, r.id AS referral_id, r.referrer_id, r.tier, e.amount,
               e.occurred_at, e.base_includes_tax,
               CASE WHEN NOT st.is_mlm_enabled THEN st.default_commission_rate
                    ELSE coalesce(t.commission_rate,
                                  CASE WHEN r.tier = 1 THEN st.default_commission_rate END)
               END AS rate,
               st.hold_days
        FROM eligible e
        CROSS JOIN st
        JOIN referrals r ON r.referred_user_id = e.buyer_id
        JOIN users u ON u.id = r.referrer_id
        LEFT JOIN mlm_tiers t ON t.level = r.tier AND t.is_active
        WHERE r.status <> 'cancelled' AND NOT u.is_suspended
          AND r.tier <= CASE WHEN st.is_mlm_enabled THEN st.max_tier_level ELSE 1 END
    ),
    earning AS (
        SELECT * FROM terms WHERE rate IS NOT NULL AND round(amount * rate, :minor) > 0
    )
"""
_ACCRUE = text(
    "WITH"  # noqa: S608 (constant SQL put together, no input)
    + EARNING_TERMS
    + """,
    inserted AS (
        INSERT INTO commissions (id, user_id, referral_id, sale_id, tier, rate, base_amount,
                                 base_includes_tax, gross_amount, amount, status, payable_at)
        SELECT new_id(), referrer_id, referral_id, sale_id, tier, rate, amount, base_includes_tax,
               round(amount * rate, :minor), round(amount * rate, :minor),
               -- An open flag holds what it covers: a sign-up flag (no sale) all of the
               -- buyer's commissions, a self-purchase flag those of its sale.
               CASE WHEN EXISTS (SELECT 1 FROM referral_flags f
                                 WHERE f.referred_user_id = buyer_id AND f.status = 'open'
                                   AND (f.sale_id IS NULL OR f.sale_id = earning.sale_id))
                    THEN 'held' ELSE 'pending' END,
               occurred_at + make_interval(days => hold_days)
        FROM earning
        ORDER BY sale_id, tier
        ON CONFLICT (sale_id, tier) DO NOTHING
        RETURNING id, user_id, amount, status, payable_at
    ),
    entries AS (
        INSERT INTO ledger_entries (user_id, kind, amount, available_at, commission_id)
        SELECT user_id, 'accrual', amount,
               CASE WHEN status = 'held' THEN CAST(:held AS timestamptz) ELSE payable_at END, id
        FROM inserted
    ),
    -- Locked in id order first: parallel batches with sales of the same buyers wait for
    -- each other's referral rows rather than deadlock. NO KEY UPDATE, the lock the UPDATE
    -- takes: FOR UPDATE would conflict with the KEY SHARE locks of another batch's foreign
    -- key checks (its commissions name these referrals) and deadlock with them.
    completing AS (
        SELECT id FROM referrals
        WHERE referred_user_id IN (SELECT buyer_id FROM eligible)
          AND status = ANY(:completable)
        ORDER BY id FOR NO KEY UPDATE
    ),
    completed AS (
        UPDATE referrals SET status = 'completed', updated_at = now()
        WHERE id IN (SELECT id FROM completing) AND status = ANY(:completable)
    ),
    marked AS (
        UPDATE sales SET accrued_at = now()
        WHERE id IN (SELECT id FROM considered) AND accrued_at IS NULL
    )
    SELECT count(*) FROM inserted
    """
).bindparams(
    bindparam("sale_ids", type_=ARRAY(VARCHAR)), bindparam("completable", type_=ARRAY(VARCHAR))
)


def join_accruals() -> None:
    """Accrue beside other batches: the accruals lock, shared (transaction-level).

    Batches run in parallel: every counter they share (ledger totals, branch earnings) is
    upserted once per statement in key order, so they wait for each other's rows instead of
    deadlocking. What they must not overlap with is a decision that changes what accrues —
    a flag decided (it would miss a batch's held commissions) or a suspension — which takes
    this lock exclusively (``stop_accruals``)."""
    db.session.execute(text("SELECT pg_advisory_xact_lock_shared(hashtext('accruals'))"))


def stop_accruals() -> None:
    """Wait for every accruing batch to commit and keep new ones out until this transaction
    ends: the accruals lock, exclusive. For decisions on what accrues (flags, suspensions)."""
    db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('accruals'))"))


def accrue_sales(sale_ids: list[str]) -> int:
    """Accrue the commissions of these sales; returns how many were created.

    Commissions accrue on the sale's amount, net of its tax unless the program's
    ``commission_base`` is ``including_tax``; refunds and disputes are then applied by
    ``adjust_for_refunds`` (``settle_sales`` does both), so the result does not depend on
    whether a refund was reported before or after the accrual. Idempotent and safe
    concurrently: a sale accrues once (``accrued_at``; later settings changes do not add
    tiers to old sales), its (sale, tier) commissions exist at most once, and only the
    statement that inserts one writes its ledger entry. Sales without a buyer or an amount
    accrue when those arrive; foreign-currency sales accrue nothing.
    """
    if not sale_ids:
        return 0
    return db.session.execute(
        _ACCRUE,
        {
            "sale_ids": sale_ids,
            "minor": minor_units(get_settings().currency),
            "held": ledger.HELD_UNTIL,
            "completable": REFERRAL_TRANSITIONS.sources_of("completed"),
        },
    ).scalar_one()


def in_proportion(value: Decimal, amount: Decimal, refunded: Decimal, disputed: Decimal) -> Decimal:
    """``value`` reduced in proportion to what of a sale of ``amount`` was refunded or
    disputed: ``value * (amount - refunded - disputed) / amount``, never below 0, unrounded
    (one division last, so it is exact whenever the result has a finite decimal expansion)."""
    if not amount:
        return Decimal(0)
    return value * (amount - min(amount, refunded + disputed)) / amount


def adjust_for_refunds(sale_id: str) -> None:
    """Bring the sale's commissions in line with its cumulative refunds and disputes.

    Locks the sale, then sets each commission to ``rate * base * remaining share`` from the
    totals (refunds, which include tax, reduce the base in proportion) — so repeated or
    reordered refund reports never reduce twice. Unpaid commissions change their amount (a
    ``reversal`` entry); when nothing of the sale is left for good (refunded, or a lost
    dispute) they are cancelled, while an open dispute leaves them at zero until it closes.
    Paid ones keep their amount and the difference is clawed back (a ``clawback`` entry,
    which may take the balance below zero, to be netted from later payouts).
    """
    sale = lock_sale(sale_id)
    if sale is None or sale.amount is None:  # merged into its sale, or not paid yet
        return
    currency = get_settings().currency
    # Final only when no open dispute can still be won back.
    is_gone = sale.refunded_amount >= sale.amount or (
        sale.dispute_closed_at is not None
        and sale.refunded_amount + sale.disputed_amount >= sale.amount
    )
    # One an admin cancelled stays at nothing, whatever refunds come later.
    commissions = db.session.scalars(
        select(Commission)
        .where(Commission.sale_id == sale.id, Commission.cancelled_at.is_(None))
        .with_for_update()
    )
    for commission in commissions:
        target = min(
            quantize(
                in_proportion(
                    commission.base_amount * commission.rate,
                    sale.amount,
                    sale.refunded_amount,
                    sale.disputed_amount,
                ),
                currency,
            ),
            commission.gross_amount,
        )
        realign(commission, target, is_gone=is_gone)


def realign(commission: Commission, target: Decimal, *, is_gone: bool) -> None:
    """Bring one locked commission to ``target`` through the ledger. Unpaid (pending or
    held): its amount changes (a ``reversal`` entry dated like its accrual), and it is
    cancelled when ``is_gone``. Paid: it keeps its amount and what is above ``target`` is
    clawed back (a ``clawback`` entry available now, which may take the balance below zero,
    to be netted from later payouts). Cancelled: nothing. Repeating it changes nothing."""
    if commission.status in ("pending", "held"):
        available_at = ledger.HELD_UNTIL if commission.status == "held" else commission.payable_at
        ledger.append(
            commission.user_id,
            "reversal",
            target - commission.amount,
            available_at,
            commission_id=commission.id,
        )
        commission.amount = target
        if is_gone:
            commission.transition_to("cancelled")
    elif commission.status == "paid":
        owed_back = commission.amount - min(target, commission.amount)
        ledger.append(
            commission.user_id,
            "clawback",
            commission.clawed_back - owed_back,
            datetime.now(UTC),
            commission_id=commission.id,
        )
        commission.clawed_back = owed_back


_WITH_REFUNDS = text(
    "SELECT id FROM sales WHERE id = ANY(:ids) AND refunded_amount + disputed_amount > 0"
).bindparams(bindparam("ids", type_=ARRAY(VARCHAR)))


def settle_sales(sale_ids: list[str], reported: Iterable[str] = ()) -> None:
    """Flag self-purchases among the sales about to accrue (so their commissions are
    held), accrue what is newly accruable, then realign with refunds every sale that has
    any or whose refund or dispute was just ``reported`` (a dispute won goes back to zero).
    Sales are realigned in id order, so concurrent settlements lock them in the same order."""
    # Imported here: fraud decisions release and cancel held commissions (this module).
    from app.services.money.fraud import flag_self_purchases

    join_accruals()
    flag_self_purchases(sale_ids)
    accrue_sales(sale_ids)
    with_refunds = (
        set(db.session.scalars(_WITH_REFUNDS, {"ids": list(sale_ids)})) if sale_ids else set()
    )
    for sale_id in sorted(with_refunds | set(reported)):
        adjust_for_refunds(sale_id)


def _held_commissions(flag: ReferralFlag) -> list[Commission]:
    """The held commissions ``flag`` covers (all of its buyer's, or its sale's) that no other
    open flag still holds, locked."""
    other = aliased(ReferralFlag)
    still_held = (
        select(other.id)
        .where(
            other.referred_user_id == flag.referred_user_id,
            other.status == "open",
            other.id != flag.id,
            or_(other.sale_id.is_(None), other.sale_id == Commission.sale_id),
        )
        .exists()
    )
    query = (
        select(Commission)
        .join(Sale, Sale.id == Commission.sale_id)
        .where(Sale.buyer_id == flag.referred_user_id, Commission.status == "held", ~still_held)
        .order_by(Commission.id)
        .with_for_update(of=Commission)
    )
    if flag.sale_id is not None:
        query = query.where(Commission.sale_id == flag.sale_id)
    return list(db.session.scalars(query))


def _decide_held(flag: ReferralFlag, new_status: str) -> list[Commission]:
    """Take each held commission's money out of "held"; released ones accrue again at their
    payable date, cancelled ones are gone. Returns them."""
    held = _held_commissions(flag)
    for commission in held:
        ledger.append(
            commission.user_id, "reversal", -commission.amount, ledger.HELD_UNTIL,
            commission_id=commission.id,
        )  # fmt: skip
        if new_status == "pending":
            ledger.append(
                commission.user_id, "accrual", commission.amount, commission.payable_at,
                commission_id=commission.id,
            )  # fmt: skip
        commission.transition_to(new_status)
    return held


def release_held(flag: ReferralFlag) -> list[Commission]:
    """A cleared flag: the held commissions it covers become pending (those another open
    flag holds stay held)."""
    return _decide_held(flag, "pending")


def cancel_held(flag: ReferralFlag) -> list[Commission]:
    """A confirmed flag: the held commissions it covers are cancelled (those another open
    flag holds stay held, for that flag's decision)."""
    return _decide_held(flag, "cancelled")
