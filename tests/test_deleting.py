"""Deleting runs: nothing of a deleted run is left in any table or in the render cache, and it
leaves the totals, filter menus, search and the API at once; another user's runs are out of reach."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from artifacts_app import deleting, queries, rendering, rollups
from artifacts_app.extensions import db
from artifacts_app.filters import ListFilters
from artifacts_app.models import RunFacet, RunRollup, User
from tests import factories
from tests.api_helpers import API, Caller, ada, assert_json_error, caller  # noqa: F401 (ada: a fixture)
from tests.http_helpers import log_in

GONE_WORD = "quagga"  # only in the run that is deleted


def rows_mentioning(*needles: str) -> dict[str, int]:
    """Per table, how many rows hold any of these strings in any column (every table in the
    database, the search index's included), cast to text."""
    db.session.rollback()
    inspector = sa.inspect(db.engine)
    found = {}
    for table in inspector.get_table_names():
        columns = [column["name"] for column in inspector.get_columns(table)]
        if not columns:
            continue
        matches = " OR ".join(
            f'CAST("{column}" AS TEXT) LIKE :{index}' for column in columns for index in range(len(needles)))
        values = {str(index): f"%{needle}%" for index, needle in enumerate(needles)}
        count = db.session.execute(sa.text(f'SELECT count(*) FROM "{table}" WHERE {matches}'), values).scalar()
        if count:
            found[table] = count
    return found


def summaries(user: User) -> tuple[list[Any], list[Any]]:
    rollup_rows = db.session.execute(sa.select(
        RunRollup.pipeline_id, RunRollup.model, RunRollup.status, RunRollup.day, RunRollup.runs,
        RunRollup.input_tokens, RunRollup.output_tokens, RunRollup.cost, RunRollup.unpriced_runs,
    ).where(RunRollup.user_id == user.id).order_by(RunRollup.pipeline_id, RunRollup.model, RunRollup.day)).all()
    facet_rows = db.session.execute(sa.select(RunFacet.kind, RunFacet.value, RunFacet.runs).where(
        RunFacet.user_id == user.id).order_by(RunFacet.kind, RunFacet.value)).all()
    return [tuple(row) for row in rollup_rows], [tuple(row) for row in facet_rows]


def test_a_deleted_run_leaves_no_row_anywhere_and_leaves_the_totals_at_once(
    client: FlaskClient, ada: Caller
) -> None:
    user = ada.user()
    kept = factories.make_run(user, tags=["kept"])
    answer = client.post(f"{API}/runs", headers={**ada.headers, "Idempotency-Key": "nightly-1"}, json={
        "pipeline": "Research brief", "input": "about zebras", "model": "claude-sonnet-4-5", "status": "completed",
        "tags": ["only-here"], "metadata": {"env": "prod"},
        "steps": [{"agentId": "a", "agentName": "A", "output": f"the {GONE_WORD} step", "stepOrder": 0}],
        "finalOutput": f"# A {GONE_WORD}", "usage": {"inputTokens": 1000, "outputTokens": 100},
    })
    assert answer.status_code == 201
    gone = answer.get_json()["id"]
    log_in(client, ada.email)
    for tab in ("final", "step-1"):  # rendered, so cached
        assert client.get(f"/artifacts/{gone}?tab={tab}", headers={"HX-Request": "true"}).status_code == 200
    limit = client.application.config["RENDER_LIMIT_BYTES"]
    cached = rendering.cache_key_for(rendering.panel_cache_key(gone, "final", limit), f"# A {GONE_WORD}")
    assert rendering.cache.get(cached) is not None
    assert rows_mentioning(gone, GONE_WORD)  # the check finds what is there

    response = client.delete(f"{API}/runs/{gone}", headers=ada.headers)

    assert (response.status_code, response.data) == (204, b"")
    assert rows_mentioning(gone, GONE_WORD, "only-here", "claude-sonnet-4-5") == {}
    assert rendering.cache.get(cached) is None
    assert_json_error(client.get(f"{API}/runs/{gone}", headers=ada.headers), 404, "not_found")
    assert_json_error(client.delete(f"{API}/runs/{gone}", headers=ada.headers), 404, "not_found")
    assert [row.id for row in queries.list_runs(user, ListFilters(), None, 10)] == [kept.id]
    assert queries.list_runs(user, ListFilters(query=GONE_WORD), None, 10) == []
    totals = queries.run_totals(user, ListFilters())
    assert (totals.runs, totals.input_tokens, totals.cost) == (1, kept.input_tokens, kept.cost)
    before = summaries(user)
    rollups.rebuild(user.id)
    assert summaries(user) == before  # the writer's counts are what a recount gives
    db.session.rollback()
    # The same key makes a new run now: the old one is not replayed.
    again = client.post(f"{API}/runs", headers={**ada.headers, "Idempotency-Key": "nightly-1"}, json={
        "pipeline": "Research brief", "input": "about zebras", "status": "completed", "finalOutput": "new"})
    assert again.status_code == 201 and again.get_json()["id"] != gone


def test_another_users_run_is_a_404_and_stays(client: FlaskClient, ada: Caller) -> None:
    bob = caller("bob@example.com")
    bobs = factories.make_run(bob.user(), final_output=f"bob's {GONE_WORD}")
    before = rows_mentioning(bobs.id)

    assert_json_error(client.delete(f"{API}/runs/{bobs.id}", headers=ada.headers), 404, "not_found")
    assert deleting.delete_runs(ada.user(), [bobs.id, "no-such-run"]) == []
    db.session.commit()

    assert rows_mentioning(bobs.id) == before
    assert client.get(f"{API}/runs/{bobs.id}", headers=bob.headers).status_code == 200


def test_a_running_run_can_be_deleted_and_its_executor_then_gets_404(client: FlaskClient, ada: Caller) -> None:
    run = client.post(f"{API}/runs", headers=ada.headers, json={"pipeline": "Live", "input": "go"}).get_json()
    step = {"agentId": "a", "agentName": "A", "output": "one", "stepOrder": 0}
    assert client.post(f"{API}/runs/{run['id']}/steps", headers=ada.headers, json=step).status_code == 200

    assert client.delete(f"{API}/runs/{run['id']}", headers=ada.headers).status_code == 204

    late = client.post(f"{API}/runs/{run['id']}/steps", headers=ada.headers, json={**step, "stepOrder": 1})
    assert_json_error(late, 404, "not_found")
    assert rows_mentioning(run["id"]) == {}
    assert queries.run_totals(ada.user(), ListFilters()).open_runs == 0


def test_deleting_several_counts_each_out_once(app: Flask, user: User) -> None:
    ids = factories.record_many(user, 5, tags=["batch"])
    deleted = deleting.delete_runs(user, [ids[0], ids[3], ids[3], ids[4]])
    db.session.commit()

    assert sorted(deleted) == sorted([ids[0], ids[3], ids[4]])
    assert {row.id for row in queries.list_runs(user, ListFilters(), None, 10)} == {ids[1], ids[2]}
    _, facets = summaries(user)
    assert ("tag", "batch", 2) in facets
