from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional, ValidationError

from app.forms import FiniteDecimalField, MaxLength
from app.services.accounts.emails import MAX_EMAIL_LENGTH
from app.services.payouts.payee_details import MAX_NAME_LENGTH
from app.services.payouts.stripe_accounts import COUNTRY_REJECTED, EXPRESS_COUNTRIES


class PayeeForm(FlaskForm):
    """Payee details; every field may be left empty to keep the saved value. The rules are
    checked by the service (``save_payee_details``); the form only bounds the input."""

    name = StringField("Payee name", validators=[MaxLength(MAX_NAME_LENGTH)])
    email = EmailField("Payee email", validators=[MaxLength(MAX_EMAIL_LENGTH)])
    # Room for an IBAN written in groups of four.
    iban = StringField("IBAN", validators=[MaxLength(48)])
    paypal_email = EmailField("PayPal address", validators=[MaxLength(MAX_EMAIL_LENGTH)])

    def submitted(self) -> dict[str, str]:
        return {name: self[name].data or "" for name in ("name", "email", "iban", "paypal_email")}


COUNTRIES_BY_NAME = sorted(EXPRESS_COUNTRIES.items(), key=lambda country: country[1])


class StripeAccountForm(FlaskForm):
    """The country of a new Stripe Express account, one of those Stripe supports."""

    country = SelectField(
        "Country of your bank account",
        choices=[
            SelectChoice("", "Choose a country"),
            *(SelectChoice(code, name) for code, name in COUNTRIES_BY_NAME),
        ],
        validate_choice=False,  # checked below, with our message
    )

    def validate_country(self, field: SelectField) -> None:
        if field.data not in EXPRESS_COUNTRIES:
            raise ValidationError(COUNTRY_REJECTED)


class PayoutRequestForm(FlaskForm):
    """A payout request. Blank amount: all that is available. The rules (minimum, balance,
    decimals, accounts) are the service's (``request_payout``); the form only parses."""

    amount = FiniteDecimalField("Amount", validators=[Optional()])
    # Choices are the methods whose account is ready; anything else gets the service's message.
    method = SelectField("Paid by", validate_choice=False)
