"""Hypothesis strategies shared by the random money histories (the ledger's and the
rollups'): amounts in cents, and the steps every history has — a sale some days ago, a
refund or a dispute of a share of one of the last ten sales."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st


def cents(most: int) -> st.SearchStrategy[Decimal]:
    """Amounts from 0.01 to ``most`` cents."""
    return st.integers(min_value=1, max_value=most).map(lambda c: Decimal(c) / 100)


def sale_steps(amounts: st.SearchStrategy[Decimal]) -> tuple[st.SearchStrategy, ...]:
    return (
        st.tuples(st.just("sale"), amounts, st.integers(0, 60)),
        st.tuples(st.just("refund"), st.integers(0, 9), st.integers(0, 100)),
        st.tuples(st.just("dispute"), st.integers(0, 9), st.integers(0, 100)),
    )
