"""`flask runs reap`: open runs whose executor went quiet are marked failed with a message saying so,
their steps kept and priced; active, fresh and finished runs are left alone; --user narrows it;
--dry-run writes nothing; an executor that comes back gets the API's 409."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from artifacts_app import queries, reaping, recording, rollups, schemas
from artifacts_app.extensions import db
from artifacts_app.filters import ListFilters
from artifacts_app.models import PipelineRun, User
from artifacts_app.pricing import calculate_cost
from tests.api_helpers import API, Caller, ada, assert_json_error  # noqa: F401 (ada: a fixture)
from tests.factories import make_user, record_many, start_run
from tests.http_helpers import log_in
from tests.test_deleting import summaries

NOW = datetime.now(timezone.utc)
WORD = "pangolin"  # only in the abandoned run's steps
MESSAGE = "Abandoned: no activity for 2h; marked failed by `flask runs reap`"
TOKENS = (1000, 200)  # each step's usage


def open_run(user: User, *, started: datetime, step_ends: tuple[datetime, ...] = (), model: str = "gpt-4o") -> str:
    """A committed running run that started then and posted a step ending at each of `step_ends`
    (with its times, as an executor may send them), each step with its own usage."""
    run = start_run(user, pipeline="Nightly", input="nightly research", model=model, created_at=started.isoformat())
    begun = started
    for order, ended in enumerate(step_ends):
        recording.add_step(user, run.id, schemas.parse(schemas.StepIn, {
            "agentId": f"agent-{order}", "agentName": f"Agent {order}", "stepOrder": order,
            "output": f"step {order} saw a {WORD}", "startedAt": begun.isoformat(), "completedAt": ended.isoformat(),
            "inputTokens": TOKENS[0], "outputTokens": TOKENS[1],
        }))
        begun = ended
    db.session.commit()
    return run.id


def stored(run_id: str) -> PipelineRun:
    db.session.rollback()
    run = db.session.get(PipelineRun, run_id)
    assert run is not None
    return run


def reap(runner: FlaskCliRunner, *args: str) -> Any:
    result = runner.invoke(args=["runs", "reap", *args])
    db.session.rollback()
    return result


def everything(user: User) -> dict[str, tuple[Any, ...]]:
    """Each of the user's runs as its page and the API would describe it."""
    db.session.rollback()
    rows = db.session.execute(sa.select(
        PipelineRun.id, PipelineRun.status, PipelineRun.error, PipelineRun.cost, PipelineRun.completed_at,
        PipelineRun.input_tokens, PipelineRun.listed_at,
    ).where(PipelineRun.user_id == user.id)).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_a_quiet_open_run_is_failed_with_its_steps_priced_and_the_rest_stay(
    app: Flask, runner: FlaskCliRunner, user: User
) -> None:
    started = NOW - timedelta(hours=5)
    quiet = open_run(user, started=started, step_ends=(started + timedelta(minutes=2), started + timedelta(minutes=7)))
    never_stepped = open_run(user, started=NOW - timedelta(hours=3))
    fresh = open_run(user, started=NOW - timedelta(minutes=10))
    # Started long ago, but its executor posted a step a few minutes back: it is alive.
    busy = open_run(user, started=NOW - timedelta(hours=9), step_ends=(NOW - timedelta(minutes=5),))
    finished = record_many(user, 2, start=NOW - timedelta(days=3))
    finished_failed = recording.record_from_values(
        user, pipeline="Nightly", input="x", status="failed", error="RateLimitError", model="gpt-4o",
        created_at=NOW - timedelta(days=2), completed_at=NOW - timedelta(days=2)).id
    db.session.commit()
    before = everything(user)

    dry = reap(runner, "--older-than", "2h", "--dry-run")

    assert dry.exit_code == 0, dry.output
    assert "Dry run: 2 abandoned runs would be marked failed (everyone's; no activity since" in dry.output
    assert "nothing was written" in dry.output
    assert everything(user) == before

    done = reap(runner, "--older-than", "2h", "--batch-size", "1")

    assert done.exit_code == 0, done.output
    assert "Marked 2 abandoned runs failed (everyone's; no activity since" in done.output
    after = everything(user)
    assert {run_id for run_id in before if after[run_id] != before[run_id]} == {quiet, never_stepped}
    for run_id in (fresh, busy):
        assert after[run_id][0] == "running"
    for run_id in (*finished, finished_failed):
        assert after[run_id] == before[run_id]

    run = stored(quiet)
    assert (run.status, run.error) == ("failed", MESSAGE)
    # It ended when it was last heard from, not when it was reaped: its duration is true.
    assert run.completed_at == started + timedelta(minutes=7)
    assert [(step.step_order, step.output) for step in run.steps] == [(0, f"step 0 saw a {WORD}"),
                                                                      (1, f"step 1 saw a {WORD}")]
    step_cost = calculate_cost("gpt-4o", *TOKENS, at=run.completed_at, table=recording.price_table())
    assert step_cost is not None and step_cost > 0
    assert (run.input_tokens, run.output_tokens, run.cost, run.cost_source) == (
        2 * TOKENS[0], 2 * TOKENS[1], 2 * step_cost, "computed")
    silent = stored(never_stepped)
    assert (silent.status, silent.error, silent.steps) == ("failed", MESSAGE, [])
    assert silent.completed_at == silent.created_at and silent.cost_source == "unpriced"
    # The list's totals and menus are what a recount of the runs gives.
    kept = summaries(user)
    rollups.rebuild(user.id)
    assert summaries(user) == kept
    db.session.rollback()
    totals = queries.run_totals(user, ListFilters(status="failed"))
    assert (totals.runs, totals.cost) == (3, 2 * step_cost)
    # Still found by its steps' words, now as a closed run (its vector holds them on PostgreSQL).
    assert [row.id for row in queries.list_runs(user, ListFilters(query=WORD, status="failed"), None, 10)] == [quiet]
    if db.engine.dialect.name == "postgresql":
        assert db.session.execute(sa.text("SELECT count(*) FROM run_search_pending WHERE run_id = :id"),
                                  {"id": quiet}).scalar() == 0

    again = reap(runner, "--older-than", "2h")
    assert "Marked 0 abandoned runs failed" in again.output


