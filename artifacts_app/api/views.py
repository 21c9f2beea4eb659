"""The API's routes: runs in (start, steps, complete, fail, one-shot), runs out, and its document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, current_app, jsonify, request
from pydantic import BaseModel

from .. import deleting, limits, queries, recording, schemas
from ..extensions import db
from ..models import PipelineRun, User
from ..paging import encode_cursor, filters_and_cursor, next_page, parse_limit
from ..serialization import run_out, run_summary
from ..statuses import FINISHED_STATUSES, CostSource
from ..urls import external_url
from . import batching, bp, openapi
from .errors import ApiError
from .inputs import (
    autocommits_unless_keyed,
    current_api_user,
    idempotency_key,
    json_body,
    json_value,
    prefers_minimal,
    request_hash,
    token_required,
    validated,
)


def spec() -> dict[str, Any]:
    """This app's OpenAPI document: its limits come from the app's settings, so it is built per app."""
    built: dict[str, Any] | None = current_app.extensions.get("openapi_document")
    if built is None:
        built = current_app.extensions["openapi_document"] = openapi.document(
            {name: limits.value(name) for name in limits.LIMITS}
        )
    return built


def run_json(run: PipelineRun, pipeline_name: str | None = None) -> dict[str, Any]:
    """The API's run shape (schemas.RunOut), with the web page's URL and any warnings."""
    warnings = None
    if run.status in FINISHED_STATUSES and run.cost_source == CostSource.UNPRICED:
        reason = f"model {run.model!r} has no known price" if run.model else "no model was given"
        if run.input_tokens is None:
            reason = "no token usage was reported"
        warnings = [f"The run is unpriced: {reason}. Report usage.cost or add a price (PRICES_FILE)."]
    return run_out(run, pipeline_name or run.pipeline.name, url=external_url("artifacts.detail", run_id=run.id),
                   warnings=warnings)


Written = TypeVar("Written")


def recorded(call: Callable[[], Written]) -> Written:
    """Run a writer call, turning its errors into API errors; nothing is stored on failure."""
    try:
        return call()
    except schemas.InvalidBody as error:
        db.session.rollback()
        raise ApiError(422, "validation_failed", str(error), error.faults) from None
    except recording.RunNotFound:
        db.session.rollback()
        raise ApiError(404, "not_found", "No such run.") from None
    except recording.RunStateError as error:
        db.session.rollback()
        raise ApiError(409, "conflict", str(error)) from None


@bp.post("/runs")
@autocommits_unless_keyed
@token_required
def create_run() -> tuple[Response, int]:
    """Start a run, or record a finished one (status completed|failed) in one call: the row is
    checked and priced first, then written once, and the answer is built from what was written."""
    value = json_value()
    body = validated(schemas.RunCreate, value).root
    user = current_api_user()
    key = idempotency_key()
    digest = request_hash(value) if key else ""
    if key:
        replay = replayed_run(user, key, digest)
        if replay is not None:
            return jsonify(run_json(replay)), 200
    new = recorded(lambda: recording.new_run(user, body))
    recording.write_new(user, [new])
    if key and not recording.claim_keys(user, [(key, digest, new.id)]):
        # A concurrent request with the same key won: drop our run, answer with theirs.
        db.session.rollback()
        winner = replayed_run(user, key, digest)
        if winner is None:
            raise ApiError(409, "conflict", "A concurrent request with this Idempotency-Key did not finish; retry.")
        return jsonify(run_json(winner)), 200
    db.session.commit()
    return jsonify(run_json(new.run, new.pipeline_name)), 201


def replayed_run(user: User, key: str, request_hash: str) -> PipelineRun | None:
    """The run an earlier request with this key made; a different request with it is a 409."""
    found = queries.idempotent_run(user, key)
    if found is None:
        return None
    stored_hash, run = found
    if stored_hash != request_hash:
        raise ApiError(409, "conflict", "This Idempotency-Key was already used for a different request.")
    return run


@bp.post("/runs/batch")
@token_required
def create_runs() -> Response:
    """Record up to MAX_BATCH_RUNS runs, each as POST /runs would, in one transaction; a result per run."""
    value = json_value()
    items = batching.items(value)
    user = current_api_user()
    for _attempt in range(3):
        try:
            results = batching.record(user, items)
        except batching.KeyTaken:
            db.session.rollback()  # a concurrent request claimed a key first: its run is a replay now
            continue
        db.session.commit()
        return jsonify(batching.answer(results))
    raise ApiError(409, "conflict", "Concurrent requests keep claiming the same Idempotency-Keys; retry.")


def require_run(run_id: str) -> None:
    """404 before anything else for a run that is not the caller's: the body is not even read."""
    if queries.run_summary(current_api_user(), run_id) is None:
        raise ApiError(404, "not_found", "No such run.")


Write = TypeVar("Write", bound=BaseModel)


def write_to_run(run_id: str, model: type[Write], write: Callable[[User, str, Write], PipelineRun]) -> Response:
    """One write to a caller's run: 404 first, then the body as `model`, then the writer; the run as
    JSON, or nothing (204) when the caller prefers return=minimal: an executor posting its 100th
    step need not read the 99 before it back."""
    require_run(run_id)
    body = json_body(model)
    run = recorded(lambda: write(current_api_user(), run_id, body))
    db.session.commit()
    if prefers_minimal():
        return Response(status=204, headers={"Preference-Applied": "return=minimal"})
    return jsonify(run_json(run))


@bp.post("/runs/<id:run_id>/steps")
@token_required
def add_step(run_id: str) -> Response:
    """Append one step's output to a running run."""
    return write_to_run(run_id, schemas.StepIn, recording.add_step)


@bp.post("/runs/<id:run_id>/complete")
@token_required
def complete_run(run_id: str) -> Response:
    """Complete a running run with its outputs and usage; the server prices it."""
    return write_to_run(run_id, schemas.RunComplete, recording.complete_run)


@bp.post("/runs/<id:run_id>/fail")
@token_required
def fail_run(run_id: str) -> Response:
    """Fail a running run with its error, keeping the steps that completed."""
    return write_to_run(run_id, schemas.RunFail, recording.fail_run)


@bp.get("/runs/<id:run_id>")
@token_required
def get_run(run_id: str) -> Response:
    """One of the caller's runs, every output included."""
    found = queries.run_with_artifact(current_api_user(), run_id)
    if found is None:
        raise ApiError(404, "not_found", "No such run.")
    return jsonify(run_json(*found))


@bp.delete("/runs/<id:run_id>")
@token_required
def delete_run(run_id: str) -> Response:
    """Delete one of the caller's runs and everything of it; 204, or 404 when there is no such run."""
    if not deleting.delete_runs(current_api_user(), [run_id]):
        raise ApiError(404, "not_found", "No such run.")
    db.session.commit()
    return Response(status=204)


@bp.get("/runs")
@token_required
def list_runs() -> Response:
    """The caller's runs, newest first unless `sort` says; same filters and cursor as the list page."""
    filters, cursor = filters_and_cursor(request.args)
    limit = parse_limit(request.args)
    rows, after = next_page(queries.list_runs(current_api_user(), filters, cursor, limit + 1), limit, filters)
    page = schemas.RunPage(
        runs=[run_summary(row, url=external_url("artifacts.detail", run_id=row.id)) for row in rows],
        next_cursor=encode_cursor(after) if after else None,
    )
    return jsonify(page.model_dump(mode="json"))


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """This API's OpenAPI 3.1 description: public, since it describes the API and holds no data."""
    return jsonify(spec())
