"""The JSON API for executors: recording runs, idempotency, concurrency, errors as JSON, the OpenAPI document."""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from werkzeug.test import TestResponse

from artifacts_app import pricing, tokens
from artifacts_app.api import openapi
from artifacts_app.extensions import db
from artifacts_app.models import ApiToken, IdempotencyKey, Pipeline, PipelineRun
from tests import factories
from tests.api_helpers import (  # noqa: F401 (ada: a fixture)
    API,
    Caller,
    ada,
    as_recorded,
    assert_json_error,
    caller,
    follow_pages,
    stored,
    untimed,
)
from tests.factories import make_run, three_steps
from tests.http_helpers import log_in

# The packaged prices, as the app loads them without a PRICES_FILE.
PRICES = pricing.PriceTable.load()

BOB = "bob@example.com"
NOV_2024 = "2024-11-01T09:00:00Z"
JUN_2024 = "2024-06-01T09:00:00Z"


@pytest.fixture
def bob(app: Flask) -> Caller:
    return caller(BOB)


def count(model: type) -> int:
    db.session.rollback()
    return db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def stored_run(run_id: str) -> PipelineRun:
    db.session.rollback()
    return db.session.execute(sa.select(PipelineRun).where(PipelineRun.id == run_id)).scalar_one()


def field_names(body: dict[str, Any]) -> set[str]:
    return {fault["field"] for fault in body["fields"]}


