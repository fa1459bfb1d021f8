from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    HiddenField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
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
from app.models.payouts import PAYOUT_TRANSITIONS
from app.portal.forms import CommissionFilterForm
from app.services.accounts.moderation import MAX_REASON_LENGTH as SUSPENSION_REASON_LENGTH
from app.services.money.cancellations import MAX_REASON_LENGTH as CANCEL_REASON_LENGTH
from app.services.money.sale_entry import paid_on_problem
from app.services.payouts.approvals import MAX_REASON_LENGTH
from app.services.payouts.payouts import METHOD_NAMES
from app.services.payouts.settlement import MAX_REFERENCE_LENGTH
from app.services.reports.ranges import PRESETS, ReportRange, last_days, range_problem

PAYOUT_STATUSES = sorted(PAYOUT_TRANSITIONS.statuses)
FORM_EXPIRED = "The form expired: reload the page and try again."


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


class PayoutFilterForm(FlaskForm):
    """The payout queue's filters (a GET form: no CSRF). Unknown choices are ignored."""

    class Meta:
        csrf = False

    status = SelectField(
        "Status",
        choices=[SelectChoice("", "Any")]
        + [SelectChoice(s, s.replace("_", " ")) for s in PAYOUT_STATUSES],
        validators=[Optional()],
    )
    method = SelectField(
        "Method",
        choices=[SelectChoice("", "Any")] + [SelectChoice(m, n) for m, n in METHOD_NAMES.items()],
        validators=[Optional()],
    )
    user = StringField("User (username or email)", validators=[Optional(), Length(max=254)])
    created_from = DateField("Requested from", validators=[Optional()])
    created_to = DateField("to", validators=[Optional()])

    def validate_created_to(self, field) -> None:
        start = self.created_from.data
        if field.data and start and field.data < start:
            raise ValidationError("The end date is before the start date.")


class PayoutActionForm(FlaskForm):
    """An admin action on one payout: a reason for hold, reject and mark failed, a
    transaction reference for marking a Lemon Squeezy payout completed (checked by the
    services, which say what is missing)."""

    reason = StringField("Reason", validators=[Optional(), Length(max=MAX_REASON_LENGTH)])
    reference = StringField(
        "Transaction reference", validators=[Optional(), Length(max=MAX_REFERENCE_LENGTH)]
    )


class BulkApproveForm(FlaskForm):
    payout_ids = SelectMultipleField("Payouts", validate_choice=False)


class SuspensionForm(FlaskForm):
    """Suspend or reactivate an affiliate: the reason is required (checked by the service,
    which says so) and kept in the audit log."""

    reason = StringField("Reason", validators=[Optional(), Length(max=SUSPENSION_REASON_LENGTH)])


class AdminCommissionFilterForm(CommissionFilterForm):
    """The affiliates' filters (their statuses, as the list and the receipt show them), and
    whose commissions (a GET form: no CSRF)."""

    user = StringField("Earner (username or email)", validators=[Optional(), Length(max=254)])


class CommissionCancelForm(FlaskForm):
    """Cancel a commission: the reason is required (the service says so) and kept."""

    reason = StringField("Reason", validators=[Optional(), Length(max=CANCEL_REASON_LENGTH)])


class AuditFilterForm(FlaskForm):
    """The audit log's filters (a GET form: no CSRF). A subject id needs its type (the index
    that finds it starts with the type)."""

    class Meta:
        csrf = False

    actor = StringField("Actor (username or email)", validators=[Optional(), Length(max=254)])
    action = StringField(
        "Action starts with",
        validators=[
            Optional(),
            Length(max=64),
            Regexp(r"^[A-Za-z0-9_.:-]+\Z", message="Letters, digits and . _ : - only."),
        ],
    )
    subject_type = StringField("Subject type", validators=[Optional(), Length(max=32)])
    subject_id = StringField("Subject id", validators=[Optional(), Length(max=64)])
    created_from = DateField("From", validators=[Optional()])
    created_to = DateField("to", validators=[Optional()])

    def validate_subject_id(self, field) -> None:
        if field.data and not (self.subject_type.data or "").strip():
            raise ValidationError("Give the subject type too (user, payout, …).")

    def validate_created_to(self, field) -> None:
        start = self.created_from.data
        if field.data and start and field.data < start:
            raise ValidationError("The end date is before the start date.")


class ReportRangeForm(FlaskForm):
    """The reports' dates (a GET form: no CSRF): the last 30, 90 or 365 days, or from … to."""

    class Meta:
        csrf = False

    period = SelectField(
        "Period",
        choices=[SelectChoice(str(days), f"Last {days} days") for days in PRESETS]
        + [SelectChoice("custom", "From … to")],
        default=str(PRESETS[0]),
    )
    start = DateField("From", validators=[Optional()])
    end = DateField("To", validators=[Optional()])

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        if self.period.data != "custom":
            return True
        if not (self.start.data and self.end.data):
            self.end.errors.append("Give the first and the last day.")
            return False
        if problem := range_problem(self.start.data, self.end.data):
            self.end.errors.append(problem)
            return False
        return True

    def report_range(self) -> ReportRange:
        """The range asked for (a validated form, or the default one)."""
        if self.period.data == "custom":
            return ReportRange(self.start.data, self.end.data)
        return last_days(int(self.period.data))
