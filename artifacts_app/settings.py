"""Account settings: the user's API tokens, created and revoked here."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from . import queries, tokens
from .extensions import db
from .forms import ConfirmForm, TokenForm

bp = Blueprint("settings", __name__, url_prefix="/settings")


@bp.before_request
@login_required
def require_login() -> None:
    """Every settings page is private."""


@bp.get("/tokens")
def token_list() -> str:
    """The user's tokens (name, prefix, created, last used) and a form for a new one."""
    return render_template(
        "settings/tokens.html", tokens=queries.tokens_for_user(current_user), form=TokenForm(),
        confirm=ConfirmForm(), new_token=None,
    )


@bp.post("/tokens")
def create_token() -> tuple[str, int]:
    """Create a token and show its clear text, this once."""
    form = TokenForm()
    new_token = None
    status = 422
    if form.validate_on_submit():
        try:
            _, new_token = tokens.create_token(current_user, form.name.data)
        except tokens.TokenError as error:
            db.session.rollback()
            form.name.errors = [*form.name.errors, str(error)]
        else:
            db.session.commit()
            form = TokenForm(formdata=None)
            status = 201
    return render_template(
        "settings/tokens.html", tokens=queries.tokens_for_user(current_user), form=form,
        confirm=ConfirmForm(), new_token=new_token,
    ), status


@bp.post("/tokens/<id:token_id>/revoke")
def revoke_token(token_id: str) -> Response:
    """Revoke one of the user's tokens; it stops working at once."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    token = queries.token_for_user(current_user, token_id)
    if token is None:
        abort(404)
    tokens.revoke(token)
    db.session.commit()
    flash(f"Token “{token.name}” revoked.")
    return redirect(url_for("settings.token_list"))
