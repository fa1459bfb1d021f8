from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from app.forms import FiniteDecimalField
from app.services.money.sale_entry import paid_on_problem


class SaleForm(FlaskForm):
    # Generated when the form is shown: a double submit records one sale, not two.
    token = HiddenField(validators=[DataRequired(), Length(max=64)])
    buyer = StringField(
        "Buyer (username or email)", validators=[DataRequired("Name the buyer."), Length(max=254)]
    )
    amount = FiniteDecimalField(
        "Amount paid",
        places=None,
        validators=[
            InputRequired("Enter the amount paid."),
            NumberRange(min=0.01, max=1_000_000, message="Between 0.01 and 1,000,000."),
        ],
    )
    currency = StringField(
        "Currency",
        validators=[DataRequired(), Regexp(r"^[A-Za-z]{3}\Z", message="A 3-letter ISO code.")],
    )
    occurred_on = DateField("Paid on", validators=[DataRequired("Enter the payment date.")])
    note = TextAreaField(
        "Note (why it is recorded by hand)", validators=[Optional(), Length(max=500)]
    )

    def validate_occurred_on(self, field) -> None:
        if problem := paid_on_problem(field.data):
            raise ValidationError(problem)


class AttributeForm(FlaskForm):
    buyer = StringField(
        "Buyer (username or email)", validators=[DataRequired("Name the buyer."), Length(max=254)]
    )


class FlagDecisionForm(FlaskForm):
    decision = RadioField(
        "Decision",
        choices=[
            SelectChoice("cleared", "Clear: release held commissions"),
            SelectChoice("confirmed", "Confirm fraud"),
        ],
        validators=[DataRequired()],
    )
