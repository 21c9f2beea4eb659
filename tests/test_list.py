"""The artifact list: keyset pages, htmx fragments, totals, filters, exports and caching headers."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from artifacts_app import queries, recording, schemas
from artifacts_app.artifacts import exports
from artifacts_app.extensions import db
from artifacts_app.models import User
from tests.factories import T0, make_run, make_user, record_many, start_run
from tests.http_helpers import log_in

HX = {"HX-Request": "true"}
ROW_LINK = re.compile(r'<a class="row-link" href="/artifacts/([0-9a-f-]{36})">')
NEXT = re.compile(r'id="load-more"[^>]*hx-get="([^"]+)"')


# Each order of the list, straight from the database: the sort-key column and its direction.
ORDERS = {
    "newest": "listed_at DESC, id DESC",
    "oldest": "listed_at ASC, id ASC",
    "cost": "sort_cost DESC, id DESC",
    "tokens": "total_tokens DESC, id DESC",
    "duration": "sort_duration_ms DESC, id DESC",
    "relevance": "listed_at DESC, id DESC",  # without a search, relevance is newest first
}


def newest_first(user: User, sort: str = "newest") -> list[str]:
    """Every run id of the user (any status) in the list's order, straight from the database."""
    rows = db.session.execute(
        sa.text(f"SELECT id FROM pipeline_runs WHERE user_id = :u ORDER BY {ORDERS[sort]}"),
        {"u": user.id},
    ).scalars()
    return list(rows)


def page_ids(html: str) -> list[str]:
    return ROW_LINK.findall(html)


def next_url(html: str) -> str | None:
    found = NEXT.search(html)
    return found.group(1).replace("&amp;", "&") if found else None


def scroll_all(client: FlaskClient, first_url: str = "/artifacts") -> tuple[list[str], int]:
    """Load the page, then follow the sentinel with htmx requests to the end; ids and fragment count."""
    response = client.get(first_url)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    ids, fragments = page_ids(html), 0
    url = next_url(html)
    while url:
        response = client.get(url, headers=HX)
        assert response.status_code == 200
        fragment = response.get_data(as_text=True)
        assert "<html" not in fragment and "<tr" in fragment  # rows, never a whole page
        ids += page_ids(fragment)
        fragments += 1
        url = next_url(fragment)
    return ids, fragments


def test_every_run_appears_once_newest_first_even_with_identical_times(
    signed_in: FlaskClient, user: User
) -> None:
    record_many(user, 130, same_time=60)
    ids, fragments = scroll_all(signed_in)
    assert len(ids) == 130 and len(set(ids)) == 130
    assert ids == newest_first(user)
    assert fragments == 5  # 25 on the page, then 105 in fragments of 25


def test_a_run_completing_between_pages_causes_no_duplicate_and_no_gap(signed_in: FlaskClient, user: User) -> None:
    record_many(user, 40)
    first = signed_in.get("/artifacts").get_data(as_text=True)
    before = page_ids(first)
    # A new run completes while the person reads page 1: it is newer than everything shown.
    record_many(user, 1, start=T0 + timedelta(days=30))
    rest = signed_in.get(next_url(first), headers=HX).get_data(as_text=True)
    after = page_ids(rest)
    assert len(before) == 25 and len(after) == 15
    assert not set(before) & set(after)
    assert before + after == newest_first(user)[1:]  # everything but the newcomer, in order


def test_page_size_and_limit(signed_in: FlaskClient, user: User) -> None:
    record_many(user, 30)
    assert len(page_ids(signed_in.get("/artifacts").get_data(as_text=True))) == 25
    assert len(page_ids(signed_in.get("/artifacts?limit=100").get_data(as_text=True))) == 30
    assert len(page_ids(signed_in.get("/artifacts?limit=7").get_data(as_text=True))) == 7
    # "²", "①" and Arabic-Indic digits pass str.isdigit() but not int(): they were a 500.
    for bad in ("0", "101", "-1", "ten", "1.5", "²", "①", "٣", "0007", " 7"):
        response = signed_in.get("/artifacts", query_string={"limit": bad})
        assert response.status_code == 400, bad
        assert "limit" in response.get_data(as_text=True)


