"""Ingestion under load: what one POST /api/v1/runs costs the database, and POST /api/v1/runs/batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from artifacts_app import recording, rollups
from artifacts_app.extensions import db
from artifacts_app.models import ApiToken, PipelineRun
from artifacts_app.schemas import MAX_BATCH_RUNS
from artifacts_app.types import utcnow
from tests.api_helpers import API, Caller, ada, assert_json_error, caller, stored  # noqa: F401
from tests.test_deleting import summaries


def finished(number: int, **fields: Any) -> dict[str, Any]:
    """A completed 5-step run with usage on every step (priced by the server)."""
    return {"pipeline": "Loader", "input": f"input {number}", "status": "completed", "model": "gpt-4o",
            "steps": [{"agentId": f"agent-{order}", "agentName": f"Agent {order}", "output": f"step {order} of {number}",
                       "stepOrder": order, "inputTokens": 100, "outputTokens": 20} for order in range(5)],
            "finalOutput": f"output {number}", "tags": ["load"], **fields}


@contextmanager
def listening(target: Any, **handlers: Callable[..., None]) -> Iterator[None]:
    """SQLAlchemy event handlers on `target` (by event name) while inside."""
    for name, handler in handlers.items():
        sa.event.listen(target, name, handler)
    try:
        yield
    finally:
        for name, handler in handlers.items():
            sa.event.remove(target, name, handler)


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement sent while inside, and (as "COMMIT") every commit."""
    sent: list[str] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(" ".join(statement.split()))

    def on_commit(conn: Any) -> None:
        sent.append("COMMIT")

    with listening(db.engine, before_cursor_execute=on_execute, commit=on_commit):
        yield sent


def test_a_one_shot_run_is_one_insert_of_the_finished_row_in_one_transaction(
    client: FlaskClient, ada: Caller, engine_name: str
) -> None:
    first = client.post(f"{API}/runs", json=finished(0), headers=ada.headers)  # its pipeline and last use exist now
    assert first.status_code == 201
    # Written again once its pipeline was made: its steps once each.
    first_steps = client.get(f"{API}/runs/{first.get_json()['id']}", headers=ada.headers).get_json()["steps"]
    assert [step["output"] for step in first_steps] == [f"step {order} of 0" for order in range(5)]

    with statements() as sent:
        response = client.post(f"{API}/runs", json=finished(1), headers=ada.headers)

    assert response.status_code == 201, response.get_data(as_text=True)
    # The token with its user; the run (its pipeline read by the same statement, its search vector
    # computed in it on PostgreSQL); its 5 steps; the summaries (one rollup row, the facets).
    # On PostgreSQL all but the token are one statement, in the function record_new_runs.
    expected = ["SELECT api_tokens", "SELECT written_id, written_pipeline_id FROM record_new_runs(", "COMMIT"]
    if engine_name == "sqlite":
        expected = ["BEGIN IMMEDIATE", "SELECT", "INSERT INTO pipeline_runs", "INSERT INTO pipeline_run_steps",
                    "INSERT INTO run_search_parts", "INSERT INTO run_rollups", "INSERT INTO run_facets", "COMMIT"]
        assert sum("FROM pipelines" in statement for statement in sent) == 1  # inside the run's INSERT
    assert [next(start for start in expected if statement.startswith(start)) for statement in sent] == expected, sent
    assert not any(statement.startswith("UPDATE") for statement in sent)  # one version of the row
    # The answer was built from what was written, and is what a read gives back.
    fetched = client.get(f"{API}/runs/{response.get_json()['id']}", headers=ada.headers).get_json()
    assert response.get_json() == fetched
    # gpt-4o's price: 500 tokens in at $2.50 and 100 out at $10 per million.
    assert fetched["cost"] == "0.002250000000" and fetched["usage"] == {"inputTokens": 500, "outputTokens": 100}


def in_transaction(conn: Any) -> bool:
    """Whether a statement about to be sent on this connection goes inside a transaction: on psycopg,
    one is open already or the driver will send BEGIN first (it does unless in autocommit)."""
    driver = conn.connection.dbapi_connection
    return not getattr(driver, "autocommit", False)


