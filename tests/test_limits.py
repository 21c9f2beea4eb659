"""Every size limit is named, configurable, and answered with a 413 or 422 that names it and its value;
validation is linear in the input, so no body can hold a worker."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from artifacts_app import schemas
from artifacts_app.models import User
from tests.api_helpers import API, Caller, ada, assert_json_error, stored  # noqa: F401 (ada is a fixture)

# Far below the defaults, so each test can pass a limit with a small body.
SMALL_LIMITS = {"MAX_NAME_LENGTH": 20, "MAX_OUTPUT_CHARS": 1000, "MAX_STEPS": 3, "MAX_VARIABLES": 2,
                "MAX_VARIABLE_CHARS": 50, "MAX_CONTENT_LENGTH": 20_000}


@pytest.fixture
def limited(app: Flask) -> Flask:
    """The app with small limits, set before its first request builds the API's document."""
    app.config.update(SMALL_LIMITS)
    return app


def step(order: int, **fields: Any) -> dict[str, Any]:
    return {"agentId": "a", "agentName": "A", "output": "out", "stepOrder": order, **fields}


def finished(**fields: Any) -> dict[str, Any]:
    return {"pipeline": "P", "input": "x", "status": "completed", "finalOutput": "done", **fields}


OVER_LIMIT = [
    (finished(pipeline="p" * 21), "pipeline", "MAX_NAME_LENGTH = 20"),
    (finished(model="m" * 21), "model", "MAX_NAME_LENGTH = 20"),
    (finished(steps=[step(0, agentName="n" * 21)]), "steps[0].agentName", "MAX_NAME_LENGTH = 20"),
    (finished(variables={"k" * 21: 1}), "variables", "MAX_NAME_LENGTH = 20"),
    (finished(input="i" * 1001), "input", "MAX_OUTPUT_CHARS = 1000"),
    (finished(finalOutput="f" * 1001), "finalOutput", "MAX_OUTPUT_CHARS = 1000"),
    (finished(steps=[step(0, output="o" * 1001)]), "steps[0].output", "MAX_OUTPUT_CHARS = 1000"),
    (finished(steps=[step(n) for n in range(4)]), "steps", "MAX_STEPS = 3"),
    (finished(variables={"a": 1, "b": 2, "c": 3}), "variables", "MAX_VARIABLES = 2"),
    (finished(variables={"a": "v" * 51}), "variables.a", "MAX_VARIABLE_CHARS = 50"),
]


@pytest.mark.parametrize(("body", "field", "named"), OVER_LIMIT)
def test_each_limit_is_a_422_naming_the_limit_and_its_value(
    limited: Flask, client: FlaskClient, ada: Caller, body: dict[str, Any], field: str, named: str
) -> None:
    before = stored()
    response = client.post(f"{API}/runs", json=body, headers=ada.headers)
    error = assert_json_error(response, 422, "validation_failed")
    assert [fault["field"] for fault in error["fields"]] == [field], error
    assert named in error["fields"][0]["message"], error
    # The message names the limit; it never echoes the value that broke it.
    assert len(response.get_data()) < 1000
    assert stored() == before


def test_the_limits_are_what_the_document_publishes(limited: Flask, client: FlaskClient, ada: Caller) -> None:
    schemas = client.get(f"{API}/openapi.json", headers=ada.headers).get_json()["components"]["schemas"]
    for body in ("RunStart", "RunRecordCompleted", "RunRecordFailed"):
        assert schemas[body]["properties"]["pipeline"]["maxLength"] == 20
        assert schemas[body]["properties"]["pipeline"]["x-limit"] == "MAX_NAME_LENGTH"
        [variables] = [choice for choice in schemas[body]["properties"]["variables"]["anyOf"] if choice["type"] == "object"]
        assert variables["maxProperties"] == 2
    for body in ("RunRecordCompleted", "RunRecordFailed", "RunComplete", "RunFail"):
        [steps] = [choice for choice in schemas[body]["properties"]["steps"]["anyOf"] if choice["type"] == "array"]
        assert steps["maxItems"] == 3
    assert schemas["StepIn"]["properties"]["output"]["maxLength"] == 1000


