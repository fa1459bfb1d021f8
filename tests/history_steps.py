"""Hypothesis strategies shared by the random money histories (the ledger's and the
rollups'): amounts in cents, and the steps every history has — a sale some days ago, a
refund or a dispute of a share of one of the last ten sales."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from app.extensions import db
from app.models import Sale, User
from app.services.money.commissions import adjust_for_refunds
from app.services.money.sales import record_dispute, record_refund
from tests.factories import make_sale


def cents(most: int) -> st.SearchStrategy[Decimal]:
    """Amounts from 0.01 to ``most`` cents."""
    return st.integers(min_value=1, max_value=most).map(lambda c: Decimal(c) / 100)


def sale_steps(amounts: st.SearchStrategy[Decimal]) -> tuple[st.SearchStrategy, ...]:
    return (
        st.tuples(st.just("sale"), amounts, st.integers(0, 60)),
        st.tuples(st.just("refund"), st.integers(0, 9), st.integers(0, 100)),
        st.tuples(st.just("dispute"), st.integers(0, 9), st.integers(0, 100)),
    )


def take_sale_step(step: tuple, buyer: User, sales: list[str]) -> None:
    """Apply ``step`` if it is one of ``sale_steps``: a new sale joins ``sales``; a refund or
    dispute takes its share of one of them and realigns its commissions. Other steps are the
    caller's."""
    kind = step[0]
    if kind == "sale":
        sales.append(make_sale(buyer, str(step[1]), days_ago=step[2]))
    elif kind in ("refund", "dispute") and sales:
        sale = db.session.get(Sale, sales[step[1] % len(sales)])
        share = (sale.amount * step[2] / 100).quantize(Decimal("0.01"))
        if kind == "refund":
            record_refund(sale.provider, sale.external_id, share)
        else:
            record_dispute(sale.provider, sale.external_id, share)
        adjust_for_refunds(sale.id)
