"""Account settings: the user's API tokens (created and revoked here), their password, how long
their runs are kept, and deleting the account.

Creating a token and changing the password need a fresh login: a session restored from the
remember-me cookie alone is sent to /reauthenticate first.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, fresh_login_required, login_fresh, login_required, login_user, logout_user

# Views answer with flask.redirect, whose type is the base class.
from werkzeug.wrappers import Response

from .. import accounts, deleting, passwords, queries, throttle, tokens
from ..extensions import db
from ..forms import DeleteAccountForm, PasswordChangeForm, RetentionForm, TokenForm
from ..models import MAX_RETENTION_DAYS, ApiToken
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


def account_page(form: RetentionForm) -> str:
    return render_template("settings/account.html", form=form, kept=current_user.retention_days,
                           max_days=MAX_RETENTION_DAYS)


@bp.get("/account")
def account() -> str:
    """How long the user's runs are kept, and the way to deleting the account."""
    kept = current_user.retention_days
    shown = {"keep": "days" if kept else "forever", "days": str(kept or "")}
    return account_page(RetentionForm(formdata=None, data=shown))


@bp.post("/account/retention")
def set_retention() -> Response | tuple[str, int]:
    """Store the retention setting; bad input is a 400 with the field's error and stores nothing."""
    form = RetentionForm()
    if not form.validate_on_submit():
        return account_page(form), 400
    user = current_user._get_current_object()
    user.retention_days = form.days_kept()
    db.session.commit()
    flash("Your runs are kept for ever." if user.retention_days is None else
          f"Runs finished more than {user.retention_days:,} day{'s' if user.retention_days != 1 else ''} ago "
          "will be deleted when retention is applied.")
    return redirect(url_for("settings.account"), 303)


def delete_page(form: DeleteAccountForm) -> str:
    return render_template("settings/delete_account.html", form=form,
                           contents=queries.account_contents(current_user))


@bp.get("/account/delete")
def confirm_delete_account() -> str:
    """Ask for the password, saying what goes: the runs, pipelines and API tokens."""
    return delete_page(DeleteAccountForm(formdata=None))


@bp.post("/account/delete")
def delete_account() -> Response | tuple[str, int]:
    """Delete the account and everything of it, then sign out; a wrong password deletes nothing.

    Every other session of the user ends with it: a session names a user that no longer exists."""
    form = DeleteAccountForm()
    if not form.validate_on_submit():
        return delete_page(form), 422
    verdict = passwords.check_own_password(form.password.data)
    db.session.commit()
    if isinstance(verdict, throttle.Refusal):
        return passwords.too_many_attempts(verdict)
    if not verdict:
        form.password.errors = [*form.password.errors, f"{passwords.PASSWORD_WRONG} Nothing was deleted."]
        return delete_page(form), 422
    user = current_user._get_current_object()
    email = user.email
    deleting.delete_account(user)
    db.session.commit()
    # A `limits` store (Redis) keeps the email's counts apart from the database: drop them too, so
    # no hash of the email outlives the account there and a new account of that email starts clean.
    passwords.login_guard().forget_account(email)
    session.clear()
    logout_user()
    flash(f"The account {email} and everything in it were deleted.")
    return redirect(url_for("auth.login"), 303)
