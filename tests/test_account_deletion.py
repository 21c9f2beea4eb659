"""Deleting one's account from the settings: the page says what goes, the password is asked for (a
wrong one deletes nothing), and then nothing of the user is left in any table, the search index or
the render cache; their API token gets 401, their other sessions end, they cannot sign in again."""

from __future__ import annotations

import re
from decimal import Decimal

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from artifacts_app import queries, recording, rendering, schemas, throttle, tokens
from artifacts_app.extensions import db
from artifacts_app.filters import ListFilters
from artifacts_app.models import CostReprice, CostRepriceRun, Pipeline, PipelineRun, User
from tests import factories
from tests.api_helpers import API, Caller, ada, caller  # noqa: F401 (ada: a fixture)
from tests.http_helpers import browser, csrf_token, is_login_redirect, log_in, post_login
from tests.test_deleting import rows_mentioning

GONE_WORD = "quagga"  # only in the runs of the account deleted
KEPT_WORD = "okapi"  # only in the other user's run


def index_holds(word: str) -> int:
    """How many entries of the full-text index hold this word: on SQLite the FTS5 index's own
    vocabulary (not the parts table it indexes), on PostgreSQL the runs' vectors and the pending steps'."""
    db.session.rollback()
    with db.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocabulary USING fts5vocab(main, run_search, row)")
            found = connection.exec_driver_sql(
                "SELECT coalesce(sum(doc), 0) FROM temp.vocabulary WHERE term = ?", (word,)).scalar_one()
            connection.exec_driver_sql("DROP TABLE temp.vocabulary")
            return int(found)
        query = "to_tsquery('english', :word)"
        return int(connection.execute(sa.text(
            f"SELECT (SELECT count(*) FROM pipeline_runs WHERE search_vector @@ {query})"
            f" + (SELECT count(*) FROM run_search_pending WHERE vector @@ {query})"), {"word": word}).scalar_one())


def fill_account(client: FlaskClient, who: Caller) -> dict[str, list[str]]:
    """Everything a user may have: runs (one open, with a step pending in the search index), their
    steps, an Idempotency-Key, tags and metadata, cached renders, a reprice record, a revoked token,
    failed sign-ins, a retention setting. What names it, per kind."""
    user = who.user()
    answer = client.post(f"{API}/runs", headers={**who.headers, "Idempotency-Key": "nightly-1"}, json={
        "pipeline": "Zoo brief", "input": f"about the {GONE_WORD}", "model": "gpt-4o", "status": "completed",
        "tags": ["zoo-only"], "metadata": {"zoo": "yes"},
        "steps": [{"agentId": "a", "agentName": "A", "output": f"the {GONE_WORD} step", "stepOrder": 0}],
        "finalOutput": f"# A {GONE_WORD}", "usage": {"inputTokens": 1000, "outputTokens": 100},
    })
    assert answer.status_code == 201, answer.get_json()
    finished = answer.get_json()["id"]
    open_run = factories.start_run(user, pipeline="Zoo live", input="still going")
    recording.add_step(user, open_run.id, schemas.parse(schemas.StepIn, {
        "agentId": "a", "agentName": "A", "output": f"a pending {GONE_WORD}", "stepOrder": 0}))
    legacy = factories.make_run(user, final_output=f"legacy {GONE_WORD}").id
    reprice = CostReprice(prices_fingerprint="f" * 64, runs_considered=1, runs_changed=1,
                          total_before=Decimal("1"), total_after=Decimal("2"))
    db.session.add(reprice)
    db.session.flush()
    db.session.add(CostRepriceRun(run_id=legacy, reprice_id=reprice.id, cost_before=Decimal("1"),
                                  cost_after=Decimal("2"), cost_source_before="computed", cost_source_after="computed"))
    user.retention_days = 30
    revoked, _ = tokens.create_token(user, "old laptop")
    tokens.revoke(revoked)
    db.session.commit()
    assert post_login(browser(client.application), who.email, "wrong password").status_code == 200  # a failure row
    log_in(client, who.email)
    for tab in ("final", "step-1"):  # rendered, so cached
        assert client.get(f"/artifacts/{finished}?tab={tab}", headers={"HX-Request": "true"}).status_code == 200
    db.session.rollback()
    return {
        "runs": queries.run_ids(user),
        "pipelines": list(db.session.execute(sa.select(Pipeline.id).where(Pipeline.user_id == user.id)).scalars()),
        "tokens": [token.id for token in queries.tokens_for_user(user)]
                  + [token.token_hash for token in queries.tokens_for_user(user)],
        "user": [user.id, user.email, user.session_token, throttle.email_key(user.email),
                 throttle.pair_key(user.email, "127.0.0.1")],
    }


def every_needle(names: dict[str, list[str]]) -> list[str]:
    return [needle for needles in names.values() for needle in needles] + [GONE_WORD, "zoo-only", "Zoo brief"]


