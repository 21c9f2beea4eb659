"""The artifacts blueprint: the list, a run's detail page with its tabs, and downloads."""

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("artifacts", __name__)


@bp.before_request
@login_required
def require_login() -> None:
    """Every artifact page is private."""


from . import compare_views, delete_views, detail_views, downloads, list_views  # noqa: E402,F401  (routes register on bp)
