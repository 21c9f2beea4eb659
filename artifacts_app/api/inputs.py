"""What an API request brings: its bearer token, its JSON body as a typed model, its Idempotency-Key,
its Prefer header."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from contextlib import suppress
from functools import wraps
from typing import Any, TypeVar

from flask import g, request
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.http import parse_list_header

from .. import recording, schemas, tokens
from ..models import User
from .errors import ApiError


def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Authenticate with `Authorization: Bearer <token>`; the user is g.api_user."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        writes = request.method not in ("GET", "HEAD", "OPTIONS")
        user = tokens.authenticate(bearer_token(), write_now=writes)
        if user is None:
            raise ApiError(401, "unauthorized", "A valid bearer token is required.")
        g.api_user = user
        # last_used_at (at most once a minute) goes with a write's own transaction; it is worth
        # keeping even when the request only reads (written after its reads) or fails.
        try:
            result = view(*args, **kwargs)
        except BaseException:
            with suppress(SQLAlchemyError):  # the error that is on its way matters more
                tokens.record_use()
            raise
        tokens.record_use()
        return result

    return wrapped


def bearer_token() -> str:
    """The token of an `Authorization: Bearer <token>` header; "" without one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def autocommits_unless_keyed(view: Callable[..., Any]) -> Callable[..., Any]:
    """For POST /runs, whose write without an Idempotency-Key is one statement on PostgreSQL: the
    request runs in autocommit there (recording.autocommit_single_writes), so its token lookup and
    its write are sent without BEGIN and COMMIT, two round trips of four. Put above token_required,
    whose lookup is the first statement. With a key, the run and its key are two statements that
    must stand or fall together, so they keep a transaction. A request without a well-formed token
    is left alone: token_required refuses it (401) without asking the database."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        # Any Idempotency-Key header at all, even one idempotency_key() will refuse, keeps the transaction.
        if tokens.well_formed(bearer_token()) and not request.headers.get("Idempotency-Key"):
            recording.autocommit_single_writes()
        return view(*args, **kwargs)

    return wrapped


def refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} does not fit a number")
    return number


Body = TypeVar("Body", bound=BaseModel)


def json_value() -> Any:
    """The request's body as strict JSON: NaN, Infinity and numbers too large for a float are not JSON."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    try:
        return json.loads(request.get_data(), parse_constant=refuse_constant, parse_float=finite_float)
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_request", "The body is not valid JSON.") from None


def request_hash(value: Any) -> str:
    """A body's fingerprint for its Idempotency-Key: the same request, however its JSON is laid out."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def validated(model: type[Body], value: Any) -> Body:
    """A JSON value as a typed model, every fault named at once (at most 20) in a 422."""
    try:
        return schemas.parse(model, value)
    except schemas.InvalidBody as invalid:
        raise ApiError(422, "validation_failed", "Some fields are not valid.", invalid.faults) from None


def json_body(model: type[Body]) -> Body:
    """The request's JSON body as a typed model."""
    return validated(model, json_value())


def current_api_user() -> User:
    return g.api_user  # type: ignore[no-any-return]


def idempotency_key() -> str:
    """The Idempotency-Key header: up to 255 printable ASCII characters, or "" when absent."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if key and not schemas.valid_idempotency_key(key):
        raise ApiError(422, "validation_failed", "Idempotency-Key is not valid.",
                       [{"field": "Idempotency-Key", "message": schemas.IDEMPOTENCY_KEY_RULE}])
    return key


def prefers_minimal() -> bool:
    """`Prefer: return=minimal` (RFC 7240) among the request's preferences: the caller does not want
    the run back. Names and values are case-insensitive, a value may be quoted, parameters after
    `;` are ignored, and any other preference is ignored too."""
    for header in request.headers.getlist("Prefer"):
        for preference in parse_list_header(header):
            name, _, value = preference.partition(";")[0].partition("=")
            if name.strip().lower() == "return" and value.strip().strip('"').lower() == "minimal":
                return True
    return False