@contextmanager
def transactions() -> Iterator[list[tuple[str, bool]]]:
    """Each statement sent while inside (its first words), and whether it went inside a transaction."""
    sent: list[tuple[str, bool]] = []

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append((" ".join(statement.split()[:3]), in_transaction(conn)))

    with listening(db.engine, before_cursor_execute=on_execute):
        yield sent


@pytest.mark.postgres_only
def test_a_one_shot_run_without_a_key_is_sent_without_begin_and_commit_and_with_one_in_a_transaction(
    client: FlaskClient, ada: Caller
) -> None:
    """On PostgreSQL the run is one statement, whole by itself, so without an Idempotency-Key the
    request runs in autocommit: two round trips (the token, the run) instead of four. With a key,
    the run and its key are written in one transaction. Either way the connection goes back to the
    pool as it was: the step-by-step writes after it are transactions again."""
    first = client.post(f"{API}/runs", json=finished(0), headers=ada.headers)  # makes the pipeline
    assert first.status_code == 201

    with transactions() as unkeyed:
        alone = client.post(f"{API}/runs", json=finished(1), headers=ada.headers)
    with transactions() as keyed:
        with_key = client.post(f"{API}/runs", json=finished(2), headers={**ada.headers, "Idempotency-Key": "k-2"})
    with transactions() as started:
        opened = client.post(f"{API}/runs", json={"pipeline": "Loader", "input": "open"}, headers=ada.headers)
    with transactions() as step:
        added = client.post(f"{API}/runs/{opened.get_json()['id']}/steps",
                            json={"agentId": "a", "agentName": "A", "output": "o", "stepOrder": 0},
                            headers=ada.headers)

    assert (alone.status_code, with_key.status_code, opened.status_code, added.status_code) == (201, 201, 201, 200)
    assert [statement for statement, _ in unkeyed] == ["SELECT api_tokens.id, api_tokens.token_hash,",
                                                       "SELECT written_id, written_pipeline_id"]
    assert not any(inside for _, inside in unkeyed), unkeyed
    assert any(statement.startswith("INSERT INTO idempotency_keys") for statement, _ in keyed), keyed
    assert all(inside for _, inside in keyed), keyed
    assert not any(inside for _, inside in started), started  # a start is one statement too
    assert step and all(inside for _, inside in step), step
    listed = client.get(f"{API}/runs", headers=ada.headers).get_json()["runs"]
    assert sorted((run["id"], run["status"]) for run in listed) == sorted(
        [(first.get_json()["id"], "completed"), (alone.get_json()["id"], "completed"),
         (with_key.get_json()["id"], "completed"), (opened.get_json()["id"], "running")])
    steps = client.get(f"{API}/runs/{opened.get_json()['id']}", headers=ada.headers).get_json()["steps"]
    assert [step["output"] for step in steps] == ["o"]


def test_a_post_without_a_well_formed_bearer_token_is_refused_without_asking_the_database(
    client: FlaskClient, ada: Caller
) -> None:
    """A missing, foreign or malformed token is a 401 without a connection taken from the pool: such a
    request neither waits for the database nor gets a 503 while it is away. A well-formed one is looked up."""
    before = stored()
    checkouts: list[object] = []

    def on_checkout(*_: Any) -> None:
        checkouts.append(1)

    with listening(db.engine.pool, checkout=on_checkout):
        for headers in ({}, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer junk"},
                        {"Authorization": "Bearer "}, {"Authorization": "Bearer junk", "Idempotency-Key": "k"}):
            for path in ("/runs", "/runs/batch"):
                assert_json_error(client.post(f"{API}{path}", json=finished(0), headers=headers), 401, "unauthorized")
        assert checkouts == []
        unknown = client.post(f"{API}/runs", json=finished(0), headers={"Authorization": "Bearer art_unknown"})
        assert_json_error(unknown, 401, "unauthorized")
        assert checkouts
    assert stored() == before


