"""Finding runs (issue 12) below the page: names, tags and metadata through the API; every status in
the list; every sort paging exactly; the filters; and the facets and rollups the writer keeps, which
must always equal a recount from the runs themselves."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from artifacts_app import deleting, queries, recording, rollups, schemas
from artifacts_app.extensions import db
from artifacts_app.filters import ListFilters
from artifacts_app.models import RunFacet, RunRollup, User
from tests import factories
from tests.api_helpers import API, Caller, ada, assert_json_error, caller, follow_pages, stored  # noqa: F401 (fixture)
from tests.factories import make_run, make_user, start_run

BASE = datetime(2025, 11, 1, 12, tzinfo=timezone.utc)


def post_run(client: FlaskClient, who: Caller, **body: Any) -> dict[str, Any]:
    payload = {"pipeline": "Code review", "input": "Review this", "status": "completed", "finalOutput": "ok",
               "model": "gpt-4o", "usage": {"inputTokens": 100, "outputTokens": 10}} | body
    response = client.post(f"{API}/runs", json=payload, headers=who.headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()  # type: ignore[no-any-return]


def listed(client: FlaskClient, who: Caller, **params: Any) -> list[dict[str, Any]]:
    """Every run GET /runs lists for these parameters, following the cursor to the end."""
    return [run for page in follow_pages(client, who, **params) for run in page]


# ---------------------------------------------------------------- names, tags, metadata


def test_a_run_is_called_by_its_given_name_or_its_inputs_first_line(client: FlaskClient, ada: Caller) -> None:
    named = post_run(client, ada, name="  Nightly eval  ")
    unnamed = post_run(client, ada, input="\n\n   Review the pagination code in api/views.py and say what breaks "
                                          "when two pages are loaded at the same time, with examples\nsecond line")
    short = post_run(client, ada, input="Fix the typo")

    assert named["name"] == "Nightly eval"
    assert unnamed["name"] == "Review the pagination code in api/views.py and say what breaks when two pages…"
    assert len(unnamed["name"]) <= 80 and short["name"] == "Fix the typo"
    summaries = {run["id"]: run for run in listed(client, ada)}
    assert summaries[unnamed["id"]]["name"] == unnamed["name"]


def test_tags_and_metadata_are_stored_returned_and_listed(client: FlaskClient, ada: Caller) -> None:
    run = post_run(client, ada, tags=["nightly", " eval ", "nightly"], metadata={"env": "prod", "git.sha": "3f2a9c1"})

    assert run["tags"] == ["nightly", "eval"]  # trimmed, each once, in the order given
    assert run["metadata"] == {"env": "prod", "git.sha": "3f2a9c1"}
    fetched = client.get(f"{API}/runs/{run['id']}", headers=ada.headers).get_json()
    assert (fetched["tags"], fetched["metadata"]) == (run["tags"], run["metadata"])
    [summary] = listed(client, ada)
    assert summary["tags"] == ["nightly", "eval"] and "metadata" not in summary  # the list stays small


def test_a_run_started_with_tags_keeps_them_when_it_completes(client: FlaskClient, ada: Caller) -> None:
    started = client.post(f"{API}/runs", json={"pipeline": "p", "input": "x", "tags": ["live"],
                                               "metadata": {"host": "worker-3"}}, headers=ada.headers).get_json()
    done = client.post(f"{API}/runs/{started['id']}/complete", json={"finalOutput": "done"}, headers=ada.headers)

    assert done.status_code == 200
    assert (done.get_json()["tags"], done.get_json()["metadata"]) == (["live"], {"host": "worker-3"})


@pytest.mark.parametrize("body, field", [
    ({"tags": "nightly"}, "tags"),
    ({"tags": [""]}, "tags[0]"),
    ({"tags": ["a\nb"]}, "tags[0]"),
    ({"tags": ["x" * 65]}, "tags[0]"),
    ({"tags": [f"t{n}" for n in range(21)]}, "tags"),
    ({"tags": [7]}, "tags[0]"),
    ({"metadata": ["env"]}, "metadata"),
    ({"metadata": {"env": 3}}, "metadata.env"),
    ({"metadata": {"bad key": "v"}}, "metadata"),
    ({"metadata": {"k": "v" * 1001}}, "metadata.k"),
    ({"metadata": {f"k{n}": "v" for n in range(51)}}, "metadata"),
    ({"name": ""}, "name"),
    ({"name": "n" * 201}, "name"),
])
def test_bad_names_tags_and_metadata_are_422_and_store_nothing(
    client: FlaskClient, ada: Caller, body: dict[str, Any], field: str
) -> None:
    before = stored()
    response = client.post(f"{API}/runs", json={"pipeline": "p", "input": "x", "status": "completed",
                                                "finalOutput": "", **body}, headers=ada.headers)

    error = assert_json_error(response, 422, "validation_failed")
    assert [fault["field"] for fault in error["fields"]][:1] == [field], error
    assert stored() == before


# ---------------------------------------------------------------- every status, the filters


def seed_statuses(user: User) -> dict[str, str]:
    ids = {
        "done": make_run(user, completed_at=BASE, model="gpt-4o-2024-08-06", tags=["nightly", "eval"],
                         metadata={"env": "prod", "team": "search"}).id,
        "mini": make_run(user, completed_at=BASE + timedelta(hours=1), model="gpt-4o-mini", tags=["nightly"],
                         metadata={"env": "staging"}, pipeline="Triage").id,
        "failed": make_run(user, completed_at=BASE + timedelta(hours=2), status="failed", error="boom",
                           final_output="", model="claude-sonnet-4", tags=["eval"]).id,
        "other": make_run(user, completed_at=BASE + timedelta(hours=3), model="gpt-4o1-preview").id,
    }
    ids["running"] = start_run(user, pipeline="Triage", input="still going", model="gpt-4o").id
    db.session.commit()
    return ids


@pytest.mark.parametrize("params, expected", [
    ({}, ["running", "other", "failed", "mini", "done"]),  # every status, newest listed time first
    ({"status": "running"}, ["running"]),
    ({"status": "failed"}, ["failed"]),
    ({"model": "gpt-4o"}, ["running", "mini", "done"]),  # the family, not gpt-4o1-preview
    ({"model": ["gpt-4o-mini", "claude-sonnet-4"]}, ["failed", "mini"]),
    ({"pipeline": ["Triage", "Research brief"], "status": "completed"}, ["other", "mini", "done"]),
    ({"pipeline": "Triage"}, ["running", "mini"]),
    ({"tag": "nightly"}, ["mini", "done"]),
    ({"tag": ["nightly", "eval"]}, ["done"]),  # every tag must be on the run
    ({"tag": ["nightly", "missing"]}, []),
    ({"meta.env": "prod"}, ["done"]),
    ({"meta.env": "staging", "tag": "nightly"}, ["mini"]),
    ({"meta.env": "prod", "meta.team": "search"}, ["done"]),
    ({"meta.env": "prod", "meta.team": "ads"}, []),
    ({"from": "2025-11-01", "to": "2025-11-01"}, ["other", "failed", "mini", "done"]),
    ({"from": "2025-11-02"}, ["running"]),  # a running run lists by its start: today
    ({"pipeline": "", "model": "", "tag": ""}, ["running", "other", "failed", "mini", "done"]),  # empty = any
])
def test_filters_narrow_the_list_of_every_status(
    client: FlaskClient, ada: Caller, params: dict[str, Any], expected: list[str]
) -> None:
    ids = seed_statuses(ada.user())
    names = {run_id: name for name, run_id in ids.items()}

    runs = listed(client, ada, limit=2, **params)

    assert [names[run["id"]] for run in runs] == expected
    statuses = {names[run["id"]]: run["status"] for run in runs}
    assert all(statuses[name] == ("running" if name == "running" else
                                  "failed" if name == "failed" else "completed") for name in statuses)


def test_a_running_run_lists_without_completion_cost_or_duration(client: FlaskClient, ada: Caller) -> None:
    ids = seed_statuses(ada.user())
    [running] = listed(client, ada, status="running")

    assert running["id"] == ids["running"]
    assert (running["completedAt"], running["cost"], running["usage"]) == (
        None, None, {"inputTokens": None, "outputTokens": None})


# ---------------------------------------------------------------- sorting


def seed_for_sorting(user: User) -> dict[str, tuple[Decimal | None, int, int | None]]:
    """Runs with tied costs, tokens and durations, an unpriced one and a running one; for each id the
    (cost, total tokens, duration in seconds) the sorts order by."""
    specs = [
        # (seconds, input tokens, output tokens, provider cost)
        (30, 100, 10, "0.50"), (30, 100, 10, "0.50"), (30, 100, 10, "0.50"),  # three-way ties
        (90, 50, 5, "0.20"), (5, 1000, 100, "1.25"), (90, 500, 0, "0.20"),
    ]
    expected: dict[str, tuple[Decimal | None, int, int | None]] = {}
    for number, (seconds, tokens_in, tokens_out, cost) in enumerate(specs):
        finished = BASE + timedelta(minutes=number)
        run = make_run(user, completed_at=finished, created_at=finished - timedelta(seconds=seconds),
                       usage={"inputTokens": tokens_in, "outputTokens": tokens_out, "cost": cost})
        expected[run.id] = (Decimal(cost), tokens_in + tokens_out, seconds)
    unpriced = make_run(user, completed_at=BASE + timedelta(minutes=10), created_at=BASE, model="local-llm",
                        usage={"inputTokens": 100, "outputTokens": 10})
    expected[unpriced.id] = (None, 110, 600)
    running = start_run(user, pipeline="p", input="x")
    db.session.commit()
    expected[running.id] = (None, 0, None)
    return expected


@pytest.mark.parametrize("sort", ["newest", "oldest", "cost", "tokens", "duration"])
def test_every_sort_pages_exactly_with_ties(client: FlaskClient, ada: Caller, sort: str) -> None:
    facts = seed_for_sorting(ada.user())

    runs = listed(client, ada, sort=sort, limit=2)

    ids = [run["id"] for run in runs]
    assert sorted(ids) == sorted(facts)  # each run once: no duplicate, no gap
    if sort in ("newest", "oldest"):
        times = [(run["completedAt"] or run["createdAt"], run["id"]) for run in runs]
        assert times == sorted(times, reverse=sort == "newest")
        return
    position = {"cost": 0, "tokens": 1, "duration": 2}[sort]

    def key(run_id: str) -> tuple[Any, str]:
        value = facts[run_id][position]
        return (Decimal(-1) if value is None else value, run_id)  # nothing to sort by: last

    assert ids == sorted(facts, key=key, reverse=True)  # largest first, ties by id (largest first too)


def test_a_sort_is_kept_by_the_cursor_and_a_bad_one_is_a_400(client: FlaskClient, ada: Caller) -> None:
    seed_for_sorting(ada.user())
    first = client.get(f"{API}/runs", query_string={"sort": "cost", "limit": 2}, headers=ada.headers).get_json()

    mismatch = client.get(f"{API}/runs", query_string={"cursor": first["nextCursor"], "sort": "tokens"},
                          headers=ada.headers)

    assert_json_error(mismatch, 400, "bad_request")
    assert_json_error(client.get(f"{API}/runs?sort=price", headers=ada.headers), 400, "bad_request")


# ---------------------------------------------------------------- facets and rollups


def summaries() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Both summary tables as sorted rows (without the rollups' surrogate id)."""
    facets = db.session.execute(sa.select(RunFacet.user_id, RunFacet.kind, RunFacet.value, RunFacet.runs)).all()
    rollup_rows = db.session.execute(sa.select(
        RunRollup.user_id, RunRollup.pipeline_id, RunRollup.model, RunRollup.status, RunRollup.day, RunRollup.runs,
        RunRollup.input_tokens, RunRollup.output_tokens, RunRollup.cost, RunRollup.unpriced_runs,
    )).all()
    return sorted(tuple(row) for row in facets), sorted(tuple(row) for row in rollup_rows)


