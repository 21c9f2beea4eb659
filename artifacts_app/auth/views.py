"""Log in, log out, sign up, confirm the password; where unauthenticated or stale sessions go;
safe redirects after login."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from flask import (
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import confirm_login, current_user, login_required, login_user, logout_user

# Views answer with flask.redirect, whose type is the base class.
from werkzeug.wrappers import Response

from .. import accounts, throttle
from ..extensions import db, login_manager
from ..forms import LoginForm, ReauthForm, SignupForm
from ..htmx import is_htmx, vary_on_htmx
from ..models import new_session_token
from ..passwords import PASSWORD_WRONG, check_own_password, login_guard, too_many_attempts
from ..urls import is_local_path
from . import bp

LOGIN_FAILED = "Email or password is incorrect."
# Creating API tokens and changing the password need a session that began with the password,
# not one restored from the remember-me cookie alone.
login_manager.refresh_view = "auth.reauthenticate"


def safe_next(target: str | None) -> str:
    """`target` if it is a path on this site (urls.is_local_path), else the artifact list."""
    return target if target and is_local_path(target) else url_for("artifacts.index")


def current_page() -> str:
    """The page the person is on: for htmx, the page that made the request, not the fragment."""
    if is_htmx():
        page = urlsplit(request.headers.get("HX-Current-URL", ""))
        if page.netloc == request.host and page.path:
            return page.path + (f"?{page.query}" if page.query else "")
    return request.full_path.rstrip("?")


def send_to(endpoint: str) -> Response:
    """Go to a password form, then back to this page; htmx is told to navigate (not swap the form in)."""
    target = url_for(endpoint) + "?" + urlencode({"next": safe_next(current_page())})
    if is_htmx():
        response = make_response("", 401)
        response.headers["HX-Redirect"] = target
        return vary_on_htmx(response)
    return redirect(target)


@login_manager.unauthorized_handler
def unauthorized() -> Response:
    """Pages redirect to the login form; htmx is told to navigate there. (The API never gets here:
    it authenticates by bearer token, answering 401 JSON itself.)"""
    return send_to("auth.login")


@login_manager.needs_refresh_handler
def needs_refresh() -> Response:
    """A stale session (remember-me only) is sent to confirm its password, then back to the page."""
    return send_to("auth.reauthenticate")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    """The login form; a correct email and password start a new session."""
    next_url = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url)
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form, next_url=next_url)

    guard = login_guard()
    attempt = throttle.Attempt(form.email.data, request.remote_addr)
    refusal = guard.refusal(attempt)
    if refusal is not None:
        return too_many_attempts(refusal)
    user = accounts.authenticate(form.email.data, form.password.data)
    if user is None:
        guard.record_failure(attempt)
        db.session.commit()
        form.form_errors.append(LOGIN_FAILED)
        return render_template("auth/login.html", form=form, next_url=next_url)

    guard.record_success(attempt)
    db.session.commit()
    # A new session, not the one the browser arrived with: no fixation.
    session.clear()
    login_user(user, remember=form.remember.data)
    return redirect(next_url)


@bp.route("/reauthenticate", methods=["GET", "POST"])
@login_required
def reauthenticate() -> Response | str:
    """Confirm the password of a session restored from the remember-me cookie, then go on."""
    next_url = safe_next(request.args.get("next"))
    form = ReauthForm()
    if not form.validate_on_submit():
        return render_template("auth/reauthenticate.html", form=form, next_url=next_url)
    verdict = check_own_password(form.password.data)
    db.session.commit()
    if isinstance(verdict, throttle.Refusal):
        return too_many_attempts(verdict)
    if not verdict:
        form.password.errors = [*form.password.errors, PASSWORD_WRONG]
        return render_template("auth/reauthenticate.html", form=form, next_url=next_url)
    confirm_login()
    return redirect(next_url)


@bp.post("/logout")
@login_required
def logout() -> Response:
    """End the session for real: rotating the token invalidates every copy of the cookie.

    Like every POST, it has passed the app-wide CSRF check (CSRFProtect) before it gets here."""
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
    if request.method == "POST":
        # Every attempt counts, valid or not: creating accounts in bulk is what this stops.
        guard = login_guard()
        refusal = guard.signup_refusal(request.remote_addr)
        if refusal is not None:
            return too_many_attempts(refusal, "sign-up")
        guard.record_signup(request.remote_addr)
        db.session.commit()
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
