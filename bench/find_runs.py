"""Benchmark: finding runs (issue 12) for one user with 100,000 runs and 1,000,000 steps, over real HTTP.

Usage (PostgreSQL; the role must be allowed to create databases):
    BENCH_DATABASE_URL=postgresql://USER:PASS@127.0.0.1/postgres .venv/bin/python bench/find_runs.py

It bulk-inserts 100,000 runs of 10 steps each (about 300 characters of words per step; five
pipelines, four models, 10% failed, 1% still running) at revision 0004, migrates to head (whose
backfills write names, sort keys, summaries and the search index), tags a third of the runs, and
times over HTTP (gunicorn, 2 workers, 127.0.0.1) 30 requests each: the list fragment, the full page,
the totals (unfiltered, by dimension, by tag, of a search) and searches, each also as a ratio of the
list fragment. It ends with the plan of a search query. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
import urllib.parse
import urllib.request
import uuid
from datetime import date, timedelta

import sqlalchemy as sa
from harness import HX, median, migrate_to_head, next_rows_url, report, scratch_database, served, timed

RUNS = int(os.environ.get("BENCH_RUNS", 100_000))  # smaller for a quick try of the script
STEPS = 10
REPEAT = 30
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "zu", "fi"]
# 1,728 made-up words plus a few real ones the searches look for.
VOCABULARY = ["".join(parts) for parts in itertools.product(SYLLABLES, repeat=3)]
PIPELINES = ["Code review", "Research brief", "Triage", "Translation", "Support reply"]
MODELS = ["gpt-4o-2024-08-06", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash"]
RARE = "quuxifrage"  # in one step of one run


def seed(url: str, user_id: str) -> str:
    """Bulk-insert the runs at revision 0004; the id of the run holding the rare word."""
    engine = sa.create_engine(url)
    pipeline_ids = [str(uuid.uuid4()) for _ in PIPELINES]
    rare_run = str(uuid.uuid4())
    with engine.begin() as connection:
        for pipeline_id, name in zip(pipeline_ids, PIPELINES, strict=True):
            connection.execute(sa.text(
                "INSERT INTO pipelines (id, user_id, name, created_at) VALUES (:p, :u, :n, now())"),
                {"p": pipeline_id, "u": user_id, "n": name})
        started = time.perf_counter()
        # Each step: a sentence with words picked by n and the step's order, so runs differ; "pagination"
        # is in 1 run in 100 (the reviewer's step), "reviewer" in every run.
        connection.execute(sa.text("""
            INSERT INTO pipeline_runs (id, pipeline_id, user_id, status, input, created_at, completed_at, model,
                                       input_tokens, output_tokens, cost, cost_source, error, artifact_data)
            SELECT gen_random_uuid()::text, (CAST(:pipelines AS text[]))[1 + n % 5], :u,
                   CASE WHEN n % 100 = 1 THEN 'running' WHEN n % 10 = 0 THEN 'failed' ELSE 'completed' END,
                   'Review change ' || n || ': ' || (CAST(:words AS text[]))[1 + n % 1728] || ' '
                       || (CAST(:words AS text[]))[1 + (n * 7) % 1728],
                   now() - n * interval '1 minute' - interval '40 seconds',
                   CASE WHEN n % 100 = 1 THEN NULL ELSE now() - n * interval '1 minute' END,
                   (CAST(:models AS text[]))[1 + n % 4], 1000 + n % 5000, 100 + n % 700,
                   CASE WHEN n % 100 = 1 THEN NULL ELSE 0.000010000000 * (1 + n % 997) END,
                   CASE WHEN n % 100 = 1 THEN NULL ELSE 'computed' END,
                   CASE WHEN n % 10 = 0 THEN 'Timeout in step 7' END,
                   jsonb_build_object(
                       'finalOutput', CASE WHEN n % 100 = 1 OR n % 10 = 0 THEN ''
                                      ELSE '# Summary ' || n || E'\n'
                                           || (CAST(:words AS text[]))[1 + (n * 13) % 1728] END,
                       'steps', (SELECT jsonb_agg(jsonb_build_object(
                           'agentId', 'agent-' || s, 'agentName', 'Agent ' || s, 'stepOrder', s,
                           'output', CASE WHEN s = 3 THEN 'The reviewer found ' ELSE 'Step notes: ' END
                                     || CASE WHEN s = 3 AND n % 100 = 7 THEN 'pagination breaks on page two. '
                                             ELSE '' END
                                     || (SELECT string_agg(
                                             (CAST(:words AS text[]))[1 + (n * 31 + s * 17 + k * 101) % 1728], ' ')
                                         FROM generate_series(1, 45) AS k)
                       ) ORDER BY s) FROM generate_series(0, :steps - 1) AS s))
            FROM generate_series(1, :runs) AS n
        """), {"pipelines": pipeline_ids, "u": user_id, "words": VOCABULARY, "models": MODELS, "runs": RUNS,
               "steps": STEPS})
        connection.execute(sa.text("""
            INSERT INTO pipeline_runs (id, pipeline_id, user_id, status, input, created_at, completed_at, model,
                                       cost_source, artifact_data)
            VALUES (:id, :p, :u, 'completed', 'The one with the rare word', now() - interval '3 days',
                    now() - interval '3 days' + interval '9 seconds', 'gpt-4o-mini', 'unpriced',
                    jsonb_build_object('finalOutput', 'done', 'steps', jsonb_build_array(
                        jsonb_build_object('agentId', 'r', 'agentName', 'Reviewer', 'stepOrder', 0,
                                           'output', 'Nothing unusual here.'),
                        jsonb_build_object('agentId', 'c', 'agentName', 'Critic', 'stepOrder', 1,
                                           'output', 'A ' || :rare || ' appears in this step only.'))))
        """), {"id": rare_run, "p": pipeline_ids[0], "u": user_id, "rare": RARE})
        print(f"inserted {RUNS + 1:,} runs ({(RUNS + 1) * STEPS:,} steps) in {time.perf_counter() - started:.1f} s")
    engine.dispose()
    return rare_run


def tag_and_recount(url: str) -> None:
    """Tag a third of the runs (tags came after 0004), then recount the summaries as the writer would."""
    os.environ["DATABASE_URL"] = url
    from artifacts_app import create_app, rollups
    from artifacts_app.extensions import db

    app = create_app()
    with app.app_context():
        db.session.execute(sa.text(
            """UPDATE pipeline_runs SET tags = ARRAY['nightly'] WHERE substr(id, 1, 1) IN ('0', '1', '2', '3', '4')"""
        ))
        rollups.rebuild()
        db.session.commit()
        db.engine.dispose()


def explain_search(url: str, query: str) -> str:
    from artifacts_app import create_app, queries
    from artifacts_app.extensions import db
    from artifacts_app.filters import ListFilters
    from artifacts_app.models import User

    app = create_app()
    with app.app_context():
        user = db.session.execute(sa.select(User)).scalar_one()
        statement = queries.list_statement(user, ListFilters(query=query), None, 26)
        compiled = statement.compile(db.engine, compile_kwargs={"literal_binds": True})
        plan = db.session.execute(sa.text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}")).scalars().all()
        db.engine.dispose()
    return "\n".join(plan)


def main() -> None:
    with scratch_database("0004") as (url, env, user_id):
        seed(url, user_id)
        print(f"migrated to head (backfills included) in {migrate_to_head(env, url):.1f} s")
        tag_and_recount(url)
        with served(env) as (root, opener):
            def get(path: str, **params: str | list[str]) -> str:
                return f"{root}{path}?{urllib.parse.urlencode(params, doseq=True)}" if params else f"{root}{path}"

            fragment_url = root + next_rows_url(opener.open(get("/artifacts")).read().decode())
            fragment = timed(opener, fragment_url, HX, REPEAT)
            base = median(fragment)
            cases = [
                ("GET /artifacts (full page, first 25)", get("/artifacts"), {}),
                ("totals, unfiltered", get("/artifacts/totals"), HX),
                ("totals, pipeline=Triage", get("/artifacts/totals", pipeline="Triage"), HX),
                ("totals, model=gpt-4o (a family)", get("/artifacts/totals", model="gpt-4o"), HX),
                ("totals, status=failed, last 30 days",
                 get("/artifacts/totals", status="failed", **{"from": str(date.today() - timedelta(days=30))}), HX),
                ("totals, tag=nightly (over the runs)", get("/artifacts/totals", tag="nightly"), HX),
                ("rows, tag=nightly", get("/artifacts", tag="nightly"), HX),
                ("rows, sort=cost", get("/artifacts", sort="cost"), HX),
                (f"search q={RARE} (1 run, one step)", get("/artifacts", q=RARE), HX),
                ("search q=pagination (1% of runs)", get("/artifacts", q="pagination"), HX),
                ('search q="pagination breaks"', get("/artifacts", q='"pagination breaks"'), HX),
                ("search q=pagination -two", get("/artifacts", q="pagination -two"), HX),
                (f"search q=pagination or {RARE}", get("/artifacts", q=f"pagination or {RARE}"), HX),
                ("search q=pagination sort=relevance", get("/artifacts", q="pagination", sort="relevance"), HX),
                ("search q=reviewer (every run)", get("/artifacts", q="reviewer"), HX),
                ("search q=pagination pipeline=Triage status=completed",
                 get("/artifacts", q="pagination", pipeline="Triage", status="completed"), HX),
                ("totals of q=pagination", get("/artifacts/totals", q="pagination"), HX),
            ]
            rows = ["| request | median | p95 | × fragment |", "|---|---:|---:|---:|",
                    report("next 25 rows (htmx fragment, page 2)", fragment, " 1.0 |")]
            for name, case_url, headers in cases:
                samples = timed(opener, case_url, headers, REPEAT)
                rows.append(report(name, samples, f" {median(samples) / base:.1f} |"))
        print("\n".join(rows))
        print("\nEXPLAIN ANALYZE of the search page query (q=pagination):")
        print(explain_search(url, "pagination"))


if __name__ == "__main__":
    sys.exit(main())
