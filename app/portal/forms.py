from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import NumberRange, Optional, ValidationError

from app.services.money.commission_states import STATES

# The statuses as an affiliate reads them (``commission_states``).
STATE_CHOICES = [SelectChoice("", "Any status")] + [
    SelectChoice(state.key, state.name) for state in STATES
]


class CommissionFilterForm(FlaskForm):
    """Filters in the query string: a GET form, no CSRF needed (it changes nothing)."""

    class Meta:
        csrf = False

    status = SelectField("Status", choices=STATE_CHOICES, default="", validate_choice=True)
    tier = IntegerField(
        "Tier", validators=[Optional(), NumberRange(1, 100, "A tier from 1 to 100.")]
    )
    since = DateField("Recorded from", validators=[Optional()])
    until = DateField("Recorded to", validators=[Optional()])

    def validate_since(self, field) -> None:
        _check_year(field)

    def validate_until(self, field) -> None:
        _check_year(field)
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError("The end date is before the start date.")


def _check_year(field) -> None:
    if field.data and not 2000 <= field.data.year <= 2999:
        raise ValidationError("Pick a date between the years 2000 and 2999.")
