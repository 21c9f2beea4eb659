"""The API's OpenAPI 3.1 document: the schemas are generated from the typed models in schemas.py
(the same ones that validate requests and build responses), and the paths are assembled here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic.json_schema import models_json_schema

from .. import __version__, schemas
from ..filters import SORTS, STATUS_CHOICES
from ..limits import defaults


def components(limits: Mapping[str, int]) -> dict[str, Any]:
    """Every request and response schema, with the limits in force."""
    with schemas.documenting(limits):
        _, generated = models_json_schema(
            [(model, "validation") for model in schemas.REQUEST_MODELS]
            + [(model, "serialization") for model in schemas.RESPONSE_MODELS + schemas.EXPORT_MODELS],
            ref_template="#/components/schemas/{model}",
        )
    return generated["$defs"]  # type: ignore[no-any-return]


def error_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}


def json_body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def run_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RunOut"}}}}


COMMON_ERRORS = {
    "401": error_response("Missing, unknown or revoked bearer token."),
}
WRITE_ERRORS = {
    **COMMON_ERRORS,
    "400": error_response("The body is not valid JSON."),
    "413": error_response("The body is larger than MAX_CONTENT_LENGTH."),
    "415": error_response("The body is not sent as application/json."),
    "422": error_response("A field has the wrong type or is out of range; `fields` names each one."),
}
RUN_ID = {"name": "run_id", "in": "path", "required": True,
          "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"}}
def repeatable(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "style": "form", "explode": True,
            "schema": {"type": "array", "maxItems": 20, "items": {"type": "string", "maxLength": 200}}}


LIST_PARAMETERS = [
    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 500},
     "description": "Full-text search of the name, input, final output and every step's output: words (all must "
                    "match), \"quoted phrases\", -word (must not match), `or` between alternatives."},
    repeatable("pipeline", "Pipeline names; a run of any of them matches."),
    repeatable("model", "Model names; each matches its family too (gpt-4o finds gpt-4o-2024-08-06)."),
    {"name": "status", "in": "query", "description": "One status; every status when left out.",
     "schema": {"type": "string", "enum": [status for status in STATUS_CHOICES if status]}},
    repeatable("tag", "Tags; the run must carry every one."),
    {"name": "meta.{key}", "in": "query", "description": "meta.KEY=VALUE: the run's metadata KEY is VALUE. "
     "(OpenAPI cannot name a parameter by pattern; any number of meta.* parameters may be given.)",
     "schema": {"type": "string", "maxLength": 1000}},
    {"name": "from", "in": "query", "description": "First day (UTC) of the time each run lists: its completion, "
     "or its start while open.", "schema": {"type": "string", "format": "date"}},
    {"name": "to", "in": "query", "description": "Last day (UTC), inclusive.",
     "schema": {"type": "string", "format": "date"}},
    {"name": "sort", "in": "query", "description": "newest (default), oldest, cost, tokens or duration (largest "
     "first), or relevance (of a search; without q, newest).",
     "schema": {"type": "string", "enum": list(SORTS)}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
]


PREFER = {"name": "Prefer", "in": "header", "required": False, "schema": {"type": "string"},
          "description": "`return=minimal`: answer 204 with no body (the Preference-Applied header says so) "
                         "instead of the whole run; other preferences are ignored."}
MINIMAL = {"description": "Done, as asked with `Prefer: return=minimal`; no body.",
           "headers": {"Preference-Applied": {"schema": {"type": "string", "const": "return=minimal"}}}}


def run_write(operation_id: str, summary: str, body: str, answered: str) -> dict[str, Any]:
    """A POST to one of the caller's runs: its body, the run as the answer (or none, when the caller
    prefers), and the errors every such write has."""
    return {"post": {
        "operationId": operation_id, "summary": summary, "parameters": [RUN_ID, PREFER],
        "requestBody": json_body(body),
        "responses": {"200": run_response(answered), "204": MINIMAL, **WRITE_ERRORS,
                      "404": error_response("No such run for this caller."),
                      "409": error_response("The run is already completed or failed (or, for a step, already "
                                            "has a step of that stepOrder).")},
    }}


def document(limits: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The whole OpenAPI document, with the limits in force (the defaults when none are given)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Artifacts API",
            "version": __version__,
            "description": "Record the runs of multi-step LLM pipelines: start a run, add step outputs, "
                           "complete or fail it, or record a finished run in one call. Costs are "
                           "computed by the server from the price in force when the run completed. "
                           "A JSON Lines export (the web app's /artifacts/export?format=jsonl, `flask runs "
                           "export`) is one RunRecord a line, then one ExportSummary line; a file without it "
                           "was cut off.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": components({**defaults(), **(limits or {})}),
        },
        "paths": {
            "/api/v1/runs": {
                "post": {
                    "operationId": "createRun",
                    "summary": "Start a run, or record a finished one in one call.",
                    "parameters": [{"name": "Idempotency-Key", "in": "header",
                                    "schema": {"type": "string", "minLength": 1, "maxLength": 255}}],
                    "requestBody": json_body("RunCreate"),
                    "responses": {
                        "201": run_response("The run was recorded."),
                        "200": run_response("A retry with the same Idempotency-Key: the run the first request made."),
                        **WRITE_ERRORS,
                        "409": error_response("The Idempotency-Key was used for a different request."),
                    },
                },
                "get": {
                    "operationId": "listRuns",
                    "summary": "The caller's finished runs, newest completion first, one page at a time.",
                    "parameters": LIST_PARAMETERS,
                    "responses": {
                        "200": {"description": "A page of runs.",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RunPage"}}}},
                        **COMMON_ERRORS,
                        "400": error_response("A filter, limit or cursor is not valid."),
                    },
                },
            },
            "/api/v1/runs/batch": {
                "post": {
                    "operationId": "createRuns",
                    "summary": f"Record up to {schemas.MAX_BATCH_RUNS} runs in one request and one transaction (for "
                               "loaders). Each run is a body of POST /runs, with its own `idempotencyKey` field "
                               "in place of the header, and is answered on its own: `results` holds, in the "
                               "request's order, 201 (recorded), 200 (a replay of its key) or the error POST "
                               "/runs would have answered (422 with `fields`, 409), and the valid runs are "
                               "recorded even when others are refused.",
                    "requestBody": json_body("RunBatch"),
                    "responses": {
                        "200": {"description": "What became of each run.",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchOut"}}}},
                        **WRITE_ERRORS,
                        "422": error_response(f"The envelope is not an object with `runs`, a list of 1 to "
                                              f"{schemas.MAX_BATCH_RUNS} runs (each run's own faults are in "
                                              "its result instead)."),
                    },
                },
            },
            "/api/v1/runs/{run_id}": {
                "get": {
                    "operationId": "getRun",
                    "summary": "One run, with every step's output.",
                    "parameters": [RUN_ID],
                    "responses": {"200": run_response("The run."), **COMMON_ERRORS,
                                  "404": error_response("No such run for this caller.")},
                },
                "delete": {
                    "operationId": "deleteRun",
                    "summary": "Delete a run and everything of it (steps, outputs, search index, idempotency keys); "
                               "it leaves the totals at once. A running run's later writes get 404.",
                    "parameters": [RUN_ID],
                    "responses": {"204": {"description": "Deleted."}, **COMMON_ERRORS,
                                  "404": error_response("No such run for this caller.")},
                },
            },
            "/api/v1/runs/{run_id}/steps": run_write(
                "addStep", "Add one step's output to a running run. Steps may arrive in any order; a stepOrder "
                           "the run already has is a 409, and completing without steps needs them contiguous from 0.",
                "StepIn", "The run with the step added."),
            "/api/v1/runs/{run_id}/complete": run_write("completeRun", "Complete a running run; the server prices it.",
                                                       "RunComplete", "The completed run."),
            "/api/v1/runs/{run_id}/fail": run_write("failRun", "Fail a running run, keeping the steps that completed.",
                                                   "RunFail", "The failed run."),
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document. Public: it describes the API and holds no data.",
                    "security": [],
                    "responses": {"200": {"description": "The OpenAPI document.",
                                          "content": {"application/json": {"schema": {"type": "object"}}}}},
                },
            },
        },
    }