def test_last_used_at_is_written_once_a_minute_with_a_writes_own_transaction(
    client: FlaskClient, ada: Caller
) -> None:
    def last_used() -> Any:
        db.session.rollback()
        return db.session.execute(sa.select(ApiToken.last_used_at)).scalar_one()

    assert last_used() is None
    with statements() as sent:
        assert client.get(f"{API}/runs", headers=ada.headers).status_code == 200  # a read
    first = last_used()
    assert first is not None and sum(s.startswith("UPDATE api_tokens") for s in sent) == 1
    assert sent.count("COMMIT") == 1

    with statements() as sent:
        assert client.get(f"{API}/runs", headers=ada.headers).status_code == 200
        assert client.post(f"{API}/runs", json={"pipeline": ""}, headers=ada.headers).status_code == 422
    assert not any(s.startswith("UPDATE") for s in sent) and last_used() == first

    db.session.execute(sa.update(ApiToken).values(last_used_at=utcnow() - timedelta(minutes=2)))
    db.session.commit()
    before = stored()
    refused = client.post(f"{API}/runs", json={"pipeline": ""}, headers=ada.headers)  # a failed request counts too
    assert refused.status_code == 422
    assert last_used() > first and stored() == before


def test_a_batch_records_each_run_as_post_runs_would_and_answers_for_each(
    client: FlaskClient, ada: Caller
) -> None:
    once = client.post(f"{API}/runs", json=finished(9), headers={**ada.headers, "Idempotency-Key": "k-9"})
    assert once.status_code == 201
    single_refusal = client.post(f"{API}/runs", json=finished(5, steps=[{"stepOrder": 0}]), headers=ada.headers)
    runs = [
        finished(0, idempotencyKey="k-0"),
        finished(5, steps=[{"stepOrder": 0}]),  # refused: the same faults as POST /runs names
        finished(9, idempotencyKey="k-9"),  # the run POST /runs recorded with this key
        finished(0, idempotencyKey="k-0"),  # the first run of this batch again
        finished(3, idempotencyKey="k-9"),  # a key used for another run
        {"pipeline": "Loader", "input": "started", "model": "gpt-4o"},  # a start
        finished(4, pipeline="Other", status="failed", error="timeout", finalOutput=None),
        "not a run",
    ]
    runs[6].pop("finalOutput")

    response = client.post(f"{API}/runs/batch", json={"runs": runs}, headers=ada.headers)

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    results = body["results"]
    assert [result["status"] for result in results] == [201, 422, 200, 200, 409, 201, 201, 422]
    assert [result["index"] for result in results] == list(range(len(runs)))
    assert (body["created"], body["replayed"], body["failed"]) == (3, 2, 3)
    assert results[1]["fields"] == single_refusal.get_json()["fields"] and results[1]["error"] == "validation_failed"
    assert results[2]["id"] == once.get_json()["id"] and results[3]["id"] == results[0]["id"]
    assert results[7]["fields"] == [{"field": "body", "message": "must be a JSON object"}]
    for result in (results[0], results[5], results[6]):
        fetched = client.get(f"{API}/runs/{result['id']}", headers=ada.headers).get_json()
        assert fetched["url"] == result["url"]
    assert client.get(f"{API}/runs/{results[0]['id']}", headers=ada.headers).get_json()["cost"] == "0.002250000000"
    statuses = {run["id"]: run["status"] for run in client.get(f"{API}/runs", headers=ada.headers).get_json()["runs"]}
    assert sorted(statuses.values()) == ["completed", "completed", "failed", "running"]
    # A retry of the whole batch records nothing twice.
    again = client.post(f"{API}/runs/batch", json={"runs": [runs[0], runs[2]]}, headers=ada.headers).get_json()
    assert [(r["status"], r["id"]) for r in again["results"]] == [(200, results[0]["id"]), (200, results[2]["id"])]


def test_a_bad_batch_envelope_is_a_422_and_stores_nothing(client: FlaskClient, ada: Caller) -> None:
    before = stored()
    for envelope in ({"runs": [finished(n) for n in range(MAX_BATCH_RUNS + 1)]}, {"runs": []}, {"runs": {}},
                     [finished(0)], {"runs": [finished(0)], "more": 1}, {}):
        response = client.post(f"{API}/runs/batch", json=envelope, headers=ada.headers)
        error = assert_json_error(response, 422, "validation_failed")
        assert error["fields"][0]["field"] == "runs"
    assert "at most 500 runs" in client.post(
        f"{API}/runs/batch", json={"runs": [finished(n) for n in range(MAX_BATCH_RUNS + 1)]}, headers=ada.headers
    ).get_json()["fields"][0]["message"]
    assert_json_error(client.post(f"{API}/runs/batch", data="{", headers={**ada.headers,
                                  "Content-Type": "application/json"}), 400)
    assert_json_error(client.post(f"{API}/runs/batch", json={"runs": [finished(0)]}), 401)
    assert stored() == before


