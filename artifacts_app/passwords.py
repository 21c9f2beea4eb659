"""Checking a password against the login throttle, for every form that asks for one (sign-in,
sign-up, reauthentication, the password change), and the 429 page a refusal gets."""

from __future__ import annotations

import math

from flask import current_app, make_response, render_template, request
from flask_login import current_user
from werkzeug.wrappers import Response

from . import accounts, throttle

PASSWORD_WRONG = "That password is incorrect."


def login_guard() -> throttle.LoginThrottle:
    guard: throttle.LoginThrottle = current_app.extensions["login_throttle"]
    return guard


def too_many_attempts(refusal: throttle.Refusal, action: str = "sign-in") -> Response:
    """429 with Retry-After and a page that says how long to wait."""
    page = render_template(
        "auth/throttled.html", action=action, slowdown=refusal.slowdown, seconds=refusal.seconds,
        minutes=math.ceil(refusal.seconds / 60), gap_seconds=int(throttle.ACCOUNT_GAP.total_seconds()),
    )
    response = make_response(page, 429)
    response.headers["Retry-After"] = str(refusal.seconds)
    return response


def check_own_password(password: str) -> throttle.Refusal | bool:
    """Whether `password` is the signed-in user's, throttled like a login for the same pair.

    A refusal is returned instead when the pair, address or account has failed too often; a wrong
    password counts as a failed login; a right one clears the pair's count. The caller commits.
    Raises ThrottleUnavailable (a 503) when the throttle's store does not answer.
    """
    guard = login_guard()
    attempt = throttle.Attempt(current_user.email, request.remote_addr)
    try:
        refusal = guard.refusal(attempt)
        if refusal is not None:
            return refusal
        if len(password) > accounts.MAX_PASSWORD_LENGTH or not accounts.password_matches(current_user, password):
            guard.record_failure(attempt)
            return False
        guard.record_success(attempt)
    except throttle.ThrottleUnavailable as error:
        raise throttle.ThrottleUnavailable("Checking your password") from error.__cause__
    return True
