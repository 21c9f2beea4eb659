"""The account's settings: API tokens, the password, how long runs are kept, deleting the account."""

from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings")

from . import views  # noqa: E402,F401  (routes register on bp)
