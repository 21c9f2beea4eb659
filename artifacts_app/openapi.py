"""The API's OpenAPI 3.1 description, written by hand to match api.py; request bodies are
validated against these same schemas, so the document cannot drift from what is enforced."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import __version__
from .limits import DECIMAL_STRING_LENGTH, defaults

TOKENS = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
# Text the database can store: no NUL, no lone surrogates (they have no UTF-8 form).
# Every pattern here is one character class under one star, or a class that must start the
# text: none can backtrack more than once per character, so a failing match is linear.
STORABLE = r"^[^\u0000\ud800-\udfff]*$"
# Storable and not only whitespace: the first non-space character is where \s* stops, so the
# two parts cannot trade characters (the old "[^X]*[^\sX][^X]*" form was quadratic).
NOT_BLANK_PATTERN = r"^\s*[^\s\u0000\ud800-\udfff][^\u0000\ud800-\udfff]*$"
DECIMAL_STRING = {"type": "string", "maxLength": DECIMAL_STRING_LENGTH, "pattern": r"^\s*[0-9]+(\.[0-9]{1,12})?\s*$",
                  "description": "A non-negative amount of US dollars as a decimal string, e.g. \"0.0042\"."}
TIMESTAMP = {"type": "string", "maxLength": 64, "format": "date-time"}
# "not: {}" rather than a false schema: jsonschema then reports which property is at fault.
NOT_WITH_STATUS = {"not": {}, "description": "Not allowed with this status."}
# What a failing pattern means, for the 422's message (the pattern itself says nothing to people).
PATTERN_MESSAGES = {
    STORABLE: "must not contain NUL characters or lone surrogates",
    NOT_BLANK_PATTERN: "must not be blank, and must not contain NUL characters or lone surrogates",
    DECIMAL_STRING["pattern"]: "must be a decimal string such as \"0.0042\" (at most 12 decimal places)",
}


def limited(name: str, limits: Mapping[str, int], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with the limit `name` as its maxLength/maxItems/maxProperties, length first.

    The length keyword comes before any pattern: the validator checks keywords in order and
    never runs a pattern on a string that is already too long (see api.py).
    """
    keyword = {"string": "maxLength", "array": "maxItems", "object": "maxProperties"}[schema["type"]]
    return {"type": schema["type"], keyword: limits[name], "x-limit": name,
            **{key: value for key, value in schema.items() if key != "type"}}