@pytest.mark.parametrize("cursor", ["garbage", "", "e30", "eyJ0IjoiMjAyNSJ9.AAAA"])
def test_a_malformed_or_tampered_cursor_is_400(signed_in: FlaskClient, user: User, cursor: str) -> None:
    record_many(user, 30)
    real = next_url(signed_in.get("/artifacts").get_data(as_text=True))
    assert real is not None
    tampered = real[:-3] + ("AAA" if not real.endswith("AAA") else "BBB")
    for url in (f"/artifacts?cursor={cursor}" if cursor else None, tampered):
        if url is None:
            continue
        response = signed_in.get(url)
        assert response.status_code == 400
        assert "cursor" in response.get_data(as_text=True)
        fragment = signed_in.get(url, headers=HX)
        assert fragment.status_code == 400 and "<html" not in fragment.get_data(as_text=True)


def test_filters_combine_and_survive_paging(signed_in: FlaskClient, user: User) -> None:
    wanted = record_many(user, 30, model="claude-haiku-4-5", pipeline="Code review")
    record_many(user, 20, model="claude-haiku-4-5", pipeline="Research brief")
    record_many(user, 20, model="gpt-4o", pipeline="Code review")
    failed = record_many(user, 5, model="claude-haiku-4-5", pipeline="Code review", status="failed", error="boom",
                         start=T0 + timedelta(days=1))
    # Every status by default: the failed runs are there too, newest first.
    ids, _ = scroll_all(signed_in, "/artifacts?model=claude-haiku-4-5&pipeline=Code+review")
    assert ids == newest(failed) + newest(wanted)
    only_failed, _ = scroll_all(signed_in, "/artifacts?model=claude-haiku-4-5&pipeline=Code+review&status=failed")
    assert only_failed == newest(failed)
    completed, _ = scroll_all(signed_in, "/artifacts?model=claude-haiku-4-5&pipeline=Code+review&status=completed")
    assert completed == newest(wanted)
    # "all", the default's earlier name, still works.
    everything, _ = scroll_all(signed_in, "/artifacts?pipeline=Code+review&status=all&model=claude-haiku-4-5")
    assert everything == ids


def newest(ids: list[str]) -> list[str]:
    """record_many's ids (oldest first, a minute apart) in the default order."""
    return list(reversed(ids))


def test_a_cursor_keeps_its_filters_and_refuses_contradicting_ones(signed_in: FlaskClient, user: User) -> None:
    record_many(user, 30, model="gpt-4o-mini")
    record_many(user, 30, model="gpt-4o", start=T0 + timedelta(days=1))
    html = signed_in.get("/artifacts?model=gpt-4o-mini").get_data(as_text=True)
    url = next_url(html)
    assert url is not None and "model" not in url.split("cursor=")[0]
    page_two = signed_in.get(url).get_data(as_text=True)  # a plain "Load more" click, no filter params
    assert len(page_ids(page_two)) == 5
    assert 'name="model" value="gpt-4o-mini" checked' in page_two  # the full page shows the filter in force
    assert 'name="model" value="gpt-4o" >' in page_two
    assert signed_in.get(url + "&model=gpt-4o").status_code == 400


def test_date_range_includes_the_whole_end_day(signed_in: FlaskClient, user: User) -> None:
    record_many(user, 3, start=datetime(2025, 3, 1, 23, 59, 59, 999999, tzinfo=timezone.utc))
    ids = page_ids(signed_in.get("/artifacts?from=2025-03-01&to=2025-03-01").get_data(as_text=True))
    assert len(ids) == 1
    assert len(page_ids(signed_in.get("/artifacts?from=2025-03-02").get_data(as_text=True))) == 2
    assert signed_in.get("/artifacts?from=2025-03-05&to=2025-03-01").status_code == 400
    assert signed_in.get("/artifacts?from=March").status_code == 400
    assert signed_in.get("/artifacts?status=deleted").status_code == 400


def test_htmx_gets_fragments_and_a_reload_gets_the_page(signed_in: FlaskClient, user: User) -> None:
    record_many(user, 30)
    page = signed_in.get("/artifacts?model=gpt-4o")
    html = page.get_data(as_text=True)
    assert "<html" in html and 'id="artifact-results"' in html and "<form" in html
    assert "HX-Request" in page.headers["Vary"]
    assert page.headers["Cache-Control"] == "no-store"
    results = signed_in.get("/artifacts?model=gpt-4o", headers=HX)
    fragment = results.get_data(as_text=True)
    assert "<html" not in fragment and fragment.strip().startswith('<section id="artifact-results"')
    assert "HX-Request" in results.headers["Vary"] and results.headers["Cache-Control"] == "no-store"
    # A history restore asks with HX-History-Restore-Request: it must get the whole page.
    restore = signed_in.get("/artifacts?model=gpt-4o", headers={**HX, "HX-History-Restore-Request": "true"})
    assert "<html" in restore.get_data(as_text=True)


