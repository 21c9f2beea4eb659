"""Error responses: an HTML page for browsers, its fragment for htmx, JSON for the API."""

from __future__ import annotations

import contextlib
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, make_response, request
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc
from werkzeug.exceptions import HTTPException

from .extensions import db
from .htmx import is_htmx, render_page_or_block
from .throttle import UNAVAILABLE_RETRY_SECONDS, ThrottleUnavailable
from .urls import is_local_path

MESSAGES = {
    400: "The request could not be understood.",
    401: "You need to sign in first.",
    403: "You may not do that.",
    404: "There is nothing here. It may have been deleted, or it belongs to someone else.",
    405: "That action is not allowed here.",
    413: "The request is too large.",
    422: "The request could not be processed.",
    429: "Too many requests. Wait a little and try again.",
    500: "Something went wrong on our side. Try again in a moment.",
    503: "The database is unavailable at the moment. Try again in a few seconds.",
}

# A failure to reach or hear from the database: refused, hung past the connect timeout, dropped
# mid-request, no pooled connection free within the pool timeout, a statement past its timeout, a
# deadlock PostgreSQL broke by cancelling this request's statement. Answered 503 and retried later;
# every other database error (a constraint, a bug) stays a 500. SQLAlchemy wraps the driver's own
# errors (psycopg.OperationalError, ...) in these, so importing psycopg here is not needed (and
# would cost a SQLite deployment its import at start-up).
DATABASE_UNAVAILABLE = (exc.OperationalError, exc.InterfaceError, exc.TimeoutError)
QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement cancelled, here by statement_timeout
DEADLOCK = "40P01"  # two transactions each waiting for the other: PostgreSQL cancels one, which may retry
# How long a client is asked to wait before retrying; a restart of PostgreSQL takes about this long.
RETRY_AFTER_SECONDS = 5
SLOW_STATEMENT_MESSAGE = "The database took too long to answer. Try again in a moment."
DEADLOCK_MESSAGE = "Another request was changing the same data at the same moment. Nothing was saved; try again."


# What an error page is headed and titled by: said plainly, the number beside it.
TITLES = {
    400: "Bad request", 401: "Sign in first", 403: "Not allowed", 404: "Page not found",
    405: "Not allowed here", 409: "Conflict", 413: "Too large", 422: "Could not be processed",
    429: "Too many requests", 500: "Something went wrong", 503: "Unavailable for a moment",
}


def wants_json() -> bool:
    """The API speaks JSON, errors included."""
    return request.blueprint == "api" or request.path.startswith("/api/")


def error_response(status: int, message: str, retry: str | None = None) -> Response:
    """One error, shaped for whoever asked; an HTML page whose header cannot load the signed-in user
    (the database is away) is drawn as for a visitor, keeping its status."""
    if wants_json():
        return make_response(jsonify(error=HTTP_NAMES.get(status, "error"), message=message), status)
    page: dict[str, Any] = {"status": status, "status_code": status, "message": message, "fragment": is_htmx(),
            "title": TITLES.get(status, f"Error {status}"), "retry_url": retry}
    try:
        return render_page_or_block("errors/error.html", "error_content", **page)
    except DATABASE_UNAVAILABLE:
        as_visitor()
        return render_page_or_block("errors/error.html", "error_content", **page)


def as_visitor() -> None:
    """End the request's transaction (handing back its connection) and draw the rest as for a visitor:
    the header reads current_user, which would ask the database for the user again (and an already
    loaded one was expired by the rollback)."""
    with contextlib.suppress(exc.SQLAlchemyError):
        db.session.rollback()
    g._login_user = current_app.login_manager.anonymous_user()  # type: ignore[attr-defined]


HTTP_NAMES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    422: "unprocessable_entity", 429: "too_many_requests", 500: "internal_server_error",
    503: "service_unavailable",
}


def retry_url() -> str | None:
    """Where a "Try again" link on an error page leads: the page itself, for a GET of a local path."""
    target = request.full_path.rstrip("?")
    return target if request.method == "GET" and is_local_path(target) else None


def database_unavailable_response(error: Exception) -> Response:
    """The 503 for a database that cannot be reached, built without touching the database again."""
    original = getattr(error, "orig", error)
    current_app.logger.warning("Database unavailable during %s %s: %s", request.method, request.path, original)
    as_visitor()
    message = {QUERY_CANCELED: SLOW_STATEMENT_MESSAGE, DEADLOCK: DEADLOCK_MESSAGE}.get(
        getattr(original, "sqlstate", None) or "", MESSAGES[503])
    response = error_response(503, message, retry_url())
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def register_error_handlers(app: Flask) -> None:
    """Every HTTP error, and the CSRF failure, gets a readable answer, never a traceback."""

    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError) -> Response:
        return error_response(
            400, "The form expired or did not come from this site. Reload the page and try again."
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        message = (error.description or "") if status not in MESSAGES or wants_json() else MESSAGES[status]
        if status == 413:
            limit = current_app.config.get("MAX_CONTENT_LENGTH")
            message = f"The request body is larger than the limit of {limit:,} bytes (MAX_CONTENT_LENGTH = {limit})."
        response = error_response(status, message)
        if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return response

    for error_class in DATABASE_UNAVAILABLE:
        app.register_error_handler(error_class, database_unavailable_response)

    @app.errorhandler(ThrottleUnavailable)
    def throttle_unavailable(error: ThrottleUnavailable) -> Response:
        # Fails closed (see throttle.py); the page needs nothing from the store that failed.
        app.logger.warning("%s refused: the login throttle's store did not answer (%s)", error.what, error.__cause__)
        response = error_response(503, f"{error.what} is unavailable for a moment: the service that counts "
                                       "failed attempts is not answering. Nothing was changed. Try again shortly.")
        response.headers["Retry-After"] = str(UNAVAILABLE_RETRY_SECONDS)
        return response

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Response:
        app.logger.exception("Unhandled error", exc_info=error)
        return error_response(500, MESSAGES[500])
