"""Flask-WTF forms: each carries its CSRF token as the field csrf_token."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from .accounts import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
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