def every_kind_of_write(user: User) -> None:
    """One of each way runs change: one-shot completed and failed, step by step with the model set at
    completion, left running, a legacy run, an import, and a deletion."""
    make_run(user, completed_at=BASE, tags=["a", "b"])
    make_run(user, completed_at=BASE + timedelta(days=1), status="failed", error="x", final_output="",
             model="claude-sonnet-4", tags=["b"])
    make_run(user, completed_at=BASE + timedelta(days=1), model="local-llm")  # unpriced
    stepped = start_run(user, pipeline="Stepwise", input="in", tags=["c"])
    recording.add_step(user, stepped.id, schemas.StepIn.model_validate(
        {"agentId": "a", "agentName": "A", "output": "one", "stepOrder": 0}))
    recording.complete_run(user, stepped.id, schemas.RunComplete.model_validate(
        {"finalOutput": "done", "model": "gpt-4o-mini", "usage": {"inputTokens": 10, "outputTokens": 1}}))
    start_run(user, pipeline="Stepwise", input="left running", model="gpt-4o", tags=["c"])
    recording.record_legacy_run(user, pipeline="Old", input="legacy", final_output="text",
                                created_at=BASE - timedelta(days=9), completed_at=BASE - timedelta(days=9))
    gone = make_run(user, completed_at=BASE + timedelta(days=2), pipeline="Short-lived", model="gpt-4.1",
                    tags=["only-here"])
    deleting.delete_runs(user, [gone.id])
    db.session.commit()


