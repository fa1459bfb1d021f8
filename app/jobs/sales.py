"""Settling sales outside the webhook path (recorded or attributed by an admin)."""

from __future__ import annotations

from app.extensions import db
from app.services.money.commissions import settle_sales


def settle_sales_job(sale_ids: list[str]) -> None:
    """Accrue and align with refunds. Idempotent: a second run changes nothing. Enqueued
    with retries; the webhook sweeper re-enqueues sales whose job was lost."""
    settle_sales(sale_ids)
    db.session.commit()