def test_the_sentinel_loads_on_reveal_and_works_without_javascript(signed_in: FlaskClient, user: User) -> None:
    record_many(user, 26)
    html = signed_in.get("/artifacts").get_data(as_text=True)
    sentinel = re.search(r'<tr id="load-more"[^>]*>.*?</tr>', html, re.S).group(0)
    assert 'hx-trigger="revealed"' in sentinel and 'hx-swap="outerHTML"' in sentinel
    link = re.search(r'<a href="([^"]+)">Load more</a>', sentinel).group(1).replace("&amp;", "&")
    assert link.startswith("/artifacts?") and "cursor=" in link
    last = signed_in.get(link)
    assert "<html" in last.get_data(as_text=True) and len(page_ids(last.get_data(as_text=True))) == 1
    assert "That is every run" in last.get_data(as_text=True)


def test_rows_show_what_a_person_reads(signed_in: FlaskClient, user: User) -> None:
    make_run(user, model="gpt-4o", usage={"inputTokens": 12345, "outputTokens": 950},
             completed_at=datetime.now(timezone.utc) - timedelta(hours=3))
    make_run(user, model="llama-local", usage={"inputTokens": 5, "outputTokens": 5})
    html = signed_in.get("/artifacts").get_data(as_text=True)
    assert 'title="12,345 tokens">12.3K<' in html
    assert 'title="950 tokens">950<' in html
    # 12,345 × $2.50/M + 950 × $10.00/M, exact in the title, two decimals on screen.
    assert 'title="$0.040362500000">$0.04<' in html
    assert "3 hours ago" in html and re.search(r'<time datetime="\d{4}-\d\d-\d\dT', html)
    assert "42 s" in html  # make_run's runs take 42 seconds
    assert "unpriced" in html
    # A run is called by its name (by default its input's first line); its pipeline is beside it.
    assert re.findall(r'class="row-link"[^>]*>([^<]+)<', html) == ["Summarise solid-state batteries"] * 2
    assert re.findall(r'<td class="pipeline"[^>]*>([^<]+)<', html) == ["Research brief"] * 2
    assert "Completed / started" in html


def test_totals_count_unpriced_runs_apart(signed_in: FlaskClient, user: User) -> None:
    make_run(user, usage={"inputTokens": 1000, "outputTokens": 1000, "cost": "1.25"})
    make_run(user, usage={"inputTokens": 500, "outputTokens": 0, "cost": "0.000000500000"})
    make_run(user, model="unknown-model", usage={"inputTokens": 7, "outputTokens": 7})
    page = signed_in.get("/artifacts").get_data(as_text=True)
    assert 'hx-trigger="load"' in page and "/artifacts/totals" in page  # rows never wait for the sum
    totals = signed_in.get("/artifacts/totals", headers=HX)
    text = totals.get_data(as_text=True)
    assert "<html" not in text
    assert "<strong>3</strong> runs" in text
    assert 'title="$1.250000500000">$1.25<' in text
    assert "plus 1 unpriced run, not included" in text
    assert 'title="1,507 tokens">1.5K<' in text
    # Without JavaScript, the "Show totals" link is a whole page with the totals in place.
    full = signed_in.get("/artifacts/totals").get_data(as_text=True)
    assert "<html" in full and "<strong>3</strong> runs" in full


def test_the_list_reads_no_artifact_data_and_no_query_per_row(
    app: Flask, signed_in: FlaskClient, user: User
) -> None:
    def list_statements() -> list[str]:
        with captured_sql() as statements:
            assert signed_in.get("/artifacts").status_code == 200
            assert signed_in.get("/artifacts?shown=60").status_code == 200
            assert signed_in.get("/artifacts/totals", headers=HX).status_code == 200
        return statements

    make_run(user, tags=["one"])
    with_one = list_statements()
    record_many(user, 30, status="failed", error="x", tags=["a", "b"])
    record_many(user, 30, tags=["c"])
    start_run(user, pipeline="Live", input="still going", tags=["d"])
    db.session.commit()
    with_sixty = list_statements()
    # The same statements for 62 runs as for one: nothing is asked per row.
    assert len(with_sixty) == len(with_one), with_sixty
    run_queries = [sql for sql in with_sixty if "pipeline_runs" in sql]
    assert not [sql for sql in run_queries if "artifact_data" in sql or "final_output" in sql]
    # Only the two pages of rows read runs: the menus come from run_facets, the totals from run_rollups.
    assert len(run_queries) == 2, run_queries
    assert any("run_facets" in sql for sql in with_sixty) and any("run_rollups" in sql for sql in with_sixty)


