"""Every API error is JSON: {error, message, fields?}, with WWW-Authenticate on a 401."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from ..paging import BadListRequest
from . import bp


class ApiError(Exception):
    """An error answered as JSON: {error, message, fields?}."""

    def __init__(self, status: int, error: str, message: str, fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.fields = status, error, message, fields


@bp.errorhandler(ApiError)
def api_error(error: ApiError) -> tuple[Response, int]:
    """Every API error is JSON; 401s say how to authenticate."""
    body: dict[str, Any] = {"error": error.error, "message": error.message}
    if error.fields is not None:
        body["fields"] = error.fields
    response = jsonify(body)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="artifacts"'
    return response, error.status


@bp.errorhandler(BadListRequest)
def bad_list_request(error: BadListRequest) -> tuple[Response, int]:
    return api_error(ApiError(400, "bad_request", str(error)))
