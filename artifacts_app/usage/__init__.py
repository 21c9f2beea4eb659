"""The usage blueprint: where the money went, per day or week, by model or pipeline (chart, table, CSV)."""

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("usage", __name__)


@bp.before_request
@login_required
def require_login() -> None:
    """Usage is private."""


from . import views  # noqa: E402,F401  (routes register on bp)
