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
from tests.http_helpers import csrf_from, log_in

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


# --- the web: asked first, then deleted, one run or several ----------------------------------


def test_the_confirmation_says_what_goes_and_deletes_only_when_posted(signed_in: FlaskClient, user: User) -> None:
    first, second = (factories.make_run(user, name=name) for name in ("Alpha brief", "Beta brief"))
    kept = factories.make_run(user, name="Gamma brief")

    asked = signed_in.get("/artifacts/delete", query_string={"id": [first.id, second.id], "back": "status=completed&evil=1"})
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200
    assert "Delete 2 runs for good?" in page and "Alpha brief" in page and "Beta brief" in page
    assert "6 step outputs" in page and "Gamma brief" not in page
    assert 'name="back" value="status=completed"' in page  # only the list's own parameters go back
    assert len(queries.list_runs(user, ListFilters(), None, 10)) == 3  # asking deletes nothing

    done = signed_in.post("/artifacts/delete", data={
        "id": [first.id, second.id], "back": "status=completed", "csrf_token": csrf_from(page)})

    assert done.status_code == 303 and done.headers["Location"] == "/artifacts?status=completed"
    assert [row.id for row in queries.list_runs(user, ListFilters(), None, 10)] == [kept.id]
    assert "Deleted 2 runs." in signed_in.get(done.headers["Location"]).get_data(as_text=True)


def test_htmx_deletes_answer_with_the_rows_to_drop_and_the_totals_to_reload(signed_in: FlaskClient, user: User) -> None:
    run = factories.make_run(user)
    token = csrf_from(signed_in.get("/artifacts").get_data(as_text=True))

    done = signed_in.post("/artifacts/delete", data={"id": run.id, "back": "q=x"},
                          headers={"HX-Request": "true", "X-CSRFToken": token})

    fragment = done.get_data(as_text=True)
    assert done.status_code == 200 and "<html" not in fragment
    assert f'<tr id="run-{run.id}" hx-swap-oob="delete">' in fragment
    assert 'hx-get="/artifacts/totals?q=x"' in fragment and "Deleted 1 run." in fragment


def test_bad_or_foreign_selections_delete_nothing(signed_in: FlaskClient, user: User) -> None:
    mine = factories.make_run(user)
    theirs = factories.make_run(factories.make_user())
    token = csrf_from(signed_in.get("/artifacts").get_data(as_text=True))

    def post(data: dict[str, Any], **headers: str) -> int:
        return signed_in.post("/artifacts/delete", data={"csrf_token": token, **data}, headers=headers).status_code

    assert signed_in.get("/artifacts/delete", query_string={"id": [mine.id, theirs.id]}).status_code == 404
    assert post({"id": [mine.id, theirs.id]}) == 404
    assert post({}) == 400
    assert post({"id": "../etc"}) == 400
    assert post({"id": [f"r{n}" for n in range(101)]}) == 400
    assert signed_in.post("/artifacts/delete", data={"id": mine.id}).status_code == 400  # no CSRF token
    assert len(queries.list_runs(user, ListFilters(), None, 10)) == 1
    assert rows_mentioning(theirs.id)


def test_the_run_page_and_the_list_offer_deletion(signed_in: FlaskClient, user: User) -> None:
    run = factories.make_run(user)
    assert f'href="/artifacts/delete?id={run.id}"' in signed_in.get(f"/artifacts/{run.id}").get_data(as_text=True)
    listed = signed_in.get("/artifacts").get_data(as_text=True)
    assert f'name="id" value="{run.id}" form="selection"' in listed and 'id="selection"' in listed
