"""Full-text search (`q=`): through the real writer, the API list and the web list, on both engines."""

from __future__ import annotations

import random
import re
import string
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from artifacts_app import queries, recording, schemas, search
from artifacts_app.extensions import db
from artifacts_app.filters import ListFilters
from artifacts_app.models import User
from tests import factories
from tests.api_helpers import API, Caller, ada, caller, follow_pages  # noqa: F401 (ada: a fixture)
from tests.factories import make_run, record_many, steps
from tests.http_helpers import log_in

BASE = datetime(2025, 11, 1, 12, tzinfo=timezone.utc)
ROW_LINK = re.compile(r'<a class="row-link" href="/artifacts/([0-9a-f-]{36})">')


@pytest.fixture
def bob(app: Flask) -> Caller:
    return caller("bob@example.com")


def found(client: FlaskClient, who: Caller, q: str, **params: str) -> list[str]:
    """The ids GET /runs?q= lists for `who`, every page, in order."""
    return [run["id"] for page in follow_pages(client, who, q=q, **params) for run in page]


def run_with(user: User, *outputs: str, minutes: int = 0, **fields: Any) -> str:
    """A completed run whose steps output these texts; plain defaults for the rest."""
    values: dict[str, Any] = {
        "input": "plain input", "final_output": "plain final", "name": "plain name",
        "completed_at": BASE + timedelta(minutes=minutes),
    }
    values.update(fields)
    return make_run(user, steps=steps(*outputs), **values).id


# --- what is searched, and for whom ---------------------------------------------------------


def test_a_word_in_one_step_finds_that_run_for_its_owner_only(
    client: FlaskClient, ada: Caller, bob: Caller
) -> None:
    mine = run_with(ada.user(), "notes", "the zephyrine analysis", "draft")
    run_with(ada.user(), "notes", "an analysis", "draft", minutes=1)
    bobs = run_with(bob.user(), "zephyrine too", minutes=2)

    assert found(client, ada, "zephyrine") == [mine]
    assert found(client, bob, "zephyrine") == [bobs]
    assert found(client, ada, "ZEPHYRINE") == [mine]  # case folds
    assert found(client, ada, "nowhere") == []


def test_name_input_final_output_and_a_legacy_runs_output_are_searched(client: FlaskClient, ada: Caller) -> None:
    user = ada.user()
    named = run_with(user, "x", name="Quarterly marmalade review")
    by_input = run_with(user, "x", input="Compare the halibut prices", minutes=1)
    by_final = run_with(user, "x", final_output="Verdict: the pelican wins", minutes=2)
    legacy = recording.record_legacy_run(
        user, pipeline="Old", input="legacy input", final_output="an ancient walrus appears",
        created_at=BASE, completed_at=BASE + timedelta(minutes=3),
    ).id
    db.session.commit()

    assert found(client, ada, "marmalade") == [named]
    assert found(client, ada, "halibut") == [by_input]
    assert found(client, ada, "pelican") == [by_final]
    assert found(client, ada, "walrus") == [legacy]
    assert found(client, ada, "pelicans") == [by_final]  # stemmed, on both engines


def test_phrases_negation_and_or(client: FlaskClient, ada: Caller) -> None:
    user = ada.user()
    ids = {
        "red_apple": run_with(user, "a red apple fell", minutes=0),
        "apple_red": run_with(user, "the apple is red", minutes=1),
        "green_apple": run_with(user, "a green apple", "and a pear", minutes=2),
        "banana": run_with(user, "one banana", minutes=3),
    }

    def names(q: str) -> set[str]:
        listed = found(client, ada, q)
        assert len(listed) == len(set(listed)), q
        return {name for name, run_id in ids.items() if run_id in listed}

    assert names("apple") == {"red_apple", "apple_red", "green_apple"}
    assert names('"red apple"') == {"red_apple"}
    assert names("red apple") == {"red_apple", "apple_red"}
    assert names("apple -red") == {"green_apple"}
    assert names('apple -"red apple"') == {"apple_red", "green_apple"}
    assert names("banana or pear") == {"banana", "green_apple"}
    assert names("banana OR red apple") == {"banana", "red_apple", "apple_red"}
    assert names("apple pear") == {"green_apple"}  # the words may be in different steps of one run
    assert names("-apple") == {"banana"}  # only what a run lacks: every other run
    assert names("banana or -apple") == {"banana"}
    assert names('"red apple') == {"red_apple"}  # an unclosed quote ends with the query