def schemas(limits: Mapping[str, int]) -> dict[str, Any]:
    """The components, with the limits in force."""
    name = limited("MAX_NAME_LENGTH", limits, {"type": "string", "minLength": 1, "pattern": NOT_BLANK_PATTERN})
    text = limited("MAX_OUTPUT_CHARS", limits, {"type": "string", "pattern": STORABLE})
    error_text = limited("MAX_OUTPUT_CHARS", limits, {"type": "string", "pattern": NOT_BLANK_PATTERN})
    variable_text = limited("MAX_VARIABLE_CHARS", limits, {"type": "string", "pattern": STORABLE})
    steps = limited("MAX_STEPS", limits, {"type": "array", "items": {"$ref": "#/components/schemas/StepInput"}})
    return {
        "Usage": {
            "type": "object",
            "properties": {
                "inputTokens": TOKENS,
                "outputTokens": TOKENS,
                "cost": {**DECIMAL_STRING, "description": "What the provider billed; wins over the computed cost."},
            },
            "additionalProperties": False,
        },
        "StepInput": {
            "type": "object",
            "required": ["agentId", "agentName", "output", "stepOrder"],
            "properties": {
                "agentId": name,
                "agentName": name,
                "output": text,
                "stepOrder": {"type": "integer", "minimum": 0, "maximum": 100000},
                "model": name,
                "usage": {"$ref": "#/components/schemas/Usage"},
                "inputTokens": TOKENS,
                "outputTokens": TOKENS,
                "cost": DECIMAL_STRING,
            },
            "additionalProperties": False,
        },
        "Variables": limited("MAX_VARIABLES", limits, {
            "type": "object",
            "propertyNames": name,
            "additionalProperties": {"anyOf": [variable_text, {"type": ["number", "boolean", "null"]}]},
        }),
        "RunCreate": {
            "type": "object",
            "required": ["pipeline", "input"],
            "properties": {
                "pipeline": name,
                "input": text,
                "variables": {"$ref": "#/components/schemas/Variables"},
                "model": name,
                "status": {"type": "string", "enum": ["running", "completed", "failed"],
                           "description": "running (default) starts a run; completed or failed records a finished one."},
                "steps": steps,
                "finalOutput": text,
                "usage": {"$ref": "#/components/schemas/Usage"},
                "error": text,
                "createdAt": TIMESTAMP,
                "completedAt": TIMESTAMP,
            },
            "additionalProperties": False,
            "allOf": [
                # A failed run says why.
                {"if": {"properties": {"status": {"const": "failed"}}, "required": ["status"]},
                 "then": {"required": ["error"], "properties": {"error": error_text}}},
                # Outputs and usage belong to a finished run; a started one gets them later.
                {"if": {"properties": {"status": {"enum": ["completed", "failed"]}}, "required": ["status"]},
                 "else": {"properties": {"steps": NOT_WITH_STATUS, "finalOutput": NOT_WITH_STATUS,
                                         "usage": NOT_WITH_STATUS, "error": NOT_WITH_STATUS,
                                         "completedAt": NOT_WITH_STATUS}}},
                {"if": {"properties": {"status": {"const": "completed"}}, "required": ["status"]},
                 "then": {"properties": {"error": NOT_WITH_STATUS}}},
            ],
        },
        "RunComplete": {
            "type": "object",
            "required": ["finalOutput"],
            "properties": {
                "finalOutput": text,
                "steps": steps,
                "model": name,
                "usage": {"$ref": "#/components/schemas/Usage"},
                "completedAt": TIMESTAMP,
            },
            "additionalProperties": False,
        },
        "RunFail": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": error_text,
                "steps": steps,
                "usage": {"$ref": "#/components/schemas/Usage"},
                "completedAt": TIMESTAMP,
            },
            "additionalProperties": False,
        },
        **RESPONSE_SCHEMAS,
    }


STRING = {"type": "string"}
RESPONSE_SCHEMAS: dict[str, Any] = {
    "Step": {
        "type": "object",
        "required": ["agentId", "agentName", "output", "stepOrder"],
        "properties": {
            "agentId": STRING, "agentName": STRING, "output": STRING, "stepOrder": {"type": "integer"},
            "model": STRING, "inputTokens": {"type": "integer"}, "outputTokens": {"type": "integer"},
            "cost": {"type": "string"},
        },
    },
    "Run": {
        "type": "object",
        "required": ["id", "url", "pipeline", "status", "input", "variables", "model", "steps", "finalOutput",
                     "usage", "cost", "costSource", "error", "createdAt", "completedAt"],
        "properties": {
            "id": {"type": "string"},
            "url": {"type": "string", "description": "The run's page in the web app."},
            "pipeline": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "running", "completed", "failed"]},
            "input": {"type": "string"},
            "variables": {"type": ["object", "null"]},
            "model": {"type": ["string", "null"]},
            "steps": {"type": ["array", "null"], "items": {"$ref": "#/components/schemas/Step"},
                      "description": "null for a legacy run, which has only a final output."},
            "finalOutput": {"type": ["string", "null"]},
            "usage": {
                "type": "object",
                "required": ["inputTokens", "outputTokens"],
                "properties": {"inputTokens": {"type": ["integer", "null"]},
                               "outputTokens": {"type": ["integer", "null"]}},
            },
            "cost": {"type": ["string", "null"], "description": "US dollars as a decimal string; null when unpriced."},
            "costSource": {"type": ["string", "null"], "enum": ["computed", "provider", "unpriced", None]},
            "error": {"type": ["string", "null"]},
            "createdAt": {"type": "string"},
            "completedAt": {"type": ["string", "null"]},
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
    },
    "RunPage": {
        "type": "object",
        "required": ["runs", "nextCursor"],
        "properties": {
            "runs": {"type": "array", "items": {"$ref": "#/components/schemas/RunSummary"}},
            "nextCursor": {"type": ["string", "null"]},
        },
    },
    "RunSummary": {
        "type": "object",
        "required": ["id", "url", "pipeline", "status", "model", "usage", "cost", "costSource", "createdAt",
                     "completedAt"],
        "properties": {
            "id": {"type": "string"}, "url": {"type": "string"}, "pipeline": {"type": "string"},
            "status": {"type": "string"}, "model": {"type": ["string", "null"]},
            "usage": {"type": "object"}, "cost": {"type": ["string", "null"]},
            "costSource": {"type": ["string", "null"]}, "createdAt": {"type": "string"},
            "completedAt": {"type": ["string", "null"]},
        },
    },
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "fields": {
                "type": "array",
                "items": {"type": "object", "required": ["field", "message"],
                          "properties": {"field": {"type": "string"}, "message": {"type": "string"}}},
            },
        },
    },
}