def test_the_page_of_a_reaped_run_says_it_failed_and_stops_watching(client: FlaskClient, user: User) -> None:
    started = NOW - timedelta(days=2)
    run_id = open_run(user, started=started, step_ends=(started + timedelta(minutes=1),))
    log_in(client, user.email)
    watching = client.get(f"/artifacts/{run_id}").get_data(as_text=True)
    assert 'hx-trigger="every' in watching  # the check below can see polling

    result = client.application.test_cli_runner().invoke(args=["runs", "reap", "--older-than", "1d"])
    assert "Marked 1 abandoned run failed" in result.output, result.output

    page = client.get(f"/artifacts/{run_id}").get_data(as_text=True)
    assert '<span class="badge badge-failed">failed</span>' in page
    assert "This run failed" in page and "Abandoned: no activity for 1d; marked failed by `flask runs reap`" in page
    assert 'id="tab-step-1"' in page and "Agent 0" in page  # the step that ran is still a tab
    assert "hx-trigger" not in page
    # A page left open on it gets the end from its next poll, and polls no more.
    live = client.get(f"/artifacts/{run_id}/live?steps=1", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "The run failed." in live and "hx-trigger" not in live


def test_user_narrows_it_and_bad_ages_are_usage_errors(app: Flask, runner: FlaskCliRunner, user: User) -> None:
    mine = open_run(user, started=NOW - timedelta(days=30))
    other = make_user("other@example.com")
    theirs = open_run(other, started=NOW - timedelta(days=30))

    for age in ("2", "h", "0h", "-2h", "1.5h", "2 hours", "3m"):
        result = reap(runner, "--older-than", age)
        assert result.exit_code == 2 and "is not an age" in result.output, age
    assert reap(runner).exit_code == 2  # --older-than is required
    unknown = reap(runner, "--older-than", "2h", "--user", "nobody@example.com")
    assert unknown.exit_code == 1 and "No user with email nobody@example.com" in unknown.output
    assert {stored(mine).status, stored(theirs).status} == {"running"}

    narrowed = reap(runner, "--older-than", "2w", "--user", user.email)

    assert f"Marked 1 abandoned run failed ({user.email}'s;" in narrowed.output
    assert (stored(mine).status, stored(mine).error) == ("failed", "Abandoned: no activity for 2w; marked failed by "
                                                                    "`flask runs reap`")
    assert stored(theirs).status == "running"


def test_the_executor_coming_back_to_a_reaped_run_gets_409(client: FlaskClient, ada: Caller) -> None:
    user = ada.user()
    run_id = open_run(user, started=NOW - timedelta(hours=4))
    client.application.test_cli_runner().invoke(args=["runs", "reap", "--older-than", "2h"])
    step = {"agentId": "late", "agentName": "Late", "stepOrder": 0, "output": "too late"}

    assert_json_error(client.post(f"{API}/runs/{run_id}/steps", headers=ada.headers, json=step), 409)
    assert_json_error(client.post(f"{API}/runs/{run_id}/complete", headers=ada.headers,
                                  json={"finalOutput": "done at last"}), 409)
    run = stored(run_id)
    assert (run.status, run.error, run.steps) == ("failed", MESSAGE, [])


def waiting_on_a_lock() -> int:
    """How many other sessions of this database are waiting for a lock (PostgreSQL)."""
    with db.engine.connect() as connection:
        return int(connection.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )).scalar_one())