def test_search_combines_with_the_pipeline_tag_and_status_filters(client: FlaskClient, ada: Caller) -> None:
    user = ada.user()
    ids = {
        "brief_tagged": run_with(user, "the kestrel", pipeline="Brief", tags=["birds"]),
        "brief_plain": run_with(user, "a kestrel", pipeline="Brief", minutes=1),
        "other_tagged": run_with(user, "kestrel again", pipeline="Other", tags=["birds"], minutes=2),
        "failed": make_run(user, pipeline="Brief", steps=steps("kestrel down"), status="failed", error="boom",
                           final_output="", completed_at=BASE + timedelta(minutes=3)).id,
        "unrelated": run_with(user, "a sparrow", pipeline="Brief", tags=["birds"], minutes=4),
    }
    running = factories.start_run(user, pipeline="Brief", input="watch the kestrel")
    db.session.commit()
    ids["running"] = running.id

    def names(**params: str) -> set[str]:
        listed = found(client, ada, "kestrel", **params)
        return {name for name, run_id in ids.items() if run_id in listed}

    assert names() == {"brief_tagged", "brief_plain", "other_tagged", "failed", "running"}
    assert names(pipeline="Brief") == {"brief_tagged", "brief_plain", "failed", "running"}
    assert names(tag="birds") == {"brief_tagged", "other_tagged"}
    assert names(pipeline="Brief", tag="birds") == {"brief_tagged"}
    assert names(status="failed") == {"failed"}
    assert names(status="running") == {"running"}
    assert names(status="completed", pipeline="Other") == {"other_tagged"}


def test_the_web_list_searches_too(signed_in: FlaskClient, user: User) -> None:
    wanted = run_with(user, "the ocelot report")
    run_with(user, "nothing here", minutes=1)

    response = signed_in.get("/artifacts", query_string={"q": "ocelot"})

    assert response.status_code == 200
    assert ROW_LINK.findall(response.get_data(as_text=True)) == [wanted]


# --- paging -----------------------------------------------------------------------------------


def test_sixty_matching_runs_page_without_duplicates_or_gaps_newest_first(
    client: FlaskClient, ada: Caller
) -> None:
    user = ada.user()
    matching = record_many(user, 60, same_time=10, steps=[
        {"agentId": "a", "agentName": "A", "output": "quokka sighting", "stepOrder": 0},
    ])
    record_many(user, 5, start=BASE)  # not matching

    listed = follow_pages(client, ada, q="quokka", limit="25")

    assert [len(page) for page in listed] == [25, 25, 10]
    ids = [run["id"] for page in listed for run in page]
    assert sorted(ids) == sorted(matching)
    # Newest first, ties (the ten that completed together) by id, as the list orders.
    times = [(run["completedAt"], run["id"]) for page in listed for run in page]
    assert times == sorted(times, reverse=True)


def test_relevance_orders_by_rank_then_id_and_pages_exactly(client: FlaskClient, ada: Caller) -> None:
    user = ada.user()
    for index in range(60):
        # 1 to 4 mentions: ranks differ, and many runs tie.
        text = " ".join(["lemur"] * (index % 4 + 1) + ["filler words here"] * 3)
        make_run(user, steps=steps(text), name=f"run {index}", completed_at=BASE + timedelta(minutes=index))
    filters = ListFilters(query="lemur", sort="relevance")

    listed = [run["id"] for page in follow_pages(client, ada, q="lemur", sort="relevance", limit="25") for run in page]
    rows = queries.list_runs(user, filters, None, 100)

    assert len(listed) == 60 and len(set(listed)) == 60
    assert listed == [row.id for row in rows]
    keys = [(row.sort_key, row.id) for row in rows]
    assert keys == sorted(keys, reverse=True)
    assert all(isinstance(row.sort_key, Decimal) and row.sort_key == round(row.sort_key, 6) for row in rows)
    assert len({row.sort_key for row in rows}) > 1  # more mentions rank differently


