"""Property-based checks of the live API against its own OpenAPI document, with schemathesis.

A real HTTP server (werkzeug, in a thread) serves the app on a migrated database of each
engine. schemathesis takes the app's document (the one that server serves, checked below) and
sends generated requests, valid and invalid, to every operation over HTTP, checking that none is
a server error, that every status code, content type, header and body is one the document
describes, and that a body the document forbids is refused.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from artifacts_app import recording, tokens
from artifacts_app.api import openapi
from artifacts_app.extensions import db
from tests.factories import make_run, make_user, three_steps
from tests.servers import serving

EXAMPLES_PER_OPERATION = 30


@dataclass(frozen=True)
class LiveApi:
    """The app served over real HTTP, and a user of it with a token."""

    base_url: str
    token: str
    finished_runs: Iterator[str]
    session: requests.Session  # one kept-alive connection for the whole test

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def check(self, case: Case, checks: list[Any]) -> None:
        """Send the case to the live server and run the checks on its response."""
        case.call_and_validate(base_url=self.base_url, session=self.session, headers=self.headers, checks=checks)

    def finished_run(self) -> str:
        """One of the seeded finished runs, each in turn (completed, failed, unpriced, legacy)."""
        return next(self.finished_runs)

    def running_run(self) -> str:
        """A new running run, started over HTTP like an executor would."""
        response = self.session.post(
            f"{self.base_url}/api/v1/runs", json={"pipeline": "Live", "input": "x", "model": "gpt-4o"},
            headers=self.headers, timeout=10,
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]  # type: ignore[no-any-return]


@pytest.fixture
def live_api(app: Flask) -> Iterator[LiveApi]:
    """The app on a real server at 127.0.0.1, with a user, a token and a few finished runs."""
    user = make_user("live@example.com")
    _, clear = tokens.create_token(user, "schemathesis")
    when = datetime(2024, 11, 1, 9, tzinfo=timezone.utc)
    finished = [
        make_run(user, completed_at=when).id,
        make_run(user, completed_at=when, status="failed", error="boom", steps=three_steps()[:1]).id,
        make_run(user, completed_at=when, model="local-model", usage={"inputTokens": 1, "outputTokens": 2}).id,
        recording.record_legacy_run(user, pipeline="Old", input="i", final_output="text",
                                    created_at=when, completed_at=when).id,
    ]
    db.session.commit()
    with serving(app) as url, requests.Session() as session:
        yield LiveApi(url, clear, itertools.cycle(finished), session)


# The document as the app builds it; test_the_live_server_serves_the_document_the_checks_use
# checks it is exactly what the live /api/v1/openapi.json returns. Loaded from the dict rather
# than through schemathesis.pytest.from_fixture: schemathesis 4.32.5's lazy loader sets
# `request.node._nodeid`, which pytest 9.2 no longer has.
CONFIG = SchemathesisConfig.from_dict({
    # Valid and invalid requests; the same examples on every run, so CI is reproducible.
    "generation": {"mode": "all", "max-examples": EXAMPLES_PER_OPERATION, "deterministic": True},
    # The coverage phase adds ~1,000 boundary cases per engine (~100 s); the fuzzing phase stays.
    "phases": {"coverage": {"enabled": False}},
})
# What every response must satisfy, whatever was sent.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
schema = schemathesis.openapi.from_dict(openapi.document(), config=CONFIG)


def test_the_live_server_serves_the_document_the_checks_use(live_api: LiveApi) -> None:
    response = requests.get(f"{live_api.base_url}/api/v1/openapi.json", headers=live_api.headers, timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == openapi.document()


def only_the_body_is_invalid(case: Case) -> bool:
    """Whether the case is a request whose body, and nothing else, breaks the document.

    Such a request must be refused. Invalid query strings and headers are not held to that: the
    API reads an empty filter (`?to=`) or an empty Idempotency-Key as absent, as the web list does.
    """
    if case.meta is None:
        return False
    negative = {location for location, info in case.meta.components.items() if info.mode == GenerationMode.NEGATIVE}
    return negative == {ParameterLocation.BODY}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_every_operation_answers_as_its_document_says_and_never_with_a_server_error(
    case: Case, live_api: LiveApi
) -> None:
    # As generated: valid requests, and invalid ones whose invalid bodies must be refused with a 4xx.
    checks = [*CHECKS, negative_data_rejection] if only_the_body_is_invalid(case) else CHECKS
    live_api.check(case, checks)
    if "run_id" in (case.path_parameters or {}):
        # A generated id names no run: send the same request to a real one, so the writers answer too.
        run_id = live_api.running_run() if case.method.upper() == "POST" else live_api.finished_run()
        case.path_parameters = {**case.path_parameters, "run_id": run_id}
        live_api.check(case, checks)
