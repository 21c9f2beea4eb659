"""Creating users and checking passwords; the one place passwords are hashed."""

from __future__ import annotations

import re
import secrets

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from . import queries, tokens
from .extensions import db
from .models import User, new_session_token

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # hashing a megabyte of "password" is a denial of service
# Deliberately loose: the only real check of an address is mail reaching it.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AccountError(ValueError):
    """A user could not be created or changed; the message says why, for the person."""


def check_password_rules(password: str) -> None:
    """Raise AccountError unless the password is long enough (and not absurdly long)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"Password must be at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"Password must be at most {MAX_PASSWORD_LENGTH} characters.")


def hash_password(password: str) -> str:
    """A salted hash by werkzeug's current default method (tests may pick a cheaper one)."""
    method = current_app.config.get("PASSWORD_HASH_METHOD")
    return generate_password_hash(password, method) if method else generate_password_hash(password)


def create_user(email: str, password: str) -> User:
    """A new user with a hashed password; the caller commits."""
    email = email.strip().lower()
    if not EMAIL_PATTERN.match(email) or len(email) > 320:
        raise AccountError("Enter a valid email address.")
    check_password_rules(password)
    if queries.user_by_email(email) is not None:
        raise AccountError("An account with that email already exists.")
    user = User(email=email, password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(email: str, password: str) -> User | None:
    """The user whose email and password these are, or None.

    An unknown email still pays for one hash check, against a dummy hash of the same method,
    so the response time does not tell which addresses have accounts.
    """
    user = queries.user_by_email(email)
    if user is None:
        check_password_hash(dummy_hash(), password[:MAX_PASSWORD_LENGTH])
        return None
    if len(password) > MAX_PASSWORD_LENGTH:
        check_password_hash(dummy_hash(), password[:MAX_PASSWORD_LENGTH])
        return None
    return user if check_password_hash(user.password_hash, password) else None


def dummy_hash() -> str:
    """A hash of nothing anyone knows, made once per hashing method."""
    method = current_app.config.get("PASSWORD_HASH_METHOD") or "default"
    if method not in _DUMMY_HASHES:
        _DUMMY_HASHES[method] = hash_password(secrets.token_urlsafe(16))
    return _DUMMY_HASHES[method]


_DUMMY_HASHES: dict[str, str] = {}


def password_matches(user: User, password: str) -> bool:
    """Whether the password is the user's."""
    return check_password_hash(user.password_hash, password)


def set_password(user: User, password: str, *, keep_tokens: bool = False) -> int:
    """Change the password and end every existing session of the user, and (unless `keep_tokens`)
    revoke their API tokens too; how many tokens were revoked. The caller commits."""
    check_password_rules(password)
    user.password_hash = hash_password(password)
    user.session_token = new_session_token()
    return 0 if keep_tokens else tokens.revoke_all(user)