def error_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def json_body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def run_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Run"}}}}


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
LIST_PARAMETERS = [
    {"name": "pipeline", "in": "query", "schema": {"type": "string", "maxLength": 200}},
    {"name": "model", "in": "query", "schema": {"type": "string", "maxLength": 200}},
    {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["completed", "failed", "all"]}},
    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
]


def document(limits: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The whole OpenAPI document, with the limits in force (the defaults when none are given)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Artifacts API",
            "version": __version__,
            "description": "Record the runs of multi-step LLM pipelines: start a run, add step outputs, "
                           "complete or fail it, or record a finished run in one call. Costs are "
                           "computed by the server from the price in force when the run completed.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas({**defaults(), **(limits or {})}),
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
            "/api/v1/runs/{run_id}": {
                "get": {
                    "operationId": "getRun",
                    "summary": "One run, with every step's output.",
                    "parameters": [RUN_ID],
                    "responses": {"200": run_response("The run."), **COMMON_ERRORS,
                                  "404": error_response("No such run for this caller.")},
                },
            },
            "/api/v1/runs/{run_id}/steps": {
                "post": {
                    "operationId": "addStep",
                    "summary": "Append one step's output to a running run.",
                    "parameters": [RUN_ID],
                    "requestBody": json_body("StepInput"),
                    "responses": {"200": run_response("The run with the step added."), **WRITE_ERRORS,
                                  "404": error_response("No such run for this caller."),
                                  "409": error_response("The run is already completed or failed.")},
                },
            },
            "/api/v1/runs/{run_id}/complete": {
                "post": {
                    "operationId": "completeRun",
                    "summary": "Complete a running run; the server prices it.",
                    "parameters": [RUN_ID],
                    "requestBody": json_body("RunComplete"),
                    "responses": {"200": run_response("The completed run."), **WRITE_ERRORS,
                                  "404": error_response("No such run for this caller."),
                                  "409": error_response("The run is already completed or failed.")},
                },
            },
            "/api/v1/runs/{run_id}/fail": {
                "post": {
                    "operationId": "failRun",
                    "summary": "Fail a running run, keeping the steps that completed.",
                    "parameters": [RUN_ID],
                    "requestBody": json_body("RunFail"),
                    "responses": {"200": run_response("The failed run."), **WRITE_ERRORS,
                                  "404": error_response("No such run for this caller."),
                                  "409": error_response("The run is already completed or failed.")},
                },
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "responses": {"200": {"description": "The OpenAPI document.",
                                          "content": {"application/json": {"schema": {"type": "object"}}}},
                                  **COMMON_ERRORS},
                },
            },
        },
    }
