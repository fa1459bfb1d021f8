from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, Regexp

from app.forms import MaxLength

USERNAME_RULE = Regexp(
    r"^[A-Za-z0-9_.-]+\Z", message="Use letters, digits, dots, dashes or underscores."
)


class RegisterForm(FlaskForm):
    username = StringField(
        "Username",
        validators=[DataRequired("Choose a username."), Length(3, 40), USERNAME_RULE],
    )
    email = EmailField(
        "Email",
        validators=[
            DataRequired("Enter your email address."),
            MaxLength(254),
            Email(
                "Enter a valid email address, like name@example.com.", check_deliverability=False
            ),
        ],
    )
    password = PasswordField(
        "Password", validators=[DataRequired("Choose a password."), Length(max=256)]
    )
    confirm = PasswordField(
        "Confirm password",
        validators=[
            DataRequired("Type the password again."),
            EqualTo("password", "The passwords differ."),
        ],
    )
    referral_code = StringField("Referral code", validators=[Optional(), Length(max=20)])
    # The terms version shown with the form: accepting it is checked against the one in force.
    terms_version = HiddenField()
    accept_terms = BooleanField(
        "I have read and accept the program terms",
        validators=[DataRequired("Accept the program terms to join.")],
    )


class LoginForm(FlaskForm):
    email = EmailField(
        "Email", validators=[DataRequired("Enter your email address."), MaxLength(254)]
    )
    password = PasswordField(
        "Password", validators=[DataRequired("Enter your password."), MaxLength(256)]
    )
    remember = BooleanField("Remember me on this device")


class ForgotPasswordForm(FlaskForm):
    email = EmailField(
        "Email", validators=[DataRequired("Enter your email address."), MaxLength(254)]
    )


class ResetPasswordForm(FlaskForm):
    new_password = PasswordField(
        "New password", validators=[DataRequired("Choose a new password."), Length(max=256)]
    )
    confirm = PasswordField(
        "Confirm new password",
        validators=[
            DataRequired("Type the new password again."),
            EqualTo("new_password", "The passwords differ."),
        ],
    )


class PasswordForm(ResetPasswordForm):
    current_password = PasswordField(
        "Current password",
        validators=[DataRequired("Enter your current password."), MaxLength(256)],
    )


class EmailChangeForm(FlaskForm):
    new_email = EmailField(
        "New email address",
        validators=[
            DataRequired("Enter the new address."),
            MaxLength(254),
            Email(
                "Enter a valid email address, like name@example.com.", check_deliverability=False
            ),
        ],
    )
    current_password = PasswordField(
        "Current password",
        validators=[DataRequired("Enter your current password."), MaxLength(256)],
    )