# --- the writer keeps the index -------------------------------------------------------------


def test_a_step_added_to_a_running_run_is_searchable_at_once(client: FlaskClient, ada: Caller) -> None:
    user = ada.user()
    run = factories.start_run(user, pipeline="Live", input="a live run")
    db.session.commit()
    assert found(client, ada, "capybara") == []

    recording.add_step(user, run.id, schemas.parse(schemas.StepIn, steps("first capybara")[0]))
    db.session.commit()
    assert found(client, ada, "capybara") == [run.id]

    recording.add_step(user, run.id, schemas.parse(schemas.StepIn, steps("x", "then a tapir")[1]))
    db.session.commit()
    assert found(client, ada, "tapir") == [run.id]
    assert found(client, ada, "capybara tapir") == [run.id]
    (snippet,) = search.snippets(user, "tapir", [run.id]).values()
    assert snippet.part == "Step 2 · Analyst"

    recording.complete_run(user, run.id, schemas.parse(schemas.RunComplete, {"finalOutput": "the okapi verdict"}))
    db.session.commit()
    for word in ("capybara", "tapir", "okapi"):
        assert found(client, ada, word) == [run.id], word


def test_an_open_run_is_searched_as_one_text_while_its_steps_arrive(
    client: FlaskClient, ada: Caller, engine_name: str
) -> None:
    """A word of the input and one of a posted step match together; a word only in a posted step
    excludes the run from -word; relevance counts posted steps, as it will once the run closes."""
    user = ada.user()
    live = factories.start_run(user, pipeline="Live", input="about the margay")
    closed = run_with(user, "the margay and an ocelot", minutes=1)
    db.session.commit()
    for order, output in enumerate(["a serval", "a serval and a serval", "the caracal"]):
        recording.add_step(user, live.id, schemas.parse(schemas.StepIn, {
            "agentId": "a", "agentName": "A", "output": output, "stepOrder": order,
        }))
        db.session.commit()

    assert found(client, ada, "margay caracal") == [live.id]
    assert found(client, ada, '"the caracal"') == [live.id]
    assert found(client, ada, "margay -serval") == [closed]
    assert found(client, ada, "margay -caracal") == [closed]
    assert set(found(client, ada, "caracal or ocelot")) == {closed, live.id}
    before = {row.id: row.sort_key for row in queries.list_runs(
        user, ListFilters(query="serval", sort="relevance"), None, 10)}

    recording.complete_run(user, live.id, schemas.parse(schemas.RunComplete, {"finalOutput": "done"}))
    db.session.commit()

    after = {row.id: row.sort_key for row in queries.list_runs(
        user, ListFilters(query="serval", sort="relevance"), None, 10)}
    assert list(before) == list(after) == [live.id]
    if engine_name == "postgresql":  # ts_rank depends on the run alone (SQLite's bm25 on every part)
        assert before == after
    assert found(client, ada, "margay -serval") == [closed]


