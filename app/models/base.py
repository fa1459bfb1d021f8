"""Declarative base, shared column types and mixins for every model."""

from __future__ import annotations

from datetime import datetime

from cuid2 import create_id
from sqlalchemy import DateTime, MetaData, Numeric, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names keep autogenerate and downgrades predictable.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 32
# Amounts: 4 decimal places hold every ISO 4217 minor unit; rounding to the currency's
# own minor units happens in app/money.py. Rates are fractions in [0, 1].
Money = Numeric(19, 4)
Rate = Numeric(7, 6)


def new_id() -> str:
    """A cuid2: collision-resistant, sortable enough for keysets, safe in URLs."""
    return create_id()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IdMixin:
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True, default=new_id)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
