"""Flask-WTF forms: each carries its CSRF token as the field csrf_token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, RadioField, StringField, ValidationError
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length

from .accounts import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from .models import MAX_RETENTION_DAYS
from .tokens import MAX_NAME_LENGTH


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])
    remember = BooleanField("Keep me signed in on this device")


def new_password_fields(label: str, message: str) -> tuple[PasswordField, PasswordField]:
    """A new password and its repetition, with the account rules on length."""
    password = PasswordField(label, validators=[
        DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH, message=message),
    ])
    confirm = PasswordField(
        f"Repeat {label[0].lower()}{label[1:]}",
        validators=[DataRequired(), EqualTo("password", message="The passwords differ.")],
    )
    return password, confirm


class SignupForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password, confirm = new_password_fields("Password", f"Password must be at least {MIN_PASSWORD_LENGTH} characters.")


class ReauthForm(FlaskForm):
    password = PasswordField("Password", validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])


class PasswordChangeForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])
    password, confirm = new_password_fields(
        "New password", f"Password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters."
    )
    keep_tokens = BooleanField("Keep my API tokens working")


class TokenForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=MAX_NAME_LENGTH)])


class RetentionForm(FlaskForm):
    """Keep runs for ever, or delete those finished more than `days` days ago (see days_kept)."""

    keep = RadioField("Keep my runs",
                      choices=[SelectChoice("forever", "For ever"), SelectChoice("days", "For a number of days")],
                      validators=[InputRequired("Choose how long to keep your runs.")])
    days = StringField("Days")

    def validate_days(self, field: StringField) -> None:
        if self.keep.data != "days":
            return
        text = (field.data or "").strip()
        if len(text) > 5 or not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_RETENTION_DAYS:
            raise ValidationError(f"Enter a whole number of days from 1 to {MAX_RETENTION_DAYS:,}.")

    def days_kept(self) -> int | None:
        """The setting to store (after validation): a number of days, or None for ever."""
        return int(self.days.data.strip()) if self.keep.data == "days" else None


class DeleteAccountForm(FlaskForm):
    password = PasswordField("Your password", validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])
