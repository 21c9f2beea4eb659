"""The account's settings: API tokens and the password."""

from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings")

from . import views  # noqa: E402,F401  (routes register on bp)
