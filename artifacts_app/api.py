"""The JSON API for pipeline executors: bearer tokens, runs in, runs out, errors as JSON."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy.exc import IntegrityError

from . import limits, openapi, queries, recording, tokens
from .extensions import csrf, db
from .listing import BadListRequest, encode_cursor, filters_and_cursor, parse_limit
from .models import IdempotencyKey, PipelineRun, User
from .serialization import run_to_api
from .urls import external_url
from .validation import BodyChecker

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Bearer tokens, not cookies, authenticate here: a cross-site form cannot forge one.
csrf.exempt(bp)



def spec() -> dict[str, Any]:
    """This app's OpenAPI document: its limits come from the app's settings, so it is built per app."""
    built: dict[str, Any] | None = current_app.extensions.get("openapi_document")
    if built is None:
        built = current_app.extensions["openapi_document"] = openapi.document(
            {name: limits.value(name) for name in limits.LIMITS}
        )
    return built


def body_checker() -> BodyChecker:
    """The validator of request bodies against this app's document."""
    checker: BodyChecker | None = current_app.extensions.get("body_checker")
    if checker is None:
        checker = current_app.extensions["body_checker"] = BodyChecker(spec())
    return checker


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


def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Authenticate with `Authorization: Bearer <token>`; the user is g.api_user."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        user = tokens.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise ApiError(401, "unauthorized", "A valid bearer token is required.")
        # last_used_at is worth keeping even when the request goes on to fail or only reads.
        db.session.commit()
        g.api_user = user
        return view(*args, **kwargs)

    return wrapped


def refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} does not fit a number")
    return number


def json_body(schema: str) -> dict[str, Any]:
    """The request's JSON object, checked against the OpenAPI schema; every fault named at once."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    try:
        # Strict JSON: NaN, Infinity and numbers too large for a float are not JSON values.
        body = json.loads(request.get_data(), parse_constant=refuse_constant, parse_float=finite_float)
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_request", "The body is not valid JSON.") from None
    fields = body_checker().faults(schema, body)
    if fields:
        raise ApiError(422, "validation_failed", "Some fields are not valid.", fields)
    return body  # type: ignore[no-any-return]


def timestamp(body: dict[str, Any], name: str) -> datetime | None:
    """An ISO 8601 time with its offset, or None when absent."""
    value = body.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ApiError(422, "validation_failed", "Some fields are not valid.",
                       [{"field": name, "message": "must be an ISO 8601 time with an offset, e.g. 2025-11-30T12:00:00Z"}])
    return moment


def run_json(run: PipelineRun, pipeline_name: str | None = None) -> dict[str, Any]:
    """The API's run shape, with the web page's URL and any warnings."""
    body = run_to_api(run, pipeline_name or run.pipeline.name)
    body["url"] = external_url("artifacts.detail", run_id=run.id)
    if run.status in ("completed", "failed") and run.cost_source == "unpriced":
        reason = f"model {run.model!r} has no known price" if run.model else "no model was given"
        if run.input_tokens is None:
            reason = "no token usage was reported"
        body["warnings"] = [f"The run is unpriced: {reason}. Report usage.cost or add a price (PRICES_FILE)."]
    return body


def recorded(call: Callable[[], PipelineRun]) -> PipelineRun:
    """Run a writer call, turning its errors into API errors; nothing is stored on failure."""
    try:
        return call()
    except recording.RunValidationError as error:
        db.session.rollback()
        raise ApiError(422, "validation_failed", str(error), [{"field": error.field, "message": error.message}]) from None
    except recording.RunNotFound:
        db.session.rollback()
        raise ApiError(404, "not_found", "No such run.") from None
    except recording.RunStateError as error:
        db.session.rollback()
        raise ApiError(409, "conflict", str(error)) from None


def current_api_user() -> User:
    return g.api_user  # type: ignore[no-any-return]


@bp.post("/runs")
@token_required
def create_run() -> tuple[Response, int]:
    """Start a run, or record a finished one (status completed|failed) in one call."""
    body = json_body("RunCreate")
    user = current_api_user()
    key = idempotency_key()
    request_hash = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    if key:
        replay = replayed_run(user, key, request_hash)
        if replay is not None:
            return jsonify(run_json(replay)), 200
    status = body.get("status", "running")
    created_at, completed_at = timestamp(body, "createdAt"), timestamp(body, "completedAt")
    if status == "running":
        run = recorded(lambda: recording.start_run(
            user, pipeline=body["pipeline"], input=body["input"], variables=body.get("variables"),
            model=body.get("model"), created_at=created_at,
        ))
    else:
        run = recorded(lambda: recording.record_run(
            user, pipeline=body["pipeline"], input=body["input"], status=status,
            variables=body.get("variables"), model=body.get("model"), steps=body.get("steps"),
            final_output=body.get("finalOutput", ""), usage=body.get("usage"), error=body.get("error"),
            created_at=created_at, completed_at=completed_at,
        ))
    if key:
        try:
            with db.session.begin_nested():
                db.session.add(IdempotencyKey(user_id=user.id, key=key, request_hash=request_hash, run_id=run.id))
        except IntegrityError:
            # A concurrent retry with the same key won: drop our run, answer with theirs.
            db.session.rollback()
            winner = replayed_run(user, key, request_hash)
            if winner is None:
                raise
            return jsonify(run_json(winner)), 200
    db.session.commit()
    return jsonify(run_json(run)), 201


def idempotency_key() -> str:
    """The Idempotency-Key header: up to 255 printable ASCII characters, or "" when absent."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 255 or any(not " " <= char <= "~" for char in key):
        raise ApiError(422, "validation_failed", "Idempotency-Key is not valid.",
                       [{"field": "Idempotency-Key", "message": "must be 1 to 255 printable ASCII characters"}])
    return key