def test_a_full_batch_is_one_transaction_of_a_few_statements(client: FlaskClient, ada: Caller) -> None:
    with statements() as sent:
        response = client.post(f"{API}/runs/batch", json={"runs": [
            finished(n, pipeline=f"P{n % 3}", idempotencyKey=f"key-{n}") for n in range(MAX_BATCH_RUNS)
        ]}, headers=ada.headers)
    assert response.status_code == 200 and response.get_json()["created"] == MAX_BATCH_RUNS
    assert sent.count("COMMIT") == 1
    assert len(sent) < 20, sent
    db.session.rollback()
    assert db.session.execute(sa.select(sa.func.count()).select_from(PipelineRun)).scalar_one() == MAX_BATCH_RUNS
    other = caller("grace@example.com")
    assert client.get(f"{API}/runs", headers=other.headers).get_json()["runs"] == []


@pytest.mark.parametrize("key", ["k" * 256, "tab\there", "é"])
def test_a_bad_idempotency_key_is_refused_alike_as_a_header_and_as_a_batch_field(
    client: FlaskClient, ada: Caller, key: str
) -> None:
    before = stored()
    header = client.post(f"{API}/runs", json=finished(1), headers={**ada.headers, "Idempotency-Key": key})
    assert assert_json_error(header, 422, "validation_failed")["fields"] == [
        {"field": "Idempotency-Key", "message": "must be 1 to 255 printable ASCII characters"}]
    batch = client.post(f"{API}/runs/batch", json={"runs": [finished(1, idempotencyKey=key)]}, headers=ada.headers)
    (result,) = batch.get_json()["results"]
    assert result["status"] == 422
    assert [fault["message"] for fault in result["fields"]] == ["must be 1 to 255 printable ASCII characters"]
    assert stored() == before


def test_the_summaries_of_runs_recorded_alone_and_in_batches_are_what_a_recount_gives(
    client: FlaskClient, ada: Caller
) -> None:
    """The writer counts new runs into the summaries itself (on PostgreSQL in SQL, in the run's own
    statement): every kind of run, alone and in a batch, in new and known pipelines, counts as a
    recount from the runs says."""
    # The rollup day is the UTC day a run finished (its list time), not the day it started.
    started, late = "2026-11-02T23:59:00+00:00", "2026-11-03T00:00:00.500000+00:00"
    kinds = [
        finished(0),
        finished(1, model=None, tags=["b", "a", "Zed", "zed", "émoji 🎉", "a-b"]),  # no model: unpriced
        finished(2, model="no-such-model", createdAt=started, completedAt=late),  # unpriced
        finished(3, status="failed", error="boom", pipeline="Fails"),
        finished(4, steps=None, usage={"inputTokens": 10, "outputTokens": 5, "cost": "0.125"}, pipeline="Billed"),
        {"pipeline": "Started", "input": "still going", "model": "gpt-4o", "tags": ["open"]},
    ]
    kinds[3].pop("finalOutput")
    kinds[4].pop("steps")
    for body in kinds:
        assert client.post(f"{API}/runs", json=body, headers=ada.headers).status_code == 201
    batch = [dict(body, pipeline=f"{body['pipeline']} {n % 3}") for n, body in enumerate(kinds * 4)] + kinds
    response = client.post(f"{API}/runs/batch", json={"runs": batch}, headers=ada.headers)
    assert response.get_json()["created"] == len(batch)

    counted = summaries(ada.user())
    rollup_rows, facet_rows = counted
    assert sum(row[4] for row in rollup_rows) == len(kinds) * 6  # every run counted once
    assert sum(row[8] for row in rollup_rows) == 2 * 6  # no model, unknown model
    # 6 × ($0.00225 twice for gpt-4o's 600 tokens, $0.125 billed by the provider)
    assert sum(row[7] for row in rollup_rows) == Decimal("0.777")
    assert {row[3].isoformat() for row in rollup_rows if row[1] == "no-such-model"} == {"2026-11-03"}
    assert {("model", "gpt-4o", 24), ("tag", "émoji 🎉", 6), ("tag", "load", 24), ("tag", "open", 6),
            ("pipeline", "Fails 0", 4), ("pipeline", "Started", 2)} <= set(facet_rows)
    rollups.rebuild(ada.user_id)
    assert summaries(ada.user()) == counted