def test_an_executor_completing_while_a_batch_holds_its_run_waits_then_gets_409(client: FlaskClient, ada: Caller
                                                                                ) -> None:
    user = ada.user()
    run_id = open_run(user, started=NOW - timedelta(hours=4))
    answers: list[int] = []

    ids, failed = reaping.fail_batch(NOW - timedelta(hours=2), MESSAGE, None)  # its transaction still open
    assert (ids, failed) == ([run_id], 1)
    executor = threading.Thread(target=lambda: answers.append(client.post(
        f"{API}/runs/{run_id}/complete", headers=ada.headers, json={"finalOutput": "made it"}).status_code))
    executor.start()
    deadline = time.monotonic() + 5
    if db.engine.dialect.name == "postgresql":
        while waiting_on_a_lock() == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert waiting_on_a_lock() == 1  # the executor's write is held up by the batch's row lock
    else:
        time.sleep(0.3)  # SQLite: the request waits for the write lock (its busy timeout)
    assert answers == []
    db.session.commit()
    executor.join(timeout=20)

    assert answers == [409]
    run = stored(run_id)
    assert (run.status, run.error, run.final_output) == ("failed", MESSAGE, None)
    kept = summaries(user)
    rollups.rebuild(user.id)
    assert summaries(user) == kept


def executor_writing(app: Flask, user_id: str, run_id: str, action: str, holding: threading.Event,
                     release: threading.Event) -> None:
    """An executor's write in its own session, held open until `release`: a step arriving now, or
    the run's completion. Its transaction holds the run (PostgreSQL: the row; SQLite: the write lock)."""
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None
        if action == "step":
            recording.add_step(user, run_id, schemas.parse(schemas.StepIn, {
                "agentId": "late", "agentName": "Late", "stepOrder": 0, "output": "still here"}))
        else:
            recording.complete_run(user, run_id, schemas.parse(schemas.RunComplete, {"finalOutput": "made it"}))
        holding.set()
        release.wait(timeout=10)
        db.session.commit()
        db.session.remove()


@pytest.mark.parametrize("action", ["step", "complete"])
def test_a_run_its_executor_is_writing_at_that_moment_is_the_executors(
    app: Flask, runner: FlaskCliRunner, user: User, action: str
) -> None:
    busy = open_run(user, started=NOW - timedelta(hours=4))
    # Another user's, so its summary rows are not the ones the executor's write holds.
    other = make_user("other@example.com")
    idle = open_run(other, started=NOW - timedelta(hours=4))
    holding, release = threading.Event(), threading.Event()
    executor = threading.Thread(target=executor_writing, args=(app, user.id, busy, action, holding, release))
    executor.start()
    assert holding.wait(timeout=10)
    threading.Timer(0.5, release.set).start()  # the executor's write ends half a second from now

    began = time.monotonic()
    result = reap(runner, "--older-than", "2h")
    took = time.monotonic() - began
    executor.join(timeout=20)

    assert result.exit_code == 0 and "Marked 1 abandoned run failed" in result.output, result.output
    if db.engine.dialect.name == "postgresql":
        assert took < 0.5  # the run being written was skipped, not waited for
    else:
        assert took >= 0.5  # SQLite: the batch waited for the executor's write lock, then read what it wrote
    run = stored(busy)
    if action == "step":
        assert (run.status, [step.output for step in run.steps]) == ("running", ["still here"])
    else:
        assert (run.status, run.error, run.final_output) == ("completed", None, "made it")
    assert stored(idle).status == "failed"
    kept = summaries(user), summaries(other)
    rollups.rebuild()
    assert (summaries(user), summaries(other)) == kept


@pytest.mark.engine_agnostic
def test_the_message_names_the_age_as_given(app: Flask) -> None:
    assert [reaping.age_text(timedelta(**{unit: n})) for unit, n in
            (("hours", 2), ("hours", 36), ("days", 3), ("days", 14), ("weeks", 1))] == ["2h", "36h", "3d", "2w", "1w"]