@pytest.mark.postgres_only
def test_posting_a_step_leaves_the_runs_vector_alone_and_closing_folds_it_in(app: Flask, user: User) -> None:
    """The cost of a step post does not grow with the run: the step's words go to a row of their
    own (run_search_pending); the run's vector is computed whole once, when it closes."""
    live = factories.start_run(user, pipeline="Live", input="plain input")
    db.session.commit()

    def vector() -> str:
        return str(db.session.execute(
            sa.text("SELECT search_vector FROM pipeline_runs WHERE id = :id"), {"id": live.id}).scalar())

    def pending() -> list[int]:
        return list(db.session.execute(sa.text(
            "SELECT step_order FROM run_search_pending WHERE run_id = :id ORDER BY step_order"), {"id": live.id},
        ).scalars())

    started = vector()
    for order in range(3):
        recording.add_step(user, live.id, schemas.parse(schemas.StepIn, {
            "agentId": "a", "agentName": "A", "output": f"the jerboa number {order}", "stepOrder": order,
        }))
        db.session.commit()
        assert vector() == started
    assert pending() == [0, 1, 2]
    assert queries.list_runs(user, ListFilters(query="jerboa"), None, 10)[0].id == live.id

    recording.complete_run(user, live.id, schemas.parse(schemas.RunComplete, {"finalOutput": "done"}))
    db.session.commit()

    assert pending() == []
    assert "'jerboa'" in vector()
    assert [row.id for row in queries.list_runs(user, ListFilters(query="jerboa"), None, 10)] == [live.id]


def random_words(chars: int, seed: int) -> str:
    """Random lowercase words of about five letters: mostly unique, the worst case for an index."""
    return "".join(random.Random(seed).choices(string.ascii_lowercase + " " * 5, k=chars))


RARE_LETTERS = [chr(code) for code in range(0x20000, 0x2A6DF)]  # 4 bytes each in UTF-8


