"""The health endpoint load balancers and `make run` poll."""

from __future__ import annotations

from flask import Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db
from . import bp


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """The app's version and whether the database answers: 200 when it does, 503 when not."""
    from .. import __version__

    try:
        db.session.execute(text("SELECT 1"))
        database = "ok"
    except SQLAlchemyError:
        db.session.rollback()
        database = "unavailable"
    status = 200 if database == "ok" else 503
    response = jsonify(status="ok" if status == 200 else "degraded", version=__version__, database=database)
    response.headers["Cache-Control"] = "no-store"
    return response, status