@contextmanager
def captured_sql() -> Iterator[list[str]]:
    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", capture)


def test_empty_states(signed_in: FlaskClient, user: User) -> None:
    empty = signed_in.get("/artifacts").get_data(as_text=True)
    assert "No runs yet" in empty and "/api/v1/runs" in empty and "Authorization: Bearer" in empty
    make_run(user)
    none_match = signed_in.get("/artifacts?model=nothing-like-this").get_data(as_text=True)
    assert "No runs match these filters" in none_match and "No runs yet" not in none_match


def test_other_users_runs_never_appear(signed_in: FlaskClient, user: User) -> None:
    stranger = make_user("stranger@example.com")
    record_many(stranger, 5, pipeline="Secret pipeline")
    html = signed_in.get("/artifacts?status=all").get_data(as_text=True)
    assert "Secret pipeline" not in html and "No runs yet" in html


def test_home_redirects_to_the_list(signed_in: FlaskClient) -> None:
    response = signed_in.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/artifacts"


def test_export_streams_each_filtered_run_once_in_keyset_batches(
    signed_in: FlaskClient, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches of 4 (CSV) and 5 (JSONL) stand in for the real 1,000s, so a few runs cross
    # several batch boundaries: 6 of the 10 wanted runs share one completion time (the id breaks
    # the tie across a boundary), runs of another model sit between them, and the JSONL export
    # ends on a full batch, so only an empty one tells it to stop.
    monkeypatch.setattr(exports, "CSV_BATCH", 4)
    monkeypatch.setattr(exports, "JSONL_BATCH", 5)
    wanted = set(record_many(user, 10, model="gpt-4o-mini", same_time=6))
    record_many(user, 3, model="gpt-4o", start=T0 + timedelta(seconds=30))
    in_list_order = [run_id for run_id in newest_first(user) if run_id in wanted]
    batches: list[tuple[str, int]] = []
    for name in ("list_runs", "export_runs"):
        real = getattr(queries, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            rows = _real(*args, **kwargs)
            batches.append((_name, len(rows)))
            return rows

        monkeypatch.setattr(queries, name, counted)

    response = signed_in.get("/artifacts/export?format=jsonl&model=gpt-4o-mini", buffered=False)
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Disposition"].startswith("attachment;")
    chunks = [chunk.decode() for chunk in response.iter_encoded()]  # each one sent as soon as it is made
    assert batches == [("export_runs", 5), ("export_runs", 5), ("export_runs", 0)]
    assert [len(chunk.splitlines()) for chunk in chunks] == [5, 5, 1]  # the last: the summary line
    *documents, summary = [json.loads(line) for line in "".join(chunks).splitlines()]
    assert summary == {"export": {"runs": 10, "complete": True}}
    assert [doc["id"] for doc in documents] == in_list_order
    assert {doc["model"] for doc in documents} == {"gpt-4o-mini"}
    assert documents[0]["steps"][0]["output"] == "output 9"

    batches.clear()
    as_csv = signed_in.get("/artifacts/export?format=csv&model=gpt-4o-mini", buffered=False)
    assert as_csv.is_streamed and as_csv.mimetype == "text/csv"
    chunks = [chunk.decode() for chunk in as_csv.iter_encoded()]
    assert batches == [("list_runs", 4), ("list_runs", 4), ("list_runs", 2)]
    assert [len(chunk.splitlines()) for chunk in chunks] == [1, 4, 4, 2]  # the header, then each batch
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert [row["id"] for row in rows] == in_list_order
    assert signed_in.get("/artifacts/export?format=xml").status_code == 400


@pytest.mark.postgres_only
def test_the_page_query_is_an_index_scan_without_a_sort_for_100k_runs(app: Flask, user: User) -> None:
    from artifacts_app import queries
    from artifacts_app.filters import Cursor, ListFilters

    pipeline = recording.pipeline_for(user, "Bulk")
    db.session.commit()
    # Bulk rows straight in SQL: 100,000 runs through the writer would take minutes. Every tenth
    # failed, every hundredth still running (listed by its start, no cost or duration yet).
    db.session.execute(sa.text("""
        INSERT INTO pipeline_runs (id, pipeline_id, user_id, status, name, input, created_at, completed_at, model,
                                   input_tokens, output_tokens, cost, cost_source,
                                   listed_at, total_tokens, sort_cost, sort_duration_ms)
        SELECT gen_random_uuid()::text, :p, :u,
               CASE WHEN n % 100 = 0 THEN 'running' WHEN n % 10 = 0 THEN 'failed' ELSE 'completed' END,
               'bulk ' || n, 'bulk', now() - n * interval '1 minute',
               CASE WHEN n % 100 = 0 THEN NULL ELSE now() - n * interval '1 minute' + interval '5 seconds' END,
               'gpt-4o', 100, 10 + n % 7, 0.000350000000 + (n % 13) * 0.000001, 'computed',
               now() - n * interval '1 minute' + CASE WHEN n % 100 = 0 THEN interval '0' ELSE interval '5 seconds' END,
               110 + n % 7, 0.000350000000 + (n % 13) * 0.000001, 5000 + n % 11
        FROM generate_series(1, 100000) AS n
    """), {"p": pipeline.id, "u": user.id})
    db.session.commit()
    db.session.execute(sa.text("ANALYZE pipeline_runs"))
    # The default order (every status) and a status, by their two indexes; each other order by its own.
    cases = [
        (ListFilters(), "ix_pipeline_runs_listed"),
        (ListFilters(status="failed"), "ix_pipeline_runs_status_listed"),
        (ListFilters(sort="oldest"), "ix_pipeline_runs_listed"),
        (ListFilters(sort="cost"), "ix_pipeline_runs_cost"),
        (ListFilters(sort="tokens"), "ix_pipeline_runs_tokens"),
        (ListFilters(sort="duration"), "ix_pipeline_runs_duration"),
    ]
    for filters, index in cases:
        first = queries.list_statement(user, filters, None, 26)
        deep_row = queries.list_runs(user, filters, None, 5001)[-1]
        deep = queries.list_statement(user, filters, Cursor(deep_row.sort_key, deep_row.id, filters), 26)
        for statement in (first, deep):
            compiled = statement.compile(db.engine, compile_kwargs={"literal_binds": True})
            plan = db.session.execute(sa.text(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar_one()
            nodes = list(plan_nodes(plan[0]["Plan"]))
            kinds = {node["Node Type"] for node in nodes}
            # No sort, and no scan of every run (the one-row pipelines table may be scanned for the join).
            run_scans = [node for node in nodes
                         if node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "pipeline_runs"]
            assert "Sort" not in kinds and not run_scans, (filters, kinds)
            assert any(node.get("Index Name") == index for node in nodes), (filters, index, nodes)


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def complete(user: User, run_id: str, **fields: Any) -> None:
    """Finish a running run as its executor would, and commit."""
    body = {"finalOutput": "done", "usage": {"inputTokens": 2000, "outputTokens": 100}, **fields}
    recording.complete_run(user, run_id, schemas.parse(schemas.RunComplete, body))
    db.session.commit()


def row_html(html: str, run_id: str) -> str:
    found = re.search(rf'<tr class="run-row[^"]*" id="run-{run_id}".*?</tr>', html, re.S)
    assert found, f"no row for {run_id}"
    return found.group(0)


def test_the_default_list_shows_every_status_each_with_its_badge(signed_in: FlaskClient, user: User) -> None:
    done = make_run(user, name="Finished brief")
    failed = make_run(user, name="Broken brief", status="failed", error="the model timed out",
                      completed_at=datetime(2025, 11, 2, tzinfo=timezone.utc))
    running = start_run(user, pipeline="Code review", name="Reviewing PR 12", input="PR 12", model="gpt-4o",
                        created_at=datetime.now(timezone.utc) - timedelta(minutes=3, seconds=5))
    waiting = start_run(user, pipeline="Code review", name="Queued review", input="PR 13")
    db.session.commit()
    # No writer makes a pending run today (imports of older data can); set it straight.
    db.session.execute(sa.text("UPDATE pipeline_runs SET status = 'pending' WHERE id = :i"), {"i": waiting.id})
    db.session.commit()
    html = signed_in.get("/artifacts").get_data(as_text=True)
    assert set(page_ids(html)) == {done.id, failed.id, running.id, waiting.id}
    for run, status in ((done, "completed"), (failed, "failed"), (running, "running"), (waiting, "pending")):
        row = row_html(html, run.id)
        assert f'<span class="badge badge-{status}">{status}</span>' in row
        polls = 'hx-trigger="every 3s"' in row
        assert polls == (status in ("running", "pending")), (status, row)
    live = row_html(html, running.id)
    assert "Reviewing PR 12" in live and "started <time" in live and "3 minutes ago" in live
    assert re.search(r"3 min \d+ s <span class=\"muted\">so far</span>", live), live
    assert "unpriced" not in live and "—" in live  # not priced yet, which is not "unpriced"
    assert f'hx-get="/artifacts/{running.id}/row"' in live and 'hx-swap="outerHTML"' in live
    assert "queued <time" in row_html(html, waiting.id)
    assert "Completed / started" in html
    assert 'aria-live' not in html.split('id="artifact-results"')[1].split(">")[0]


def test_an_open_rows_fragment_turns_completed_when_the_run_completes(
    app: Flask, signed_in: FlaskClient, user: User
) -> None:
    app.config["LIST_POLL_SECONDS"] = 2
    run = start_run(user, pipeline="Code review", name="Reviewing PR 7", input="PR 7", model="gpt-4o")
    db.session.commit()
    before = signed_in.get(f"/artifacts/{run.id}/row", headers=HX)
    text = before.get_data(as_text=True)
    assert before.status_code == 200 and "HX-Request" in before.headers["Vary"]
    assert text.strip().startswith("<tr") and "<html" not in text and text.count("<tr") == 1
    assert "badge-running" in text and 'hx-trigger="every 2s"' in text
    complete(user, run.id)
    after = signed_in.get(f"/artifacts/{run.id}/row", headers=HX).get_data(as_text=True)
    assert "badge-completed" in after and "hx-trigger" not in after  # finished: the polling stops
    assert 'title="2,000 tokens">2K<' in after and 'title="$0.006000000000">$0.006<' in after
    assert "started <time" not in after and "so far" not in after
    # A direct visit (no htmx) goes to the run itself.
    direct = signed_in.get(f"/artifacts/{run.id}/row")
    assert direct.status_code == 302 and direct.headers["Location"] == f"/artifacts/{run.id}"


def test_a_row_of_another_user_or_of_nobody_is_404_and_signed_out_is_refused(
    app: Flask, client: FlaskClient, user: User
) -> None:
    stranger = make_user("stranger@example.com")
    theirs = start_run(stranger, pipeline="Secret", input="theirs")
    mine = start_run(user, pipeline="Mine", input="mine")
    db.session.commit()
    assert client.get(f"/artifacts/{mine.id}/row", headers=HX).status_code in (302, 401)  # signed out
    log_in(client, user.email)
    for headers in (HX, {}):
        response = client.get(f"/artifacts/{theirs.id}/row", headers=headers)
        assert response.status_code == 404 and "Secret" not in response.get_data(as_text=True)
        assert client.get("/artifacts/00000000-0000-4000-8000-000000000000/row", headers=headers).status_code == 404
    assert client.get(f"/artifacts/{mine.id}/row", headers=HX).status_code == 200


def test_tags_are_chips_that_filter_by_that_tag_and_metadata_filters_too(signed_in: FlaskClient, user: User) -> None:
    both = make_run(user, name="Tagged twice", tags=["alpha", "beta"], metadata={"team": "search"})
    beta = make_run(user, name="Tagged once", tags=["beta"], metadata={"team": "ads"},
                    completed_at=datetime(2025, 11, 2, tzinfo=timezone.utc))
    plain = make_run(user, name="No tags", completed_at=datetime(2025, 11, 3, tzinfo=timezone.utc))
    html = signed_in.get("/artifacts").get_data(as_text=True)
    chips = re.findall(r'<a class="tag" href="([^"]+)"[^>]*>([^<]+)</a>', row_html(html, both.id))
    assert chips == [("/artifacts?tag=alpha", "alpha"), ("/artifacts?tag=beta", "beta")]
    assert '<a class="tag"' not in row_html(html, plain.id)
    assert page_ids(signed_in.get("/artifacts?tag=alpha").get_data(as_text=True)) == [both.id]
    assert page_ids(signed_in.get("/artifacts?tag=beta").get_data(as_text=True)) == [beta.id, both.id]
    assert page_ids(signed_in.get("/artifacts?tag=beta&tag=alpha").get_data(as_text=True)) == [both.id]
    # The tag menu comes from the facets, the chosen tags checked.
    page = signed_in.get("/artifacts?tag=beta").get_data(as_text=True)
    assert 'name="tag" value="beta" checked' in page and 'name="tag" value="alpha" >' in page
    meta = signed_in.get("/artifacts?meta.team=search").get_data(as_text=True)
    assert page_ids(meta) == [both.id]
    # The form keeps the metadata filter, so changing another filter does not drop it.
    assert '<input type="hidden" name="meta.team" value="search">' in meta
    assert page_ids(signed_in.get("/artifacts?meta.team=search&tag=beta", headers=HX).get_data(as_text=True)) == [
        both.id]


def test_pipeline_and_model_each_take_several_values(signed_in: FlaskClient, user: User) -> None:
    review = record_many(user, 3, pipeline="Code review", model="gpt-4o-mini")
    brief = record_many(user, 3, pipeline="Research brief", model="claude-haiku-4-5", start=T0 + timedelta(hours=1))
    record_many(user, 3, pipeline="Triage", model="gpt-4o", start=T0 + timedelta(hours=2))
    two = signed_in.get("/artifacts?pipeline=Code+review&pipeline=Research+brief").get_data(as_text=True)
    assert page_ids(two) == newest(brief) + newest(review)
    assert 'name="pipeline" value="Code review" checked' in two and 'name="pipeline" value="Triage" >' in two
    models = signed_in.get("/artifacts?model=claude-haiku-4-5&model=gpt-4o-mini").get_data(as_text=True)
    assert page_ids(models) == newest(brief) + newest(review)
    # A family ("gpt-4o" finds gpt-4o-mini) stays checked though the menu lists only exact models.
    family = signed_in.get("/artifacts?model=gpt-4o&pipeline=Code+review").get_data(as_text=True)
    assert page_ids(family) == newest(review) and 'name="model" value="gpt-4o" checked' in family


@pytest.mark.parametrize("sort", ["newest", "oldest", "cost", "tokens", "duration", "relevance"])
def test_every_sort_pages_exactly_through_ties(signed_in: FlaskClient, user: User, sort: str) -> None:
    # Ties on every key: five runs alike in cost, tokens and duration (and time), others between.
    record_many(user, 5, same_time=5, usage={"inputTokens": 100, "outputTokens": 10})
    record_many(user, 3, start=T0 + timedelta(hours=1), usage={"inputTokens": 500, "outputTokens": 50})
    record_many(user, 2, start=T0 + timedelta(hours=2), model="no-such-model")  # unpriced: cost sorts last
    record_many(user, 2, start=T0 + timedelta(hours=3), status="failed", error="x",
                created_at=T0 + timedelta(hours=3) - timedelta(minutes=5))  # the longest
    start_run(user, pipeline="Live", input="open")  # no cost, tokens or duration yet
    start_run(user, pipeline="Live", input="open too")
    db.session.commit()
    ids, fragments = scroll_all(signed_in, f"/artifacts?sort={sort}&limit=2")
    assert len(ids) == 14 and len(set(ids)) == 14 and fragments == 6
    assert ids == newest_first(user, sort)


def test_the_pushed_address_leaves_out_empty_parameters(signed_in: FlaskClient, user: User) -> None:
    record_many(user, 3, tags=["x"])
    response = signed_in.get(
        "/artifacts?q=&pipeline=&model=gpt-4o&model=&tag=x&status=&from=&to=&sort=", headers=HX)
    assert response.status_code == 200
    assert response.headers["HX-Push-Url"] == "/artifacts?model=gpt-4o&tag=x"
    assert signed_in.get("/artifacts?sort=cost&status=", headers=HX).headers["HX-Push-Url"] == "/artifacts?sort=cost"
    # Field messages from an earlier refused request are cleared by the next good one.
    assert '<span id="error-to" class="field-error" hx-swap-oob="true"></span>' in response.get_data(as_text=True)


def test_a_bad_date_range_shows_its_message_beside_the_field(signed_in: FlaskClient, user: User) -> None:
    make_run(user)
    page = signed_in.get("/artifacts?from=2025-03-05&to=2025-03-01&model=gpt-4o")
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and "<form" in html and 'id="filters"' in html
    # The message sits right after the "to" field, which is marked invalid and described by it.
    assert re.search(r'<input type="date" name="to" value="2025-03-01" aria-describedby="error-to"\s+'
                     r'aria-invalid="true"></label>\s*<span id="error-to" class="field-error" role="alert">'
                     r'from must not be after to</span>', html), html
    assert 'name="model" value="gpt-4o" checked' in html  # the rest of the form as the person left it
    malformed = signed_in.get("/artifacts?from=March").get_data(as_text=True)
    assert re.search(r'name="from"[^>]*aria-invalid="true"></label>\s*<span id="error-from" class="field-error" '
                     r'role="alert">from must be a date like 2025-11-30</span>', malformed)
    # htmx gets the results block with the message, and the field's message out of band.
    fragment = signed_in.get("/artifacts?from=2025-03-05&to=2025-03-01", headers=HX)
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 400 and "<html" not in text and text.strip().startswith('<section id="artifact-results"')
    assert '<span id="error-to" class="field-error" hx-swap-oob="true" role="alert">from must not be after to</span>' in text
    assert "The list could not be shown: from must not be after to" in text
    assert fragment.headers["HX-Push-Url"] == "false"


def test_shown_renders_that_many_rows_at_once_and_load_more_records_how_far(
    signed_in: FlaskClient, user: User
) -> None:
    record_many(user, 160)
    everything = newest_first(user)
    with captured_sql() as statements:
        page = signed_in.get("/artifacts?shown=150")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page_ids(html) == everything[:150]
    assert len([sql for sql in statements if "FROM pipeline_runs" in sql]) == 1  # one query for all 150
    rest = signed_in.get(next_url(html), headers=HX)
    assert page_ids(rest.get_data(as_text=True)) == everything[150:]
    assert rest.headers["HX-Replace-Url"] == "/artifacts?shown=160"
    # From the first page each load-more says how far the list now goes, filters kept.
    first = signed_in.get("/artifacts?model=gpt-4o").get_data(as_text=True)
    second = signed_in.get(next_url(first), headers=HX)
    assert second.headers["HX-Replace-Url"] == "/artifacts?model=gpt-4o&shown=50"
    assert '25 more runs loaded' in second.get_data(as_text=True)
    third = signed_in.get(next_url(second.get_data(as_text=True)), headers=HX)
    assert third.headers["HX-Replace-Url"] == "/artifacts?model=gpt-4o&shown=75"
    for bad in ("0", "501", "lots"):
        assert signed_in.get(f"/artifacts?shown={bad}").status_code == 400


def test_load_more_keeps_working_past_a_thousand_rows(signed_in: FlaskClient, user: User) -> None:
    record_many(user, 130)
    everything = newest_first(user)
    html = signed_in.get("/artifacts?limit=100").get_data(as_text=True)
    deep = next_url(html).replace("seen=100", "seen=1200")  # as if 1,200 rows were already loaded

    response = signed_in.get(deep, headers=HX)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert page_ids(response.get_data(as_text=True)) == everything[100:]
    assert "shown=500" in response.headers["HX-Replace-Url"], response.headers  # a reload renders at most 500


def test_totals_say_how_many_runs_are_still_running(signed_in: FlaskClient, user: User) -> None:
    make_run(user)
    start_run(user, pipeline="Live", input="one")
    start_run(user, pipeline="Live", input="two")
    db.session.commit()
    text = signed_in.get("/artifacts/totals", headers=HX).get_data(as_text=True)
    assert "<strong>3</strong> runs" in text and "· <span" in text and "2 running</span>" in text
    assert "unpriced" not in text  # open runs are not unpriced ones


def test_a_search_page_shows_where_each_run_matched(signed_in: FlaskClient, user: User) -> None:
    wanted = make_run(user, name="Battery brief", steps=[
        {"agentId": "r", "agentName": "Researcher", "stepOrder": 0, "output": "Notes on anodes."},
        {"agentId": "v", "agentName": "Reviewer", "stepOrder": 1,
         "output": "The <b>pagination</b> breaks on page two <script>alert(1)</script>."},
    ], final_output="All good.")
    make_run(user, name="Something else")

    html = signed_in.get("/artifacts?q=pagination").get_data(as_text=True)

    assert page_ids(html) == [wanted.id]
    row = row_html(html, wanted.id)
    assert '<span class="snippet-part">Step 2 · Reviewer</span>' in row
    assert "<mark>pagination</mark>" in row
    assert "<script>" not in row and "<b>" not in row  # the output is escaped, only <mark> is ours
    assert 'value="pagination"' in html
