"""Form fields shared by the blueprints' forms."""

from __future__ import annotations

from wtforms import DecimalField
from wtforms.validators import StopValidation


class FiniteDecimalField(DecimalField):
    """A ``DecimalField`` that refuses NaN, sNaN and infinities as invalid input.

    ``Decimal`` parses them, but they are no amount: a signalling NaN makes ``NumberRange``
    raise instead of failing validation, and the others would reach the database.
    """

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data is not None and not self.data.is_finite():
            self.data = None
            raise ValueError(self.gettext("Enter a number, like 49.90."))


class MaxLength:
    """Refuse input longer than ``limit`` and stop the field's other validators (``Length``
    does not stop them): an email validator or a password hash never sees a megabyte."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __call__(self, form, field) -> None:
        if field.data and len(field.data) > self.limit:
            raise StopValidation(f"Use at most {self.limit} characters.")
