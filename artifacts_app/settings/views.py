"""Account settings: the user's API tokens (created and revoked here) and their password.

Creating a token and changing the password need a fresh login: a session restored from the
remember-me cookie alone is sent to /reauthenticate first.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, fresh_login_required, login_fresh, login_required, login_user

# Views answer with flask.redirect, whose type is the base class.
from werkzeug.wrappers import Response

from .. import accounts, passwords, queries, throttle, tokens
from ..extensions import db
from ..forms import PasswordChangeForm, TokenForm
from ..models import ApiToken
from . import bp

# The clear text of a token just created, kept for exactly the one GET after the redirect.
NEW_TOKEN_SESSION_KEY = "new_api_token"


@bp.before_request
@login_required
def require_login() -> None:
    """Every settings page is private."""


def token_page(form: TokenForm, new_token: str | None = None) -> str:
    return render_template(
        "settings/tokens.html", tokens=queries.tokens_for_user(current_user), form=form,
        new_token=new_token, fresh=login_fresh(),
    )


@bp.get("/tokens")
def token_list() -> str:
    """The user's tokens (name, prefix, created, last used), a token just created, and a form for a new one."""
    return token_page(TokenForm(formdata=None), session.pop(NEW_TOKEN_SESSION_KEY, None))


@bp.post("/tokens")
@fresh_login_required
def create_token() -> Response | tuple[str, int]:
    """Create a token, then redirect (a reload creates nothing) to the list showing its clear text once."""
    form = TokenForm()
    if form.validate_on_submit():
        try:
            _, clear = tokens.create_token(current_user, form.name.data)
        except tokens.TokenError as error:
            db.session.rollback()
            form.name.errors = [*form.name.errors, str(error)]
        else:
            db.session.commit()
            session[NEW_TOKEN_SESSION_KEY] = clear
            return redirect(url_for("settings.token_list"), 303)
    return token_page(form), 422


def own_token(token_id: str) -> ApiToken:
    """The user's token with that id; another user's answers exactly like a missing one."""
    token = queries.token_for_user(current_user, token_id)
    if token is None:
        abort(404)
    return token


@bp.get("/tokens/<id:token_id>/revoke")
def confirm_revoke(token_id: str) -> str:
    """Ask before revoking: pipelines using the token stop at once."""
    return render_template("settings/revoke.html", token=own_token(token_id))


@bp.post("/tokens/<id:token_id>/revoke")
def revoke_token(token_id: str) -> Response:
    """Revoke one of the user's tokens; it stops working at once (the app-wide CSRF check has passed)."""
    token = own_token(token_id)
    tokens.revoke(token)
    db.session.commit()
    flash(f"Token “{token.name}” revoked.")
    return redirect(url_for("settings.token_list"))


@bp.route("/password", methods=["GET", "POST"])
@fresh_login_required
def change_password() -> Response | str | tuple[str, int]:
    """Change the password: other sessions end, API tokens are revoked unless kept, this browser stays in."""
    form = PasswordChangeForm()
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render_template("settings/password.html", form=form), status
    verdict = passwords.check_own_password(form.current.data)
    db.session.commit()
    if isinstance(verdict, throttle.Refusal):
        return passwords.too_many_attempts(verdict)
    if not verdict:
        form.current.errors = [*form.current.errors, passwords.PASSWORD_WRONG]
        return render_template("settings/password.html", form=form), 422
    user = current_user._get_current_object()
    try:
        revoked = accounts.set_password(user, form.password.data, keep_tokens=form.keep_tokens.data)
    except accounts.AccountError as error:
        db.session.rollback()
        form.password.errors = [*form.password.errors, str(error)]
        return render_template("settings/password.html", form=form), 422
    db.session.commit()
    # The new session token ended every other session; sign this browser in again with it (and
    # renew its remember-me cookie if it had one, since the old one no longer works).
    remembered = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies
    session.clear()
    login_user(user, remember=remembered, fresh=True)
    if form.keep_tokens.data:
        flash("Password changed. Your other sessions have ended; your API tokens still work.")
    else:
        flash(f"Password changed. Your other sessions have ended and {revoked} API "
              f"token{'s' if revoked != 1 else ''} {'were' if revoked != 1 else 'was'} revoked.")
    return redirect(url_for("settings.change_password"), 303)
