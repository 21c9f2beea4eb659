"""A step's own facts through the API: its status, and when it started and ended (given by the
executor, or, for a step posted alone, taken from the server's clock)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from artifacts_app.extensions import db
from tests.api_helpers import API, Caller, ada, assert_json_error, stored  # noqa: F401 (ada: a fixture)
from tests.factories import three_steps


def start(client: FlaskClient, who: Caller) -> dict[str, Any]:
    response = client.post(f"{API}/runs", json={"pipeline": "Code review", "input": "PR #482"}, headers=who.headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def post_step(client: FlaskClient, who: Caller, run_id: str, step: dict[str, Any]) -> Any:
    return client.post(f"{API}/runs/{run_id}/steps", json=step, headers=who.headers)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_step_posted_without_times_ended_on_arrival_and_started_when_the_one_before_ended(
    client: FlaskClient, ada: Caller
) -> None:
    run = start(client, ada)
    received = []
    for step in three_steps()[:2]:
        before = datetime.now(timezone.utc)
        response = post_step(client, ada, run["id"], step)
        assert response.status_code == 200, response.get_data(as_text=True)
        received.append((before, datetime.now(timezone.utc)))

    first, second = client.get(f"{API}/runs/{run['id']}", headers=ada.headers).get_json()["steps"]
    assert moment(first["startedAt"]) == moment(run["createdAt"])  # the first step started with the run
    assert received[0][0] <= moment(first["completedAt"]) <= received[0][1]
    assert moment(second["startedAt"]) == moment(first["completedAt"])
    assert received[1][0] <= moment(second["completedAt"]) <= received[1][1]
    assert first["status"] == second["status"] == "completed"


def test_a_step_keeps_the_times_and_status_it_was_sent_with(client: FlaskClient, ada: Caller) -> None:
    run = start(client, ada)
    step = {**three_steps()[0], "status": "failed",
            "startedAt": "2026-12-02T10:00:00+02:00", "completedAt": "2026-12-02T08:00:03.5Z"}

    response = post_step(client, ada, run["id"], step)

    assert response.status_code == 200, response.get_data(as_text=True)
    [stored_step] = response.get_json()["steps"]
    assert stored_step["status"] == "failed"
    assert (stored_step["startedAt"], stored_step["completedAt"]) == (
        "2026-12-02T08:00:00+00:00", "2026-12-02T08:00:03.500000+00:00")  # the same instants, in UTC


def test_steps_sent_together_without_times_have_unknown_times(client: FlaskClient, ada: Caller) -> None:
    body = {"pipeline": "Code review", "input": "PR #1", "status": "completed", "finalOutput": "ok",
            "steps": [three_steps()[0], {**three_steps()[1], "completedAt": "2026-12-02T08:00:00Z"}]}

    response = client.post(f"{API}/runs", json=body, headers=ada.headers)

    assert response.status_code == 201, response.get_data(as_text=True)
    first, second = response.get_json()["steps"]
    assert "startedAt" not in first and "completedAt" not in first  # unknown, not invented
    assert second["completedAt"] == "2026-12-02T08:00:00+00:00" and "startedAt" not in second


def test_a_step_that_ends_before_it_starts_or_has_another_status_is_a_422_and_stores_nothing(
    client: FlaskClient, ada: Caller
) -> None:
    run = start(client, ada)
    before = stored()

    backwards = post_step(client, ada, run["id"], {
        **three_steps()[0], "startedAt": "2026-12-02T08:00:05Z", "completedAt": "2026-12-02T08:00:00Z"})
    unknown = post_step(client, ada, run["id"], {**three_steps()[0], "status": "skipped"})
    not_a_time = post_step(client, ada, run["id"], {**three_steps()[0], "startedAt": "yesterday"})

    error = assert_json_error(backwards, 422, "validation_failed")
    assert error["fields"] == [{"field": "completedAt", "message": "must not be before startedAt"}]
    error = assert_json_error(unknown, 422, "validation_failed")
    assert error["fields"] == [{"field": "status", "message": 'must be "completed" or "failed"'}]
    assert assert_json_error(not_a_time, 422, "validation_failed")["fields"][0]["field"] == "startedAt"
    assert stored() == before


@pytest.mark.postgres_only
def test_posting_a_step_rewrites_neither_the_run_s_other_steps_nor_their_outputs(
    client: FlaskClient, ada: Caller
) -> None:
    """ctid is a row version's place in the table: an UPDATE of a step would move it."""
    run = start(client, ada)
    for step in three_steps()[:2]:
        assert post_step(client, ada, run["id"], step).status_code == 200

    def versions() -> list[tuple[int, str]]:
        db.session.rollback()
        return [tuple(row) for row in db.session.execute(sa.text(  # type: ignore[misc]
            "SELECT step_order, ctid::text FROM pipeline_run_steps WHERE run_id = :id ORDER BY step_order"
        ), {"id": run["id"]})]

    before = versions()
    assert post_step(client, ada, run["id"], three_steps()[2]).status_code == 200

    after = versions()
    assert after[:2] == before and [order for order, _ in after] == [0, 1, 2]