def replayed_run(user: User, key: str, request_hash: str) -> PipelineRun | None:
    """The run an earlier request with this key made; a different request with it is a 409."""
    found = queries.idempotent_run(user, key)
    if found is None:
        return None
    stored_hash, run = found
    if stored_hash != request_hash:
        raise ApiError(409, "conflict", "This Idempotency-Key was already used for a different request.")
    return run


def require_run(run_id: str) -> None:
    """404 before anything else for a run that is not the caller's: the body is not even read."""
    if queries.run_summary(current_api_user(), run_id) is None:
        raise ApiError(404, "not_found", "No such run.")


@bp.post("/runs/<id:run_id>/steps")
@token_required
def add_step(run_id: str) -> Response:
    """Append one step's output to a running run."""
    require_run(run_id)
    body = json_body("StepInput")
    run = recorded(lambda: recording.add_step(current_api_user(), run_id, body))
    db.session.commit()
    return jsonify(run_json(run))


@bp.post("/runs/<id:run_id>/complete")
@token_required
def complete_run(run_id: str) -> Response:
    """Complete a running run with its outputs and usage; the server prices it."""
    require_run(run_id)
    body = json_body("RunComplete")
    completed_at = timestamp(body, "completedAt")
    run = recorded(lambda: recording.complete_run(
        current_api_user(), run_id, final_output=body["finalOutput"], steps=body.get("steps"),
        model=body.get("model"), usage=body.get("usage"), completed_at=completed_at,
    ))
    db.session.commit()
    return jsonify(run_json(run))


@bp.post("/runs/<id:run_id>/fail")
@token_required
def fail_run(run_id: str) -> Response:
    """Fail a running run with its error, keeping the steps that completed."""
    require_run(run_id)
    body = json_body("RunFail")
    completed_at = timestamp(body, "completedAt")
    run = recorded(lambda: recording.fail_run(
        current_api_user(), run_id, error=body["error"], steps=body.get("steps"),
        usage=body.get("usage"), completed_at=completed_at,
    ))
    db.session.commit()
    return jsonify(run_json(run))


@bp.get("/runs/<id:run_id>")
@token_required
def get_run(run_id: str) -> Response:
    """One of the caller's runs, every output included."""
    found = queries.run_with_artifact(current_api_user(), run_id)
    if found is None:
        raise ApiError(404, "not_found", "No such run.")
    return jsonify(run_json(*found))


@bp.get("/runs")
@token_required
def list_runs() -> Response:
    """The caller's finished runs, newest first; same filters and cursor as the list page."""
    filters, cursor = filters_and_cursor(request.args)
    limit = parse_limit(request.args)
    rows = queries.list_runs(current_api_user(), filters, cursor, limit + 1)
    next_cursor = encode_cursor(rows[limit - 1].completed_at, rows[limit - 1].id, filters) if len(rows) > limit else None
    return jsonify(runs=[
        {
            "id": row.id, "url": external_url("artifacts.detail", run_id=row.id),
            "pipeline": row.pipeline_name, "status": row.status, "model": row.model,
            "usage": {"inputTokens": row.input_tokens, "outputTokens": row.output_tokens},
            "cost": None if row.cost is None else format(row.cost, "f"), "costSource": row.cost_source,
            "createdAt": row.created_at.isoformat(), "completedAt": row.completed_at.isoformat(),
        }
        for row in rows[:limit]
    ], nextCursor=next_cursor)


@bp.get("/openapi.json")
@token_required
def openapi_document() -> Response:
    """This API's OpenAPI 3.1 description."""
    return jsonify(spec())