ODD_TEXTS = ['quote " and \\ backslash', "'; DROP TABLE pipeline_runs; --", "{\"finalOutput\": 1}", "\u2028 line\u2029sep",
             "emoji 🎉 and é", "tab\tnewline\n", "%(user_id)s :user_id $1 ?", "x" * 300_000]


def test_odd_text_and_values_are_stored_exactly_alone_and_in_a_batch(client: FlaskClient, ada: Caller) -> None:
    """Everything a run holds goes to the database as sent, whatever it looks like (on PostgreSQL
    inside one JSON parameter): what a read gives back is what was sent."""
    def odd(number: int) -> dict[str, Any]:
        return finished(
            number, name=ODD_TEXTS[number % 7], input=ODD_TEXTS[(number + 1) % 8], finalOutput=ODD_TEXTS[7],
            tags=ODD_TEXTS[:3], metadata={"key.1": ODD_TEXTS[1], "b:2": "🎉"},
            variables={"quoted": ODD_TEXTS[0], "number": 2.5, "null": None, "yes": True},
            steps=[{"agentId": ODD_TEXTS[o], "agentName": ODD_TEXTS[o + 1], "output": ODD_TEXTS[6 - o], "stepOrder": o,
                    "inputTokens": 7, "outputTokens": 3, "model": "gpt-4o-mini",
                    "startedAt": "2026-11-01T10:00:00.123456+02:00", "completedAt": "2026-11-01T08:00:01Z"}
                   for o in range(4)],
            createdAt="2026-11-01T07:59:00Z", completedAt="2026-11-01T08:00:02.5Z")

    alone = client.post(f"{API}/runs", json=odd(1), headers=ada.headers)
    assert alone.status_code == 201, alone.get_data(as_text=True)
    batch = client.post(f"{API}/runs/batch", json={"runs": [odd(n) for n in range(2, 6)]}, headers=ada.headers)
    ids = [alone.get_json()["id"], *(result["id"] for result in batch.get_json()["results"])]
    for number, run_id in enumerate(ids, start=1):
        sent = odd(number)
        got = client.get(f"{API}/runs/{run_id}", headers=ada.headers).get_json()
        assert got["name"] == sent["name"].strip()  # a name is trimmed
        assert (got["input"], got["finalOutput"]) == (sent["input"], sent["finalOutput"])
        assert (got["tags"], got["metadata"], got["variables"]) == (sent["tags"], sent["metadata"], sent["variables"])
        assert [(s["agentId"], s["agentName"], s["output"]) for s in got["steps"]] == [
            (s["agentId"], s["agentName"], s["output"]) for s in sent["steps"]]
        assert got["steps"][0]["startedAt"] == "2026-11-01T08:00:00.123456+00:00"  # kept to the microsecond, in UTC
        assert got["createdAt"] == "2026-11-01T07:59:00+00:00" and got["completedAt"] == "2026-11-01T08:00:02.500000+00:00"
        # gpt-4o-mini per step: 7 tokens in at $0.15 and 3 out at $0.60 per million, four steps.
        assert got["steps"][0]["cost"] == "0.000002850000" and got["cost"] == "0.000011400000"
    found = client.get(f"{API}/runs", query_string={"q": "emoji"}, headers=ada.headers).get_json()["runs"]
    assert len(found) == len(ids)  # the search vector was written for each (a step's output says emoji)


@pytest.mark.postgres_only
def test_the_database_function_that_writes_new_runs_is_the_apps_statement(app: Flask) -> None:
    """record_new_runs (migration 0011) runs what recording.new_runs_function_body says today: a
    change of the tables or the summaries that the function does not follow fails here, until a
    migration replaces it. It keeps one generic plan a session (its SET clause), while the session
    plans every other statement with its values."""
    source, settings = db.session.execute(sa.text(
        "SELECT prosrc, proconfig FROM pg_proc WHERE proname = 'record_new_runs'")).one()
    assert source.split() == recording.new_runs_function_body().split()
    assert settings == ["plan_cache_mode=force_generic_plan"]
    assert db.session.execute(sa.text("SHOW plan_cache_mode")).scalar_one() == "force_custom_plan"


