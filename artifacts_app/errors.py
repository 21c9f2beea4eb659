"""Error responses: an HTML page for browsers, its fragment for htmx, JSON for the API."""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify, make_response, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .htmx import is_htmx, render_page_or_block
from .throttle import UNAVAILABLE_RETRY_SECONDS, ThrottleUnavailable

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
}


# What an error page is headed and titled by: said plainly, the number beside it.
TITLES = {
    400: "Bad request", 401: "Sign in first", 403: "Not allowed", 404: "Page not found",
    405: "Not allowed here", 409: "Conflict", 413: "Too large", 422: "Could not be processed",
    429: "Too many requests", 500: "Something went wrong", 503: "Unavailable for a moment",
}


def wants_json() -> bool:
    """The API speaks JSON, errors included."""
    return request.blueprint == "api" or request.path.startswith("/api/")


def error_response(status: int, message: str) -> Response:
    """One error, shaped for whoever asked."""
    if wants_json():
        return make_response(jsonify(error=HTTP_NAMES.get(status, "error"), message=message), status)
    return render_page_or_block(
        "errors/error.html", "error_content", status=status, status_code=status, message=message,
        title=TITLES.get(status, f"Error {status}"), fragment=is_htmx(),
    )


HTTP_NAMES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    422: "unprocessable_entity", 429: "too_many_requests", 500: "internal_server_error",
    503: "service_unavailable",
}


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