def rare_words(chars: int, seed: int) -> str:
    """Unique 50-letter words of 4-byte letters: 100,000 characters of them make about 400 KB of
    tsvector, so three such parts pass its 1 MB limit."""
    rng = random.Random(seed)
    return " ".join("".join(rng.choices(RARE_LETTERS, k=50)) for _ in range(chars // 51))


def test_a_huge_or_adversarial_output_is_recorded_and_searchable_by_its_start(
    client: FlaskClient, ada: Caller
) -> None:
    user = ada.user()
    huge = "aardwolfish " + random_words(5_000_000, seed=1)  # 5 MB
    huge_run = run_with(user, huge, huge, final_output=huge)
    odd_run = run_with(
        user, *(rare_words(100_000, seed) for seed in range(4)),
        input="numbat " + rare_words(100_000, 4), final_output=rare_words(100_000, 5), minutes=1,
    )
    # The same, one step at a time: each step's index is added to the run's.
    live = factories.start_run(user, pipeline="Live", input="plain input")
    for order in range(4):
        output = ("quoll " if order == 0 else "") + rare_words(100_000, 10 + order)
        recording.add_step(user, live.id, schemas.parse(schemas.StepIn, {
            "agentId": "a", "agentName": "A", "output": output, "stepOrder": order,
        }))
    db.session.commit()

    assert found(client, ada, "aardwolfish") == [huge_run]
    assert found(client, ada, "numbat") == [odd_run]
    assert found(client, ada, "quoll") == [live.id]
    (snippet,) = search.snippets(user, "aardwolfish", [huge_run]).values()
    assert "<mark>aardwolfish</mark>" in snippet.html


def test_deleting_a_run_or_its_user_leaves_nothing_in_the_index(app: Flask, engine_name: str) -> None:
    ann, ben = factories.make_user(), factories.make_user()
    gone = run_with(ann, "the wombat")
    kept = run_with(ann, "another wombat", minutes=1)
    bens = [run_with(ben, "wombat of ben", minutes=2), run_with(ben, "wombat again", minutes=3)]

    db.session.execute(sa.text("DELETE FROM pipeline_runs WHERE id = :id"), {"id": gone})
    db.session.delete(ben)
    db.session.commit()

    assert [row.id for row in queries.list_runs(ann, ListFilters(query="wombat"), None, 10)] == [kept]
    if engine_name == "sqlite":
        left = db.session.execute(sa.text("SELECT DISTINCT run_id FROM run_search_parts")).scalars().all()
        assert left == [kept]
        indexed = db.session.execute(sa.text(
            "SELECT p.run_id FROM run_search JOIN run_search_parts AS p ON p.id = run_search.rowid "
            "WHERE run_search MATCH 'wombat'"
        )).scalars().all()
        assert indexed == [kept]
        assert gone not in indexed and not set(bens) & set(indexed)
        # The FTS index agrees with its content table row for row.
        db.session.execute(sa.text("INSERT INTO run_search (run_search, rank) VALUES ('integrity-check', 1)"))


# --- hostile queries --------------------------------------------------------------------------

HOSTILE_QUERIES = [
    '"', '""', '"""', "AND", "OR", "NOT", "or or", "NEAR(", "NEAR(a b)", "*", "a*", "col:", "body:wombat",
    "run_id:x", "^a", "(", ")", "((a)", "a AND", "-", "--", "- -", "-\"", '-"unbalanced', "'", "';--",
    "\\", "%", "_", "{body}: a", "a + b", "a:*", "!a", "a & b", "a | b", "<->", "a <-> b", "\u2603",
    "日本語", "x" * 500, "a " * 250, "-a " * 166, " or ".join("a" * 5 for _ in range(100)), "   ", "\u00a0",
]


@pytest.mark.parametrize("sort", ["newest", "relevance"])
def test_hostile_queries_are_answered_never_a_server_error(
    client: FlaskClient, ada: Caller, sort: str
) -> None:
    user = ada.user()
    wanted = run_with(user, "a wombat and NEAR(it) AND col:x *star* \"quoted\"")
    log_in(client, ada.email)
    for q in HOSTILE_QUERIES:
        response = client.get(f"{API}/runs", query_string={"q": q, "sort": sort}, headers=ada.headers)
        assert response.status_code in (200, 400), (q, response.get_data(as_text=True))
        page = client.get("/artifacts", query_string={"q": q, "sort": sort})
        assert page.status_code in (200, 400), q
        search.snippets(user, q, [wanted])
    # Syntax typed into the box is searched for as words.
    assert found(client, ada, "NEAR(it)") == [wanted]
    assert found(client, ada, "col:x") == [wanted]
    assert found(client, ada, "*star*") == [wanted]


def test_the_query_parser_keeps_fts5_syntax_inside_quoted_strings() -> None:
    assert search.parse('red "big apple" -pear or -"sour plum" kiwi') == [
        [search.Term("red", False), search.Term("big apple", False), search.Term("pear", True)],
        [search.Term("sour plum", True), search.Term("kiwi", False)],
    ]
    assert search.parse("or a or or b or") == [[search.Term("a", False)], [search.Term("b", False)]]
    assert search.parse('* " ( -') == []
    assert search.parse("") == [] and search.parse("   ") == []
    assert search.Term('say "hi"', False).fts() == '"say ""hi"""'
    for q in HOSTILE_QUERIES:
        for group in search.parse(q):
            for term in group:
                body = term.fts()[1:-1]
                assert term.fts().startswith('"') and term.fts().endswith('"')
                assert '"' not in body.replace('""', ""), q


# --- snippets ---------------------------------------------------------------------------------


def test_snippets_name_the_part_that_matched_and_escape_html(app: Flask, user: User) -> None:
    hostile = "the jaguar <script>alert(1)</script> <img src=x onerror=alert(1)> & more"
    in_step = run_with(user, "notes", hostile, "draft")
    in_name = run_with(user, "the jaguar again", name="Jaguar report", minutes=1)
    in_final = run_with(user, "x", final_output="a jaguar verdict", minutes=2)
    in_input = run_with(user, "x", input="find the jaguar", minutes=3)
    without = run_with(user, "x", minutes=4)
    others = run_with(factories.make_user(), "jaguar", minutes=5)

    result = search.snippets(user, "jaguar", [in_step, in_name, in_final, in_input, without, others])

    assert set(result) == {in_step, in_name, in_final, in_input}  # not another user's run
    assert result[in_name].part == "Name"  # the name first, though a step matches too
    assert result[in_final].part == "Final output"
    assert result[in_input].part == "Input"
    step = result[in_step]
    assert step.part == "Step 2 · Analyst"
    assert "<mark>jaguar</mark>" in step.html
    assert "<script" not in step.html and "<img" not in step.html
    # PostgreSQL's headline leaves out what its parser reads as tags; whatever it keeps is text.
    assert "&lt;img" in step.html and "&amp;" in step.html and "alert(1)" in step.html
    assert re.sub(r"</?mark>", "", str(step.html)).count("<") == 0
    assert search.snippets(user, "-jaguar", [without]) == {}


def test_snippets_mark_every_searched_word_and_take_at_most_a_page(app: Flask, user: User) -> None:
    run = run_with(user, "an emu and a kiwi share a nest")
    (snippet,) = search.snippets(user, 'emu or "a kiwi" -penguin', [run]).values()
    # PostgreSQL marks each word of a phrase, SQLite the phrase.
    assert "<mark>emu</mark>" in snippet.html and "kiwi</mark>" in snippet.html
    assert snippet.part == "Step 1 · Researcher"


# --- PostgreSQL: the GIN index serves a search ----------------------------------------------


@pytest.mark.postgres_only
def test_a_search_uses_the_gin_index_for_a_user_with_many_runs(app: Flask, user: User) -> None:
    pipeline = recording.pipeline_for(user, "Bulk")
    db.session.commit()
    # Bulk rows straight in SQL (20,000 runs through the writer would take minutes); one in 5,000
    # holds the searched word.
    db.session.execute(sa.text("""
        INSERT INTO pipeline_runs (id, pipeline_id, user_id, status, input, created_at, completed_at, listed_at,
                                   model, search_vector)
        SELECT gen_random_uuid()::text, :p, :u, 'completed', 'bulk run ' || n || w,
               now() - n * interval '1 minute', now() - n * interval '1 minute', now() - n * interval '1 minute',
               'gpt-4o', to_tsvector('english', 'bulk run ' || n || w)
        FROM generate_series(1, 20000) AS n,
             LATERAL (SELECT CASE WHEN n % 5000 = 0 THEN ' pangolin' ELSE '' END AS w) AS extra
    """), {"p": pipeline.id, "u": user.id})
    db.session.commit()
    db.session.execute(sa.text("ANALYZE pipeline_runs"))

    def plan_of(statement: Any) -> str:
        compiled = statement.compile(db.engine, compile_kwargs={"literal_binds": True})
        return "\n".join(db.session.execute(sa.text(f"EXPLAIN {compiled}")).scalars())

    # The matches come from the GIN index; the page is then those runs, by primary key.
    matching = plan_of(search.first_matches(user, "pangolin"))
    page = plan_of(queries.list_statement(user, ListFilters(query="pangolin"), None, 26))

    assert f"Bitmap Index Scan on {search.SEARCH_INDEX}" in matching, matching
    assert "Seq Scan" not in matching, matching  # the open runs come by the status index
    assert "pk_pipeline_runs" in page and "Seq Scan on pipeline_runs" not in page, page
    assert len(queries.list_runs(user, ListFilters(query="pangolin"), None, 26)) == 4
    # A word in every run: more than FEW_MATCHES, so the page walks the list's index and stops.
    common = plan_of(queries.list_statement(user, ListFilters(query="bulk"), None, 26))
    assert "ix_pipeline_runs_listed" in common, common
    assert len(queries.list_runs(user, ListFilters(query="bulk"), None, 26)) == 26
    # Past psycopg's prepare threshold the search is a prepared statement, and each execution is still
    # planned with its word (extensions.CUSTOM_PLANS): a generic plan cannot tell a rare word from a common one.
    for word in ["pangolin", "bulk"] * 5:
        queries.list_runs(user, ListFilters(query=word), None, 26)
    plans = db.session.execute(sa.text(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%websearch_to_tsquery%'"
    )).all()
    assert all(generic == 0 for generic, _ in plans) and max(custom for _, custom in plans) >= 5, plans
