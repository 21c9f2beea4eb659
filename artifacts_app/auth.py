"""Log in, log out, sign up; where unauthenticated requests go; safe redirects after login."""

from __future__ import annotations

import math
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from . import accounts, throttle
from .extensions import db, login_manager
from .forms import ConfirmForm, LoginForm, SignupForm
from .htmx import is_htmx, vary_on_htmx
from .models import new_session_token
from .types import utcnow

bp = Blueprint("auth", __name__)

LOGIN_FAILED = "Email or password is incorrect."


def safe_next(target: str | None) -> str:
    """`target` if it is a path on this site, else the artifact list: no open redirects.

    Browsers and werkzeug treat backslashes and control characters loosely ("/\\t/evil"
    becomes "//evil"), so any of those, or a scheme, or a host, falls back.
    """
    fallback = url_for("artifacts.index")
    if not target or not target.startswith("/") or target.startswith("//"):
        return fallback
    if "\\" in target or any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    return target


def current_page() -> str:
    """The page the person is on: for htmx, the page that made the request, not the fragment."""
    if is_htmx():
        page = urlsplit(request.headers.get("HX-Current-URL", ""))
        if page.netloc == request.host and page.path:
            return page.path + (f"?{page.query}" if page.query else "")
    return request.full_path.rstrip("?")


@login_manager.unauthorized_handler
def unauthorized() -> Response:
    """Pages redirect to the login form; htmx is told to navigate there; the API answers 401 JSON."""
    if request.blueprint == "api":
        return make_response(jsonify(error="unauthorized", message="A valid bearer token is required."), 401)
    login_url = url_for("auth.login") + "?" + urlencode({"next": safe_next(current_page())})
    if is_htmx():
        # Swapping the login form into the list would be wrong: make the browser go there.
        response = make_response("", 401)
        response.headers["HX-Redirect"] = login_url
        return vary_on_htmx(response)
    return redirect(login_url)


def too_many_attempts(until: datetime) -> Response:
    """429 with Retry-After and a page that says when to try again."""
    wait = max(1, math.ceil((until - utcnow()).total_seconds()))
    response = make_response(render_template("auth/throttled.html", minutes=math.ceil(wait / 60)), 429)
    response.headers["Retry-After"] = str(wait)
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    """The login form; a correct email and password start a new session."""
    next_url = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url)
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form, next_url=next_url)

    guard: throttle.LoginThrottle = current_app.extensions["login_throttle"]
    keys = [throttle.email_key(form.email.data), throttle.address_key(request.remote_addr)]
    blocked_until = guard.blocked_until(keys)
    if blocked_until is not None:
        return too_many_attempts(blocked_until)
    user = accounts.authenticate(form.email.data, form.password.data)
    if user is None:
        guard.record_failure(keys)
        db.session.commit()
        form.form_errors.append(LOGIN_FAILED)
        return render_template("auth/login.html", form=form, next_url=next_url)

    guard.clear(keys[0])
    db.session.commit()
    # A new session, not the one the browser arrived with: no fixation.
    session.clear()
    login_user(user, remember=form.remember.data)
    return redirect(next_url)


@bp.post("/logout")
@login_required
def logout() -> Response:
    """End the session for real: rotating the token invalidates every copy of the cookie."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    current_user.session_token = new_session_token()
    db.session.commit()
    # Clear first: logout_user() leaves the marker that makes Flask-Login delete the remember cookie.
    session.clear()
    logout_user()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> Response | str:
    """Create an account (only when SIGNUP_ENABLED) and sign in."""
    if not current_app.config["SIGNUP_ENABLED"]:
        abort(404)
    if current_user.is_authenticated:
        return redirect(url_for("artifacts.index"))
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = accounts.create_user(form.email.data, form.password.data)
        except accounts.AccountError as error:
            db.session.rollback()
            form.form_errors.append(str(error))
        else:
            db.session.commit()
            session.clear()
            login_user(user)
            return redirect(url_for("artifacts.index"))
    return render_template("auth/signup.html", form=form)