def test_absent_variables_and_metadata_are_stored_as_the_orm_stores_them(client: FlaskClient, ada: Caller) -> None:
    """No variables is JSON null and no metadata or tags SQL NULL, alone and in a batch, as a run the
    ORM writes (on PostgreSQL the writer builds the row from a JSON document, where the two nulls
    are one): what filters and exports read stays the same for every run."""
    bare = {"pipeline": "Bare", "input": "x", "status": "completed", "finalOutput": "y"}
    alone = client.post(f"{API}/runs", json=bare, headers=ada.headers).get_json()["id"]
    batched = client.post(f"{API}/runs/batch", json={"runs": [bare]}, headers=ada.headers).get_json()
    by_orm = recording.record_from_values(ada.user(), pipeline="Bare", input="x", final_output="y").id
    db.session.commit()
    stored = db.session.execute(sa.text(
        "SELECT id, variables IS NULL, metadata IS NULL, tags IS NULL, artifact_data IS NULL FROM pipeline_runs"
    )).all()
    nulls = {run_id: tuple(flags) for run_id, *flags in stored}
    assert nulls[alone] == nulls[batched["results"][0]["id"]] == nulls[by_orm] == (False, True, True, False)


def test_numbers_and_a_providers_cost_are_stored_exactly_alone_and_in_a_batch(client: FlaskClient, ada: Caller) -> None:
    """Numbers in variables come back as sent (integers past 64 bits, tiny and huge floats), and a
    cost the provider reports to the 12th place is kept to it: on PostgreSQL they travel inside one
    JSON document, written by another serializer than the one that reads them back."""
    variables = {"big": 10**30, "negative": -(10**40), "tiny": 1.5e-300, "huge": 1e16, "half": 0.5, "zero": 0}

    def sent(number: int) -> dict[str, Any]:
        run = finished(number, variables=variables)
        run["steps"][0] = {**run["steps"][0], "usage": {"inputTokens": 100, "outputTokens": 20,
                                                         "cost": "0.000000000001"}}
        return run

    alone = client.post(f"{API}/runs", json=sent(1), headers=ada.headers).get_json()["id"]
    batch = client.post(f"{API}/runs/batch", json={"runs": [sent(2)]}, headers=ada.headers).get_json()
    for run_id in (alone, batch["results"][0]["id"]):
        got = client.get(f"{API}/runs/{run_id}", headers=ada.headers).get_json()
        assert got["variables"] == variables
        # The other four steps priced at gpt-4o's $2.50 and $10 per million: 100 in and 20 out each.
        assert got["steps"][0]["cost"] == "0.000000000001" and got["cost"] == "0.001800000001"


def test_the_new_runs_document_holds_money_and_times_to_their_columns_checks() -> None:
    """What the writer sends goes through the same checks the ORM applies: money to 12 places and
    below the column's limit, times with a time zone (and in UTC)."""
    values = {"cost": Decimal("0.5"), "started_at": utcnow().astimezone(timezone(timedelta(hours=2))),
              "completed_at": None, "output": "x"}
    checked = recording.database_values(values, recording.STEP_CHECKED)
    assert checked["cost"] == Decimal("0.5") and str(checked["cost"]) == "0.500000000000"
    assert checked["started_at"].utcoffset() == timedelta(0) and checked["started_at"] == values["started_at"]
    assert values["cost"].as_tuple().exponent == -1  # the row itself is left as it was
    with pytest.raises(ValueError, match="more than 12 decimal places"):
        recording.database_values({**values, "cost": Decimal("0.0000000000001")}, recording.STEP_CHECKED)
    with pytest.raises(ValueError, match="does not fit"):
        recording.database_values({**values, "cost": Decimal("1000000")}, recording.STEP_CHECKED)
    with pytest.raises(ValueError, match="timezone-aware"):
        recording.database_values({**values, "started_at": datetime(2026, 1, 1)}, recording.STEP_CHECKED)
