"""The artifact list and detail pages."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug import Response

bp = Blueprint("artifacts", __name__)


@bp.before_request
@login_required
def require_login() -> None:
    """Every artifact page is private."""


@bp.get("/")
def home() -> Response:
    """The front door: the artifact list."""
    return redirect(url_for("artifacts.index"))


@bp.get("/artifacts")
def index() -> str:
    """The artifact list."""
    return render_template("artifacts/list.html", user=current_user)