def test_the_summaries_the_writer_keeps_equal_a_recount_from_the_runs(app: Flask) -> None:
    ada_user, bob = make_user(), make_user()
    every_kind_of_write(ada_user)
    every_kind_of_write(bob)
    kept = summaries()

    rollups.rebuild()
    db.session.commit()

    assert summaries() == kept
    facets = {(kind, value): runs for user_id, kind, value, runs in kept[0] if user_id == ada_user.id}
    assert facets[("tag", "b")] == 2 and facets[("model", "gpt-4o-mini")] == 1
    assert ("tag", "only-here") not in facets and ("pipeline", "Short-lived") not in facets  # left with their run
    assert queries.tag_names(ada_user) == ["a", "b", "c"]
    assert queries.pipeline_names(ada_user) == ["Old", "Research brief", "Stepwise"]


@pytest.mark.parametrize("filters", [
    ListFilters(),
    ListFilters(status="completed"),
    ListFilters(status="running"),
    ListFilters(pipelines=("Stepwise",)),
    ListFilters(models=("gpt-4o",)),
    ListFilters(models=("claude-sonnet-4", "local-llm"), status="failed"),
    ListFilters(listed_from=date(2025, 11, 2), listed_to=date(2025, 11, 2)),
    ListFilters(tags=("b",)),  # not in the rollups: added up over the runs
])
def test_totals_agree_with_the_runs_the_list_shows(app: Flask, filters: ListFilters) -> None:
    user = make_user()
    every_kind_of_write(user)
    make_run(make_user(), completed_at=BASE)  # someone else's never counts

    totals = queries.run_totals(user, filters)

    rows = queries.list_runs(user, filters, None, 1000)
    assert totals.runs == len(rows)
    assert totals.input_tokens == sum(row.input_tokens or 0 for row in rows)
    assert totals.output_tokens == sum(row.output_tokens or 0 for row in rows)
    assert totals.cost == sum((row.cost for row in rows if row.cost is not None), Decimal(0))
    assert totals.unpriced_runs == sum(1 for row in rows if row.cost is None and row.status in ("completed", "failed"))
    assert totals.open_runs == sum(1 for row in rows if row.status in ("pending", "running"))