def test_a_deleted_account_leaves_nothing_of_it_anywhere(app: Flask, client: FlaskClient, ada: Caller) -> None:
    other = caller("grace@example.com")
    kept_run = factories.make_run(other.user(), final_output=f"an {KEPT_WORD}", tags=["grace-only"]).id
    names = fill_account(client, ada)
    assert len(names["runs"]) == 3
    needles = every_needle(names)
    before = rows_mentioning(*needles)
    # The check sees what is there: each kind of row the account has.
    assert {"users", "api_tokens", "pipelines", "pipeline_runs", "pipeline_run_steps", "idempotency_keys",
            "run_facets", "run_rollups", "cost_reprice_runs", "login_failures"} <= set(before)
    assert index_holds(GONE_WORD) >= 2 and index_holds(KEPT_WORD) == 1
    limit = app.config["RENDER_LIMIT_BYTES"]
    finished = next(run_id for run_id in names["runs"]
                    if db.session.get(PipelineRun, run_id).final_output == f"# A {GONE_WORD}")  # type: ignore[union-attr]
    cached = rendering.cache_key_for(rendering.panel_cache_key(finished, "final", limit), f"# A {GONE_WORD}")
    assert rendering.cache.get(cached) is not None
    elsewhere = browser(app)  # another session of the same user, on another device
    log_in(elsewhere, ada.email)
    grace_before = rows_mentioning(other.user_id, kept_run, KEPT_WORD, "grace-only")

    page = client.get("/settings/account/delete").get_data(as_text=True)
    assert re.search(r"<li>3 runs, with their inputs, steps and outputs</li>", page)
    assert "<li>3 pipelines</li>" in page
    assert "<li>2 API tokens\n" in page and "(1 still working: pipelines using it stop at once)" in page

    response = client.post("/settings/account/delete",
                           data={"csrf_token": csrf_token(client, "/settings/account/delete"), "password": factories.PASSWORD})

    assert (response.status_code, response.headers["Location"]) == (303, "/login")
    login_page = client.get("/login").get_data(as_text=True)
    assert f"The account {ada.email} and everything in it were deleted." in login_page
    # Every table of the models is among those walked, and the search index's own tables with them.
    walked = set(sa.inspect(db.engine).get_table_names())
    assert set(db.metadata.tables) <= walked
    assert ({"run_search", "run_search_parts"} if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
            else {"run_search_pending"}) <= walked
    assert rows_mentioning(*needles) == {}
    assert index_holds(GONE_WORD) == 0
    assert rendering.cache.get(cached) is None
    # The rest of the world is as it was.
    assert rows_mentioning(other.user_id, kept_run, KEPT_WORD, "grace-only") == grace_before
    assert index_holds(KEPT_WORD) == 1
    assert [row.id for row in queries.list_runs(other.user(), ListFilters(), None, 10)] == [kept_run]
    assert db.session.execute(sa.select(sa.func.count()).select_from(CostReprice)).scalar_one() == 1
    # The user is gone for every way in.
    api = client.get(f"{API}/runs", headers=ada.headers)
    assert api.status_code == 401
    assert is_login_redirect(elsewhere.get("/artifacts"))
    assert is_login_redirect(client.get("/artifacts"))
    again = post_login(browser(app), ada.email)
    assert again.status_code == 200 and factories.LOGIN_FAILED_MESSAGE in again.get_data(as_text=True)
    assert db.session.execute(sa.select(User).where(User.email == ada.email)).scalar_one_or_none() is None


def test_a_wrong_or_missing_password_deletes_nothing(app: Flask, client: FlaskClient, ada: Caller) -> None:
    names = fill_account(client, ada)
    needles = [needle for kind in ("runs", "pipelines", "tokens") for needle in names[kind]] + [ada.user_id]
    before = rows_mentioning(*needles)
    token = csrf_token(client, "/settings/account/delete")

    wrong = client.post("/settings/account/delete", data={"csrf_token": token, "password": "not my password"})
    missing = client.post("/settings/account/delete", data={"csrf_token": token, "password": ""})
    forged = client.post("/settings/account/delete", data={"password": factories.PASSWORD})

    assert wrong.status_code == 422
    assert "That password is incorrect. Nothing was deleted." in wrong.get_data(as_text=True)
    assert missing.status_code == 422 and "This field is required." in missing.get_data(as_text=True)
    assert forged.status_code == 400
    assert rows_mentioning(*needles) == before
    assert client.get(f"{API}/runs", headers=ada.headers).status_code == 200
    assert client.get("/artifacts").status_code == 200  # still signed in


def test_the_pages_are_private(app: Flask, ada: Caller) -> None:
    stranger = browser(app)
    assert is_login_redirect(stranger.get("/settings/account/delete"))
    token = csrf_token(stranger)
    assert is_login_redirect(stranger.post("/settings/account/delete",
                                           data={"csrf_token": token, "password": factories.PASSWORD}))
    assert db.session.get(User, ada.user_id) is not None