def start(client: FlaskClient, who: Caller, **fields: Any) -> dict[str, Any]:
    """A running run started through the API."""
    body = {"pipeline": "Code review", "input": "PR #482", "model": "gpt-4o", **fields}
    response = client.post(f"{API}/runs", json=body, headers=who.headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def finished_body(**fields: Any) -> dict[str, Any]:
    """A one-call body recording a completed run."""
    return {
        "pipeline": "Research brief",
        "input": "Summarise solid-state batteries",
        "variables": {"audience": "engineers", "depth": 2},
        "model": "gpt-4o",
        "status": "completed",
        "steps": three_steps(),
        "finalOutput": "Final **draft**",
        "usage": {"inputTokens": 1234, "outputTokens": 567},
        "completedAt": NOV_2024,
        **fields,
    }


def steps_with_usage() -> list[dict[str, Any]]:
    """factories.steps_with_usage() as an executor may send it: the second step's tokens in a usage object."""
    mixed = factories.steps_with_usage()
    second = mixed[1]
    second["usage"] = {"inputTokens": second.pop("inputTokens"), "outputTokens": second.pop("outputTokens")}
    return mixed


# ---------------------------------------------------------------- POST /runs


def test_post_runs_starts_a_running_run_and_creates_its_pipeline(client: FlaskClient, ada: Caller) -> None:
    response = client.post(
        f"{API}/runs",
        json={"pipeline": "Code review", "input": "PR #482", "variables": {"repo": "api", "strict": True},
              "model": "gpt-4o"},
        headers=ada.headers,
    )

    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "running"
    assert body["url"].endswith(f"/artifacts/{body['id']}")
    assert (body["pipeline"], body["input"], body["model"]) == ("Code review", "PR #482", "gpt-4o")
    assert body["variables"] == {"repo": "api", "strict": True}
    assert (body["cost"], body["costSource"], body["completedAt"]) == (None, None, None)
    assert body["usage"] == {"inputTokens": None, "outputTokens": None}
    run = stored_run(body["id"])
    assert (run.status, run.user_id, run.pipeline.name) == ("running", ada.user_id, "Code review")
    assert run.variables == {"repo": "api", "strict": True}
    assert count(Pipeline) == 1


@pytest.mark.parametrize(
    ("completed_at", "cost"),
    [
        # gpt-4o from 2024-10-02: $2.50 in, $10.00 out per million: 1234*2.5e-6 + 567*10e-6.
        (NOV_2024, "0.008755000000"),
        # before that, $5 / $15: 1234*5e-6 + 567*15e-6 = 0.00617 + 0.008505.
        (JUN_2024, "0.014675000000"),
    ],
)
def test_one_call_records_a_finished_run_priced_at_its_completion_time(
    client: FlaskClient, ada: Caller, completed_at: str, cost: str
) -> None:
    response = client.post(f"{API}/runs", json=finished_body(completedAt=completed_at), headers=ada.headers)

    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "completed"
    assert body["cost"] == cost
    assert body["costSource"] == "computed"
    assert body["usage"] == {"inputTokens": 1234, "outputTokens": 567}
    assert body["steps"] == as_recorded(three_steps())
    assert body["finalOutput"] == "Final **draft**"
    assert datetime.fromisoformat(body["completedAt"]) == datetime.fromisoformat(completed_at.replace("Z", "+00:00"))
    assert "warnings" not in body
    run = stored_run(body["id"])
    assert run.cost == Decimal(cost) and run.cost_source == "computed"
    assert run.artifact_data == {"finalOutput": "Final **draft**"}
    assert [step.values() for step in run.steps] == as_recorded(three_steps())


def test_an_unknown_model_is_unpriced_with_a_warning_never_a_zero_cost(client: FlaskClient, ada: Caller) -> None:
    response = client.post(f"{API}/runs", json=finished_body(model="llama-3.1-70b-local"), headers=ada.headers)

    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["cost"] is None
    assert body["costSource"] == "unpriced"
    assert body["usage"] == {"inputTokens": 1234, "outputTokens": 567}
    assert len(body["warnings"]) == 1 and "llama-3.1-70b-local" in body["warnings"][0]
    run = stored_run(body["id"])
    assert (run.cost, run.cost_source) == (None, "unpriced")


def test_a_provider_reported_cost_is_stored_as_given(client: FlaskClient, ada: Caller) -> None:
    usage = {"inputTokens": 1234, "outputTokens": 567, "cost": "0.0123"}
    response = client.post(f"{API}/runs", json=finished_body(usage=usage), headers=ada.headers)

    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["cost"] == "0.012300000000"
    assert body["costSource"] == "provider"
    assert "warnings" not in body
    assert stored_run(body["id"]).cost == Decimal("0.0123")


def test_steps_with_their_own_usage_make_the_run_totals_exact_sums(client: FlaskClient, ada: Caller) -> None:
    body = finished_body(steps=steps_with_usage())
    del body["usage"]  # the run's totals come from its steps

    response = client.post(f"{API}/runs", json=body, headers=ada.headers)

    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    at = datetime(2024, 11, 1, 9, tzinfo=timezone.utc)
    mini = pricing.calculate_cost("gpt-4o-mini", 1000, 100, at=at, table=PRICES)
    sonnet = pricing.calculate_cost("claude-sonnet-4-5", 2000, 200, at=at, table=PRICES)
    assert mini is not None and sonnet is not None
    assert body["usage"] == {"inputTokens": 3300, "outputTokens": 330}
    assert [step["cost"] for step in body["steps"]] == [format(mini, "f"), format(sonnet, "f"), "0.000123000000"]
    assert Decimal(body["cost"]) == mini + sonnet + Decimal("0.000123")
    assert body["costSource"] == "computed"


def test_run_usage_that_disagrees_with_its_steps_is_a_422_naming_the_field_and_stores_nothing(
    client: FlaskClient, ada: Caller
) -> None:
    before = stored()
    body = finished_body(steps=steps_with_usage(), usage={"inputTokens": 9999, "outputTokens": 330})

    response = client.post(f"{API}/runs", json=body, headers=ada.headers)

    error = assert_json_error(response, 422, "validation_failed")
    assert field_names(error) == {"usage.inputTokens"}
    assert "3300" in error["fields"][0]["message"]
    assert stored() == before


# ---------------------------------------------------------------- step by step


def test_steps_are_appended_in_order_then_the_run_completes_priced(client: FlaskClient, ada: Caller) -> None:
    run = start(client, ada, createdAt="2024-10-31T23:00:00Z")
    for index, step in enumerate(three_steps()):
        response = client.post(f"{API}/runs/{run['id']}/steps", json=step, headers=ada.headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert untimed(response.get_json()["steps"]) == as_recorded(three_steps()[: index + 1])
        assert response.get_json()["status"] == "running"

    response = client.post(
        f"{API}/runs/{run['id']}/complete",
        json={"finalOutput": "LGTM", "usage": {"inputTokens": 1234, "outputTokens": 567}, "completedAt": NOV_2024},
        headers=ada.headers,
    )

    assert response.status_code == 200, response.get_data(as_text=True)
    done = response.get_json()
    assert (done["status"], done["cost"], done["costSource"]) == ("completed", "0.008755000000", "computed")
    fetched = client.get(f"{API}/runs/{run['id']}", headers=ada.headers)
    assert fetched.status_code == 200
    assert fetched.get_json() == done
    assert untimed(fetched.get_json()["steps"]) == as_recorded(three_steps())
    assert fetched.get_json()["finalOutput"] == "LGTM"


@pytest.mark.parametrize("prefer", ["return=minimal", 'respond-async, RETURN="Minimal"; x=1', "wait=5,return=minimal"])
def test_prefer_return_minimal_answers_204_without_the_run_and_stores_the_same(
    client: FlaskClient, ada: Caller, prefer: str
) -> None:
    """An executor posting many steps can skip reading the whole run back after each one."""
    run = start(client, ada)
    headers = {**ada.headers, "Prefer": prefer}
    for step in three_steps():
        response = client.post(f"{API}/runs/{run['id']}/steps", json=step, headers=headers)
        assert (response.status_code, response.data) == (204, b""), response.get_data(as_text=True)
        assert response.headers["Preference-Applied"] == "return=minimal"
    closed = client.post(f"{API}/runs/{run['id']}/complete", json={"finalOutput": "LGTM"}, headers=headers)
    assert (closed.status_code, closed.data) == (204, b"")

    fetched = client.get(f"{API}/runs/{run['id']}", headers=headers).get_json()
    assert untimed(fetched["steps"]) == as_recorded(three_steps())
    assert (fetched["status"], fetched["finalOutput"]) == ("completed", "LGTM")
    # An error still says what went wrong; any other preference gets the run as usual.
    again = client.post(f"{API}/runs/{run['id']}/fail", json={"error": "late"}, headers=headers)
    assert "Preference-Applied" not in again.headers
    assert_json_error(again, 409, "conflict")
    other = start(client, ada)
    shown = client.post(f"{API}/runs/{other['id']}/steps", json=three_steps()[0],
                        headers={**ada.headers, "Prefer": "return=representation, minimal"})
    assert shown.status_code == 200 and "Preference-Applied" not in shown.headers
    assert untimed(shown.get_json()["steps"]) == as_recorded(three_steps()[:1])


def test_steps_may_arrive_in_any_order_a_repeat_is_a_409_and_completion_needs_no_gap(
    client: FlaskClient, ada: Caller
) -> None:
    run = start(client, ada)
    steps = [{**three_steps()[0], "stepOrder": order, "output": f"step {order}"} for order in range(4)]
    for order in (2, 0, 3):  # concurrent executors' posts arrive in any order
        posted = client.post(f"{API}/runs/{run['id']}/steps", json=steps[order], headers=ada.headers)
        assert posted.status_code == 200, posted.get_data(as_text=True)
    assert [step["stepOrder"] for step in posted.get_json()["steps"]] == [0, 2, 3]
    before = stored()

    repeat = client.post(f"{API}/runs/{run['id']}/steps", json={**steps[2], "output": "again"}, headers=ada.headers)
    assert_json_error(repeat, 409, "conflict")
    gap = client.post(f"{API}/runs/{run['id']}/complete", json={"finalOutput": "done"}, headers=ada.headers)
    error = assert_json_error(gap, 422, "validation_failed")
    assert "expected 1, found 2" in error["message"]
    too_far = client.post(f"{API}/runs/{run['id']}/steps", json={**steps[0], "stepOrder": 1000}, headers=ada.headers)
    assert assert_json_error(too_far, 422, "validation_failed")["fields"][0]["field"] == "stepOrder"
    assert stored() == before

    assert client.post(f"{API}/runs/{run['id']}/steps", json=steps[1], headers=ada.headers).status_code == 200
    done = client.post(f"{API}/runs/{run['id']}/complete", json={"finalOutput": "done"}, headers=ada.headers)
    assert done.status_code == 200, done.get_data(as_text=True)
    assert [(step["stepOrder"], step["output"]) for step in done.get_json()["steps"]] == [
        (order, f"step {order}") for order in range(4)
    ]


def test_failing_a_run_keeps_its_steps_and_error_text(client: FlaskClient, ada: Caller) -> None:
    run = start(client, ada)
    for step in three_steps()[:2]:
        assert client.post(f"{API}/runs/{run['id']}/steps", json=step, headers=ada.headers).status_code == 200

    response = client.post(
        f"{API}/runs/{run['id']}/fail", json={"error": "Timeout: step 3 exceeded 120 s"}, headers=ada.headers
    )

    assert response.status_code == 200, response.get_data(as_text=True)
    failed = response.get_json()
    assert failed["status"] == "failed"
    assert failed["error"] == "Timeout: step 3 exceeded 120 s"
    assert untimed(failed["steps"]) == as_recorded(three_steps()[:2])
    assert failed["completedAt"] is not None
    fetched = client.get(f"{API}/runs/{run['id']}", headers=ada.headers).get_json()
    assert untimed(fetched["steps"]) == as_recorded(three_steps()[:2]) and fetched["error"] == "Timeout: step 3 exceeded 120 s"


@pytest.mark.parametrize("close", ["complete", "fail"])
def test_writing_to_a_finished_run_is_a_409_and_changes_nothing(client: FlaskClient, ada: Caller, close: str) -> None:
    run = start(client, ada)
    for step in three_steps():
        client.post(f"{API}/runs/{run['id']}/steps", json=step, headers=ada.headers)
    closing = {"finalOutput": "first"} if close == "complete" else {"error": "first failure"}
    done = client.post(f"{API}/runs/{run['id']}/{close}", json=closing, headers=ada.headers)
    assert done.status_code == 200
    before = stored()

    for action, body in (
        ("complete", {"finalOutput": "again"}),
        ("fail", {"error": "late failure"}),
        ("steps", {**three_steps()[0], "stepOrder": 3}),
    ):
        response = client.post(f"{API}/runs/{run['id']}/{action}", json=body, headers=ada.headers)
        assert_json_error(response, 409, "conflict")

    assert stored() == before
    assert client.get(f"{API}/runs/{run['id']}", headers=ada.headers).get_json() == done.get_json()


# ---------------------------------------------------------------- GET /runs


def seed_list(ada: Caller, bob: Caller) -> dict[str, str]:
    """Ada's finished runs (two completing at the same instant), one running, and one of Bob's."""
    user = ada.user()
    base = datetime(2025, 11, 1, 12, tzinfo=timezone.utc)
    ids = {
        "a": make_run(user, completed_at=base, model="gpt-4o").id,
        "b": make_run(user, completed_at=base + timedelta(hours=1), model="gpt-4o-mini").id,
        "c": make_run(user, completed_at=base + timedelta(hours=1), model="gpt-4o").id,  # tied with b
        "d": make_run(user, completed_at=base + timedelta(hours=2), status="failed", error="boom",
                      final_output="").id,
        "e": make_run(user, completed_at=base + timedelta(hours=3), model="gpt-4o").id,
        "f": make_run(user, completed_at=base - timedelta(hours=1), status="failed", error="boom",
                      final_output="", model="gpt-4o-mini").id,
    }
    running = factories.start_run(user, pipeline="Research brief", input="still going")
    db.session.commit()
    ids["running"] = running.id
    ids["bobs"] = make_run(bob.user(), completed_at=base).id
    return ids


def test_listing_pages_through_every_run_of_the_caller_exactly_once(
    client: FlaskClient, ada: Caller, bob: Caller
) -> None:
    ids = seed_list(ada, bob)

    pages = follow_pages(client, ada, limit="2")

    assert [len(page) for page in pages] == [2, 2, 2, 1]
    listed = [run["id"] for page in pages for run in page]
    every_status = [ids[name] for name in ("a", "b", "c", "d", "e", "f", "running")]
    assert sorted(listed) == sorted(every_status)  # every run once: no duplicate, no gap
    assert listed[0] == ids["running"] and pages[0][0]["status"] == "running"  # started now: the newest
    # Finished runs by completion, the running one by its start; ties by id.
    times = [(run["completedAt"] or run["createdAt"], run["id"]) for page in pages for run in page]
    assert times == sorted(times, reverse=True)
    summary = next(run for page in pages for run in page if run["id"] == ids["a"])
    assert summary["usage"] == {"inputTokens": 1234, "outputTokens": 567}
    assert (summary["status"], summary["model"], summary["pipeline"]) == ("completed", "gpt-4o", "Research brief")
    assert summary["cost"] == "0.008755000000" and summary["costSource"] == "computed"
    assert summary["url"].endswith(f"/artifacts/{ids['a']}")


def test_list_filters_narrow_the_runs_and_stay_in_force_across_pages(
    client: FlaskClient, ada: Caller, bob: Caller
) -> None:
    ids = seed_list(ada, bob)

    for params, expected in (
        ({}, ["a", "b", "c", "d", "e", "f", "running"]),  # every status, by default
        ({"status": "completed"}, ["e", "c", "b", "a"]),
        ({"status": "failed"}, ["d", "f"]),
        ({"status": "running"}, ["running"]),
        ({"model": "gpt-4o-mini", "status": "completed"}, ["b"]),
        ({"model": "gpt-4o-mini"}, ["b", "f"]),
        ({"model": "gpt-4o", "status": "completed"}, ["e", "c", "b", "a"]),  # the family: gpt-4o-mini too
        ({"model": "no-such-model"}, []),
    ):
        pages = follow_pages(client, ada, limit="1", **params)
        listed = [run["id"] for page in pages for run in page]
        assert sorted(listed) == sorted(ids[name] for name in expected), params
        assert len(listed) == len(set(listed)), params


def test_a_bad_cursor_or_filter_is_a_400_json_error(client: FlaskClient, ada: Caller) -> None:
    for query in (
        {"cursor": "not-a-cursor"},
        {"cursor": "eyJ0IjoiMjAyNS0xMS0wMSJ9.forged"},
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"status": "archived"},
        {"sort": "cheapest"},
        {"tag": "x" * 201},
        {"meta.bad key": "v"},
        {"from": "yesterday"},
        {"from": "2025-11-02", "to": "2025-11-01"},
    ):
        response = client.get(f"{API}/runs", query_string=query, headers=ada.headers)
        assert_json_error(response, 400, "bad_request")


def test_a_cursor_whose_filters_differ_from_the_query_is_a_400(client: FlaskClient, ada: Caller, bob: Caller) -> None:
    seed_list(ada, bob)
    first = client.get(f"{API}/runs", query_string={"limit": "1", "model": "gpt-4o"}, headers=ada.headers).get_json()
    assert first["nextCursor"]

    response = client.get(
        f"{API}/runs", query_string={"cursor": first["nextCursor"], "model": "gpt-4o-mini"}, headers=ada.headers
    )

    assert_json_error(response, 400, "bad_request")


# ---------------------------------------------------------------- Idempotency-Key


def test_a_retry_with_the_same_key_and_body_returns_the_same_run_and_stores_one(
    client: FlaskClient, ada: Caller
) -> None:
    headers = {**ada.headers, "Idempotency-Key": "run-2025-11-30-0001"}
    first = client.post(f"{API}/runs", json=finished_body(), headers=headers)
    assert first.status_code == 201, first.get_data(as_text=True)
    before = stored()

    again = client.post(f"{API}/runs", json=finished_body(), headers=headers)
    # The same JSON with its keys in another order is the same request.
    reordered = client.post(f"{API}/runs", json=dict(reversed(finished_body().items())), headers=headers)

    for retry in (again, reordered):
        assert retry.status_code == 200, retry.get_data(as_text=True)
        assert retry.get_json() == first.get_json()
    assert stored() == before
    assert count(PipelineRun) == 1 and count(IdempotencyKey) == 1


def test_a_key_reused_for_a_different_body_is_a_409_and_stores_nothing(client: FlaskClient, ada: Caller) -> None:
    headers = {**ada.headers, "Idempotency-Key": "k-1"}
    assert client.post(f"{API}/runs", json=finished_body(), headers=headers).status_code == 201
    before = stored()

    response = client.post(f"{API}/runs", json=finished_body(input="something else"), headers=headers)

    assert_json_error(response, 409, "conflict")
    assert stored() == before


def test_keys_belong_to_each_user(client: FlaskClient, ada: Caller, bob: Caller) -> None:
    first = client.post(f"{API}/runs", json=finished_body(), headers={**ada.headers, "Idempotency-Key": "same"})
    second = client.post(f"{API}/runs", json=finished_body(), headers={**bob.headers, "Idempotency-Key": "same"})

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.get_json()["id"] != second.get_json()["id"]
    assert count(PipelineRun) == 2


def test_a_key_over_255_characters_is_a_422_and_stores_nothing(client: FlaskClient, ada: Caller) -> None:
    before = stored()

    response = client.post(f"{API}/runs", json=finished_body(), headers={**ada.headers, "Idempotency-Key": "k" * 256})

    error = assert_json_error(response, 422, "validation_failed")
    assert field_names(error) == {"Idempotency-Key"}
    assert stored() == before


def race(count_: int, call: Any) -> list[Any]:
    """Run `call` in `count_` threads released together; their results in completion order."""
    barrier = threading.Barrier(count_)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(call())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(count_)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert len(results) == count_
    return results


def warm_up(app: Flask, who: Caller) -> None:
    """Use the token once, so neither racing request writes its last_used_at.

    That write locks the token's row until commit, which would queue the second request
    behind the first and hide the race the tests are about.
    """
    assert tokens.authenticate(who.token) is not None
    db.session.commit()


@pytest.mark.postgres_only
def test_two_concurrent_requests_with_one_key_store_one_run_and_both_answer_with_it(
    app: Flask, ada: Caller
) -> None:
    headers = {**ada.headers, "Idempotency-Key": "concurrent-retry"}
    warm_up(app, ada)

    def post() -> tuple[int, dict[str, Any]]:
        response = app.test_client().post(f"{API}/runs", json=finished_body(), headers=headers)
        return response.status_code, response.get_json()

    results = race(2, post)

    assert sorted(status for status, _ in results) == [200, 201], results
    [run_id] = {body["id"] for _, body in results}
    assert count(PipelineRun) == 1 and count(IdempotencyKey) == 1
    assert stored_run(run_id).status == "completed"


@pytest.mark.postgres_only
def test_two_concurrent_completions_of_one_run_give_one_200_and_one_409(app: Flask, ada: Caller) -> None:
    run = start(app.test_client(), ada)
    warm_up(app, ada)

    def complete(label: str) -> tuple[int, dict[str, Any]]:
        response = app.test_client().post(
            f"{API}/runs/{run['id']}/complete",
            json={"finalOutput": label, "usage": {"inputTokens": 1, "outputTokens": 1}},
            headers=ada.headers,
        )
        return response.status_code, response.get_json()

    labels = iter(("first", "second"))
    lock = threading.Lock()

    def next_completion() -> tuple[int, dict[str, Any]]:
        with lock:
            label = next(labels)
        return complete(label)

    results = race(2, next_completion)

    assert sorted(status for status, _ in results) == [200, 409], results
    winner = next(body for status, body in results if status == 200)
    loser = next(body for status, body in results if status == 409)
    assert loser["error"] == "conflict"
    stored_ = stored_run(run["id"])
    assert stored_.status == "completed"
    assert stored_.final_output == winner["finalOutput"]
    assert stored_.artifact_data == {"finalOutput": winner["finalOutput"]} and stored_.steps == []


# ---------------------------------------------------------------- authentication


OPERATIONS = [
    ("GET", "/runs"),
    ("POST", "/runs"),
    ("GET", "/runs/{run_id}"),
    ("POST", "/runs/{run_id}/steps"),
    ("POST", "/runs/{run_id}/complete"),
    ("POST", "/runs/{run_id}/fail"),
]
VALID_BODIES = {
    "/runs": {"pipeline": "P", "input": "x"},
    "/runs/{run_id}/steps": three_steps()[0],
    "/runs/{run_id}/complete": {"finalOutput": "done"},
    "/runs/{run_id}/fail": {"error": "broke"},
}


def call(client: FlaskClient, method: str, path: str, run_id: str, headers: dict[str, str]) -> TestResponse:
    body = VALID_BODIES.get(path)
    url = API + path.replace("{run_id}", run_id)
    return client.open(url, method=method, json=body if method == "POST" else None, headers=headers)


def test_missing_or_wrong_credentials_are_a_401_json_naming_the_bearer_scheme_on_every_operation(
    client: FlaskClient, ada: Caller
) -> None:
    run = start(client, ada)
    revoked_token, revoked_clear = tokens.create_token(ada.user(), "old host")
    tokens.revoke(revoked_token)
    db.session.commit()
    attempts = {
        "missing": {},
        "wrong token": {"Authorization": "Bearer art_" + "x" * 43},
        "Basic scheme": {"Authorization": f"Basic {ada.token}"},
        "no scheme": {"Authorization": ada.token},
        "empty bearer": {"Authorization": "Bearer "},
        "revoked token": {"Authorization": f"Bearer {revoked_clear}"},
        "altered token": {"Authorization": f"Bearer {ada.token[:-1]}{'A' if ada.token[-1] != 'A' else 'B'}"},
    }
    before = stored()

    for attempt, headers in attempts.items():
        for method, path in OPERATIONS:
            response = call(client, method, path, run["id"], headers)
            assert_json_error(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), (attempt, method, path)
    assert stored() == before
    # The control: the same calls with Ada's token get through.
    assert call(client, "GET", "/runs/{run_id}", run["id"], ada.headers).status_code == 200


# ---------------------------------------------------------------- another user's run


def test_another_users_run_is_a_404_indistinguishable_from_a_missing_one(
    client: FlaskClient, ada: Caller, bob: Caller
) -> None:
    bobs = start(client, bob)
    before = stored()

    for method, path in OPERATIONS:
        if "{run_id}" not in path:
            continue
        theirs = call(client, method, path, bobs["id"], ada.headers)
        missing = call(client, method, path, str(uuid.uuid4()), ada.headers)
        assert_json_error(theirs, 404, "not_found")
        assert (theirs.status_code, theirs.get_data()) == (missing.status_code, missing.get_data()), (method, path)

    assert stored() == before
    assert client.get(f"{API}/runs/{bobs['id']}", headers=bob.headers).get_json() == bobs


# ---------------------------------------------------------------- bad requests


def write_targets(client: FlaskClient, who: Caller) -> list[str]:
    run = start(client, who)
    return [f"{API}/runs", f"{API}/runs/{run['id']}/steps", f"{API}/runs/{run['id']}/complete",
            f"{API}/runs/{run['id']}/fail"]


def test_malformed_json_is_a_400_on_every_write_and_stores_nothing(client: FlaskClient, ada: Caller) -> None:
    targets = write_targets(client, ada)
    before = stored()

    for data in ('{"pipeline": "P", "input": ', "{'pipeline': 'P'}", "", "nul\x00", "[1,]", b"\xff\xfe{}"):
        for url in targets:
            response = client.post(url, data=data, content_type="application/json", headers=ada.headers)
            assert_json_error(response, 400, "bad_request")
    assert stored() == before


def test_a_body_not_sent_as_json_is_a_415_and_stores_nothing(client: FlaskClient, ada: Caller) -> None:
    targets = write_targets(client, ada)
    before = stored()

    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        for url in targets:
            response = client.post(url, data='{"pipeline": "P", "input": "x"}', content_type=content_type,
                                   headers=ada.headers)
            assert_json_error(response, 415, "unsupported_media_type")
    assert stored() == before


def test_wrong_types_and_out_of_range_values_are_a_422_naming_every_field_at_fault(
    client: FlaskClient, ada: Caller
) -> None:
    before = stored()

    response = client.post(
        f"{API}/runs",
        json={"pipeline": 1, "input": 2, "status": "completed", "steps": [{"stepOrder": -1}], "usage": {"inputTokens": -5}},
        headers=ada.headers,
    )

    error = assert_json_error(response, 422, "validation_failed")
    assert field_names(error) == {
        "pipeline", "input", "steps[0].agentId", "steps[0].agentName", "steps[0].output", "steps[0].stepOrder",
        "usage.inputTokens",
    }
    assert all(fault["message"] for fault in error["fields"])
    assert stored() == before


INVALID_BODIES: list[tuple[str, Any, set[str]]] = [
    ("runs", {"input": "x"}, {"pipeline"}),
    ("runs", {"pipeline": "", "input": "x"}, {"pipeline"}),
    ("runs", {"pipeline": "x" * 201, "input": "x"}, {"pipeline"}),
    ("runs", {"pipeline": "P", "input": "x", "status": "done"}, {"status"}),
    ("runs", {"pipeline": "P", "input": "x", "variables": {"k": {"nested": 1}}}, {"variables.k"}),
    ("runs", {"pipeline": "P", "input": "x", "usage": {"inputTokens": 2**31}, "status": "completed"}, {"usage.inputTokens"}),
    ("runs", {"pipeline": "P", "input": "x", "usage": {"outputTokens": 1.5}, "status": "completed"}, {"usage.outputTokens"}),
    ("runs", {"pipeline": "P", "input": "x", "usage": {"cost": 0.01}, "status": "completed"}, {"usage.cost"}),
    ("runs", {"pipeline": "P", "input": "x", "usage": {"cost": "-0.01"}, "status": "completed"}, {"usage.cost"}),
    ("runs", {"pipeline": "P", "input": "x", "completedAt": "yesterday", "status": "completed"}, {"completedAt"}),
    ("runs", {"pipeline": "P", "input": "x", "completedAt": "2024-11-01T09:00:00", "status": "completed"},
     {"completedAt"}),
    ("runs", [], {"body"}),
    ("runs", None, {"body"}),
    ("steps", {**three_steps()[0], "stepOrder": "0"}, {"stepOrder"}),
    ("steps", {"agentId": "a", "agentName": "A", "stepOrder": 0}, {"output"}),
    ("complete", {}, {"finalOutput"}),
    ("complete", {"finalOutput": "x", "usage": {"inputTokens": -1}}, {"usage.inputTokens"}),
    ("fail", {"error": ""}, {"error"}),
    ("fail", {"error": 3}, {"error"}),
]


def test_an_invalid_body_is_a_422_naming_the_field_and_changes_nothing(client: FlaskClient, ada: Caller) -> None:
    run = start(client, ada)
    before = stored()

    for target, body, fields in INVALID_BODIES:
        url = f"{API}/runs" if target == "runs" else f"{API}/runs/{run['id']}/{target}"
        response = client.post(url, data=json.dumps(body), content_type="application/json", headers=ada.headers)
        error = assert_json_error(response, 422, "validation_failed")
        assert field_names(error) == fields, (target, body, error)

    assert stored() == before


UNKNOWN_PROPERTIES: list[tuple[str, dict[str, Any], str]] = [
    ("runs", {"pipeline": "P", "input": "x", "colour": "red"}, "colour"),
    ("runs", {"pipeline": "P", "input": "x", "usage": {"inputTokens": 1, "tokens": 2}}, "tokens"),
    ("runs", {"pipeline": "P", "input": "x", "status": "completed", "steps": [{**three_steps()[0], "agent": "x"}]},
     "agent"),
    ("steps", {**three_steps()[0], "extra": True}, "extra"),
    ("complete", {"finalOutput": "x", "status": "completed"}, "status"),
    ("fail", {"error": "x", "finalOutput": "y"}, "finalOutput"),
]


def test_an_unknown_property_is_a_422_that_names_it_and_changes_nothing(client: FlaskClient, ada: Caller) -> None:
    run = start(client, ada)
    before = stored()

    for target, body, unknown in UNKNOWN_PROPERTIES:
        url = f"{API}/runs" if target == "runs" else f"{API}/runs/{run['id']}/{target}"
        response = client.post(url, json=body, headers=ada.headers)
        error = assert_json_error(response, 422, "validation_failed")
        # The unknown property is the field named, so a client sees exactly which key to drop.
        assert any(fault["field"].split(".")[-1].split("]")[-1] == unknown and "not a field" in fault["message"]
                   for fault in error["fields"]), error

    assert stored() == before


def test_a_body_over_max_content_length_is_a_413_json_and_stores_nothing(
    app: Flask, client: FlaskClient, ada: Caller
) -> None:
    targets = write_targets(client, ada)
    app.config["MAX_CONTENT_LENGTH"] = 1024
    before = stored()

    for url in targets:
        small = client.post(url, json={"pipeline": "P", "input": "x" * 100, "bogus": 1}, headers=ada.headers)
        assert small.status_code == 422  # under the limit the body is read and checked
        response = client.post(url, json={"pipeline": "P", "input": "x" * 2000}, headers=ada.headers)
        assert_json_error(response, 413, "payload_too_large")
    assert stored() == before


def test_an_unknown_api_path_is_a_404_json(client: FlaskClient, ada: Caller) -> None:
    for path in ("/nope", "/runs/x/y/z", "/runs/x/retry", "/", "", "/runs/"):
        for headers in ({}, ada.headers):
            response = client.get(API + path, headers=headers)
            assert_json_error(response, 404, "not_found")


def test_a_wrong_method_is_a_405_json_with_allow(client: FlaskClient, ada: Caller) -> None:
    run = start(client, ada)
    before = stored()

    for method, path, allowed in (
        ("DELETE", "/runs", {"GET", "POST"}),
        ("PUT", "/runs/{run_id}", {"GET", "DELETE"}),
        ("DELETE", "/runs/{run_id}/steps", {"POST"}),
        ("GET", "/runs/{run_id}/complete", {"POST"}),
        ("GET", "/runs/{run_id}/steps", {"POST"}),
        ("PATCH", "/runs/{run_id}/fail", {"POST"}),
        ("POST", "/openapi.json", {"GET"}),
    ):
        response = client.open(API + path.replace("{run_id}", run["id"]), method=method, headers=ada.headers,
                               json={"finalOutput": "x"})
        assert_json_error(response, 405, "method_not_allowed")
        assert {m.strip() for m in response.headers["Allow"].split(",")} - {"HEAD", "OPTIONS"} == allowed, path

    assert stored() == before


# ---------------------------------------------------------------- OpenAPI document


# What an executor may call; a new route must be added here and to the document.
API_ROUTES = {
    f"{API}/openapi.json": {"get"},
    f"{API}/runs": {"get", "post"},
    f"{API}/runs/batch": {"post"},
    f"{API}/runs/{{run_id}}": {"get", "delete"},
    f"{API}/runs/{{run_id}}/steps": {"post"},
    f"{API}/runs/{{run_id}}/complete": {"post"},
    f"{API}/runs/{{run_id}}/fail": {"post"},
}


def api_rules(app: Flask) -> dict[str, set[str]]:
    """What the app routes under /api/v1, as OpenAPI paths and lower-case methods."""
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(API):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            routes.setdefault(path, set()).update(m.lower() for m in (rule.methods or ()) - {"HEAD", "OPTIONS"})
    return routes


def test_the_openapi_document_describes_every_api_route_and_nothing_more(
    app: Flask, client: FlaskClient, ada: Caller
) -> None:
    response = client.get(f"{API}/openapi.json", headers=ada.headers)

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    described = {
        path: {method for method in item if method in {"get", "post", "put", "patch", "delete"}}
        for path, item in document["paths"].items()
    }
    routes = api_rules(app)
    assert routes == API_ROUTES
    assert described == routes
    for path, item in document["paths"].items():
        for name in re.findall(r"{([^}]+)}", path):
            for operation in item.values():
                declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
                assert name in declared, (path, name)


# ---------------------------------------------------------------- edge cases
# Edge cases found by probing the API; each was a 500 once.


def assert_handled(response: TestResponse, status: int) -> dict[str, Any]:
    """An answer the document describes: this status, as JSON; never a 500. Its body."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.mimetype == "application/json"
    return json.loads(response.get_data(as_text=True), parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))


def test_the_last_representable_date_as_a_filter_is_a_400_naming_the_range(client: FlaskClient, ada: Caller) -> None:
    # The end of 9999-12-31 is past what a timestamp can hold: the filter stops a year short of it.
    for query in ({"to": "9999-12-31"}, {"from": "2025-01-01", "to": "9999-12-31"}):
        response = client.get(f"{API}/runs", query_string=query, headers=ada.headers)
        body = assert_handled(response, 400)
        assert body["message"] == "to must be between 1970-01-01 and 9998-12-31", body
    assert_handled(client.get(f"{API}/runs", query_string={"to": "9998-12-31"}, headers=ada.headers), 200)


def test_a_time_that_cannot_be_expressed_in_utc_is_a_422_naming_it(client: FlaskClient, ada: Caller) -> None:
    before = stored()
    for field, value in (("createdAt", "9999-12-31T23:59:59-23:59"), ("createdAt", "0001-01-01T00:00:00+01:00"),
                         ("completedAt", "9999-12-31T23:59:59-23:59")):
        body = {"pipeline": "P", "input": "x", "status": "completed", "createdAt": "2025-01-01T00:00:00Z", field: value}
        response = client.post(f"{API}/runs", json=body, headers=ada.headers)
        assert_handled(response, 422)
        assert field_names(response.get_json()) == {field}
    assert stored() == before


def test_steps_whose_token_total_overflows_the_column_are_a_422(client: FlaskClient, ada: Caller) -> None:
    big = 2**31 - 1
    steps = [{**step, "inputTokens": big, "outputTokens": 1} for step in three_steps()[:2]]
    before = stored()

    response = client.post(f"{API}/runs", json=finished_body(steps=steps, usage={}), headers=ada.headers)

    assert_handled(response, 422)
    assert stored() == before


def test_non_finite_numbers_in_a_body_are_rejected(client: FlaskClient, ada: Caller) -> None:
    before = stored()
    for number in ("NaN", "Infinity", "-Infinity", "1e400"):
        raw = '{"pipeline": "P", "input": "x", "variables": {"v": NUMBER}}'.replace("NUMBER", number)
        response = client.post(f"{API}/runs", data=raw, content_type="application/json", headers=ada.headers)
        body = assert_handled(response, 400)
        assert body["message"] == "The body is not valid JSON.", (number, body)
    assert stored() == before


def test_nul_characters_in_ids_filters_and_keys_are_not_a_server_error(
    request: pytest.FixtureRequest, client: FlaskClient, ada: Caller, engine_name: str
) -> None:
    run = start(client, ada)

    assert_handled(client.get(f"{API}/runs/a%00b", headers=ada.headers), 404)
    for action, body in (("steps", three_steps()[0]), ("complete", {"finalOutput": "x"}), ("fail", {"error": "x"})):
        assert_handled(client.post(f"{API}/runs/a%00b/{action}", json=body, headers=ada.headers), 404)
    for name in ("model", "pipeline"):
        body = assert_handled(client.get(f"{API}/runs", query_string={name: "P\x00"}, headers=ada.headers), 400)
        assert body["message"] == f"{name} must not contain control characters", body
    response = client.post(f"{API}/runs", json={"pipeline": "P", "input": "x"},
                           headers={**ada.headers, "Idempotency-Key": "key\x00"})
    assert field_names(assert_handled(response, 422)) == {"Idempotency-Key"}
    assert client.get(f"{API}/runs/{run['id']}", headers=ada.headers).status_code == 200


SPEC_URI = "urn:artifacts:openapi"


def test_the_document_and_the_server_agree_on_which_bodies_are_valid(client: FlaskClient, ada: Caller) -> None:
    # A stock validator reading the published document, not the server's own: a client's view.
    registry = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(openapi.document()))
    validator = Draft202012Validator({"$ref": f"{SPEC_URI}#/components/schemas/RunCreate"}, registry=registry)
    # Each body and what both must say of it: 201, or 422 naming the field at fault.
    bodies = [
        ({"pipeline": "P", "input": "x", "status": "failed"}, "error"),
        ({"pipeline": "P", "input": "x", "status": "failed", "error": ""}, "error"),
        ({"pipeline": "   ", "input": "x"}, "pipeline"),
        ({"pipeline": "P\x00", "input": "x"}, "pipeline"),
        ({"pipeline": "P", "input": "x", "status": "completed", "usage": {"inputTokens": 5.0, "outputTokens": 1}}, None),
    ]
    disagreements = []
    for body, fault in bodies:
        document_accepts = not list(validator.iter_errors(body))
        response = client.post(f"{API}/runs", json=body, headers=ada.headers)
        if fault is None:
            assert response.status_code == 201, (body, response.get_data(as_text=True))
        else:
            assert field_names(assert_json_error(response, 422, "validation_failed")) == {fault}, body
        if document_accepts != (fault is None):
            disagreements.append((body, document_accepts, response.get_json()))
    assert not disagreements


def test_a_lone_surrogate_in_a_string_is_refused_not_a_server_error(client: FlaskClient, ada: Caller) -> None:
    before = stored()
    for raw, field in (('{"pipeline": "P\\udade", "input": "x"}', "pipeline"),
                       ('{"pipeline": "P", "input": "x\\ud800"}', "input"),
                       ('{"pipeline": "P", "input": "x", "variables": {"k\\udade": 1}}', "variables")):
        response = client.post(f"{API}/runs", data=raw, content_type="application/json", headers=ada.headers)
        assert field_names(assert_handled(response, 422)) == {field}, raw
    assert stored() == before


def test_a_token_used_only_to_read_records_its_last_use(client: FlaskClient, ada: Caller) -> None:
    assert client.get(f"{API}/runs", headers=ada.headers).status_code == 200

    db.session.rollback()
    token = db.session.execute(sa.select(ApiToken).where(ApiToken.user_id == ada.user_id)).scalar_one()
    assert token.last_used_at is not None


def test_a_cost_too_large_for_the_column_is_a_422_not_a_server_error(client: FlaskClient, ada: Caller) -> None:
    before = stored()
    for body, field in (
        (finished_body(usage={"inputTokens": 1, "outputTokens": 1, "cost": "10000000000000000"}), "usage.cost"),
        (finished_body(steps=[{**three_steps()[0], "cost": "99999999999999999.5"}]), "steps[0].cost"),
    ):
        response = client.post(f"{API}/runs", json=body, headers=ada.headers)
        assert_handled(response, 422)
        assert field_names(response.get_json()) == {field}
    assert stored() == before


def test_outputs_sent_with_a_started_run_are_refused_not_dropped(client: FlaskClient, ada: Caller) -> None:
    before = stored()
    response = client.post(
        f"{API}/runs",
        json={"pipeline": "P", "input": "x", "steps": [], "finalOutput": "f", "usage": {"inputTokens": 1}},
        headers=ada.headers,
    )
    error = assert_json_error(response, 422, "validation_failed")
    assert field_names(error) == {"steps", "finalOutput", "usage"}
    completed_with_error = client.post(
        f"{API}/runs", json={"pipeline": "P", "input": "x", "status": "completed", "error": "why?"}, headers=ada.headers
    )
    assert field_names(assert_json_error(completed_with_error, 422, "validation_failed")) == {"error"}
    assert stored() == before


def test_the_openapi_document_is_public_and_linked_from_the_tokens_page(app: Flask, client: FlaskClient) -> None:
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200 and response.get_json() == openapi.document()
    assert response.get_json()["paths"]["/api/v1/openapi.json"]["get"]["security"] == []
    factories.make_user("reader@example.com")
    log_in(client, "reader@example.com")
    assert f'href="{API}/openapi.json"' in client.get("/settings/tokens").get_data(as_text=True)


def test_the_api_has_no_cookie_session_even_for_a_signed_in_browser(signed_in: FlaskClient, user: Any) -> None:
    """A bearer token authenticates the API and a session cookie never does: its answers neither read
    nor set a cookie nor vary on one, while the pages keep their session."""
    _, clear = tokens.create_token(user, "executor")
    db.session.commit()
    bearer = {"Authorization": f"Bearer {clear}"}

    cookie_only = signed_in.get(f"{API}/runs")
    created = signed_in.post(f"{API}/runs", json={"pipeline": "P", "input": "i"}, headers=bearer)
    listed = signed_in.get(f"{API}/runs", headers=bearer)

    assert_json_error(cookie_only, 401, "unauthorized")
    assert (created.status_code, listed.status_code) == (201, 200)
    for answer in (cookie_only, created, listed):
        assert "cookie" not in answer.headers.get("Vary", "").lower(), answer.headers
        assert "Set-Cookie" not in answer.headers
    page = signed_in.get("/", follow_redirects=True)  # the session still signs the browser in
    assert page.status_code == 200 and user.email in page.get_data(as_text=True)
    assert "cookie" in page.headers.get("Vary", "").lower()