def test_totals_of_a_day_count_a_run_on_the_day_it_completed(app: Flask) -> None:
    user = make_user()
    run = start_run(user, pipeline="p", input="x", created_at=datetime(2025, 11, 1, 23, 59, tzinfo=timezone.utc))
    db.session.commit()
    first_day = ListFilters(listed_from=date(2025, 11, 1), listed_to=date(2025, 11, 1))
    assert queries.run_totals(user, first_day).open_runs == 1

    recording.complete_run(user, run.id, schemas.RunComplete.model_validate(
        {"finalOutput": "", "completedAt": "2025-11-02T00:01:00Z"}))
    db.session.commit()

    assert queries.run_totals(user, first_day).runs == 0
    assert queries.run_totals(user, ListFilters(listed_from=date(2025, 11, 2))).runs == 1


def test_a_rejected_completion_leaves_the_summaries_as_they_were(client: FlaskClient, ada: Caller) -> None:
    started = client.post(f"{API}/runs", json={"pipeline": "p", "input": "x"}, headers=ada.headers).get_json()
    kept = summaries()

    refused = client.post(f"{API}/runs/{started['id']}/complete",
                          json={"finalOutput": "", "completedAt": "2001-01-01T00:00:00Z"}, headers=ada.headers)

    assert refused.status_code == 422
    db.session.rollback()
    assert summaries() == kept


def test_the_full_page_menus_read_the_facets_not_the_runs(app: Flask) -> None:
    user = make_user()
    factories.record_many(user, 3, models=("gpt-4o", "claude-sonnet-4"))
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        models = queries.model_names(user)
        pipelines = queries.pipeline_names(user)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)

    assert models == ["claude-sonnet-4", "gpt-4o"] and pipelines == ["Research brief"]
    assert statements and not any("pipeline_runs" in statement for statement in statements)


def test_another_users_runs_never_reach_the_summaries_of_mine(client: FlaskClient, ada: Caller) -> None:
    bob = caller("bob@example.com")
    post_run(client, bob, tags=["bobs-tag"], model="bobs-model")

    assert queries.tag_names(ada.user()) == [] and queries.model_names(ada.user()) == []
    assert queries.run_totals(ada.user(), ListFilters()).runs == 0