def test_a_run_grown_step_by_step_stops_at_max_steps(limited: Flask, client: FlaskClient, ada: Caller) -> None:
    run = client.post(f"{API}/runs", json={"pipeline": "P", "input": "x"}, headers=ada.headers).get_json()
    for order in range(3):
        assert client.post(f"{API}/runs/{run['id']}/steps", json=step(order), headers=ada.headers).status_code == 200
    before = stored()
    error = assert_json_error(client.post(f"{API}/runs/{run['id']}/steps", json=step(3), headers=ada.headers), 422)
    assert "MAX_STEPS = 3" in error["fields"][0]["message"]
    assert stored() == before


def test_a_body_over_max_content_length_is_a_413_naming_it(limited: Flask, client: FlaskClient, ada: Caller) -> None:
    before = stored()
    response = client.post(f"{API}/runs", data=json.dumps(finished(input="x" * 30_000)),
                           content_type="application/json", headers=ada.headers)
    error = assert_json_error(response, 413)
    assert "MAX_CONTENT_LENGTH = 20000" in error["message"]
    assert stored() == before


def test_the_import_enforces_the_same_limits(limited: Flask, user: User) -> None:
    with pytest.raises(schemas.InvalidBody) as refused:
        schemas.parse(schemas.ImportedRun, {"pipeline": "P", "input": "x", "status": "completed",
                                            "createdAt": "2025-01-01T00:00:00Z", "completedAt": "2025-01-01T00:00:01Z",
                                            "steps": [step(n) for n in range(4)]})
    assert refused.value.field == "steps" and "MAX_STEPS = 3" in refused.value.message


# The attack found: 60,000 characters ending in NUL or a lone surrogate took the old "not blank"
# pattern 30 s. Every field that pattern guarded, with each bad ending.
NOT_BLANK_FIELDS = {
    "pipeline": lambda text: {"pipeline": text, "input": "x"},
    "model": lambda text: {"pipeline": "P", "input": "x", "model": text},
    "steps[0].agentId": lambda text: finished(steps=[step(0, agentId=text)]),
    "steps[0].agentName": lambda text: finished(steps=[step(0, agentName=text)]),
    "variables": lambda text: {"pipeline": "P", "input": "x", "variables": {text: 1}},
    "error": lambda text: {"pipeline": "P", "input": "x", "status": "failed", "error": text},
}


@pytest.mark.parametrize("ending", ["\\u0000", "\\ud800"])
@pytest.mark.parametrize("field", list(NOT_BLANK_FIELDS))
@pytest.mark.parametrize("length", ["over the limit", "within a raised limit"])
def test_a_long_string_ending_in_nul_or_a_lone_surrogate_is_refused_at_once(
    app: Flask, client: FlaskClient, ada: Caller, field: str, ending: str, length: str
) -> None:
    if length == "within a raised limit":
        # The pattern itself must be linear: let it see all of a 2-million-character name.
        app.config.update(MAX_NAME_LENGTH=3_000_000, MAX_OUTPUT_CHARS=3_000_000)
        filler = " a" * 1_000_000
    else:
        filler = " " * 30_000 + "a" * 30_000
    body = NOT_BLANK_FIELDS[field]("PLACEHOLDER")
    raw = json.dumps(body).replace("PLACEHOLDER", filler + ending)
    before = stored()
    started = time.perf_counter()
    response = client.post(f"{API}/runs", data=raw, content_type="application/json", headers=ada.headers)
    elapsed = time.perf_counter() - started
    error = assert_json_error(response, 422, "validation_failed")
    assert any(fault["field"].startswith(field.split("[")[0]) for fault in error["fields"]), error
    # Was 30 s for 60,000 characters. Generous for a slow machine, far below any worker timeout.
    assert elapsed < 2.0, f"{field} took {elapsed:.2f} s"
    assert stored() == before
