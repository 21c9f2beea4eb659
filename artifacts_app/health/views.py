"""The health endpoint load balancers and `make run` poll."""

from __future__ import annotations

from flask import Response, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..errors import RETRY_AFTER_SECONDS
from ..extensions import db
from . import bp


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """The app's version and whether the database answers: 200 when it does, 503 (and why) when not."""
    from .. import __version__

    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        current_app.logger.warning("Health check: the database is down: %s", getattr(error, "orig", error))
        db.session.rollback()
        response = jsonify(
            status="unavailable", version=__version__, database="down",
            message="The database is down or not answering. Retry in a few seconds.",
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response, 503
    response = jsonify(status="ok", version=__version__, database="ok")
    response.headers["Cache-Control"] = "no-store"
    return response, 200
