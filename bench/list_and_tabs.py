"""Benchmark: the list, its totals and a step tab for a user with 100,000 runs, over real HTTP.

Usage (PostgreSQL; the role must be allowed to create databases):
    BENCH_DATABASE_URL=postgresql://USER:PASS@127.0.0.1/postgres .venv/bin/python bench/list_and_tabs.py

It creates a scratch database, bulk-inserts 100,000 runs for one user (10% failed, one run with a
20 MB artifact) at revision 0004 and migrates to head (whose backfills add names, sort keys and
summaries), serves the app with gunicorn (2 workers) on 127.0.0.1, and times each request 50 times
from this process. It prints medians and 95th percentiles. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import time
import urllib.request
import uuid

import sqlalchemy as sa
from harness import HX, migrate_to_head, next_rows_url, report, scratch_database, served, timed

RUNS = 100_000


def main() -> None:
    with scratch_database("0004") as (url, env, user_id):
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            pipeline_id = str(uuid.uuid4())
            connection.execute(sa.text(
                "INSERT INTO pipelines (id, user_id, name, created_at) VALUES (:p, :u, 'Bulk', now())"),
                {"p": pipeline_id, "u": user_id})
            started = time.perf_counter()
            connection.execute(sa.text("""
                INSERT INTO pipeline_runs (id, pipeline_id, user_id, status, input, created_at, completed_at, model,
                                           input_tokens, output_tokens, cost, cost_source, artifact_data)
                SELECT gen_random_uuid()::text, :p, :u, CASE WHEN n % 10 = 0 THEN 'failed' ELSE 'completed' END,
                       'bulk input ' || n, now() - n * interval '1 minute',
                       now() - n * interval '1 minute' + interval '7 seconds',
                       (ARRAY['gpt-4o', 'claude-sonnet-4-5', 'gemini-2.5-flash'])[1 + n % 3], 1200, 340,
                       0.006400000000, 'computed',
                       jsonb_build_object('finalOutput', '# Final ' || n, 'steps', jsonb_build_array(
                           jsonb_build_object('agentId', 'a', 'agentName', 'Researcher', 'stepOrder', 0,
                                              'output', '## Notes ' || n || repeat(' lorem ipsum', 200))))
                FROM generate_series(1, :runs) AS n
            """), {"p": pipeline_id, "u": user_id, "runs": RUNS})
            huge_id = str(uuid.uuid4())
            connection.execute(sa.text("""
                INSERT INTO pipeline_runs (id, pipeline_id, user_id, status, input, created_at, completed_at,
                                           artifact_data, cost_source)
                VALUES (:id, :p, :u, 'completed', 'huge', now(), now(),
                        jsonb_build_object('finalOutput', 'small', 'steps', jsonb_build_array(
                            jsonb_build_object('agentId', 'big', 'agentName', 'Big', 'stepOrder', 0,
                                               'output', repeat('x', 99) || repeat(E'\\n' || repeat('y', 99), 200000)),
                            jsonb_build_object('agentId', 'small', 'agentName', 'Small', 'stepOrder', 1,
                                               'output', '# Small step'))), 'unpriced')
            """), {"id": huge_id, "p": pipeline_id, "u": user_id})
            print(f"inserted {RUNS:,} runs in {time.perf_counter() - started:.1f} s")
        engine.dispose()
        print(f"migrated to head in {migrate_to_head(env, url):.1f} s")
        with served(env) as (root, opener):
            measure(root, opener, huge_id)


def measure(root: str, opener: urllib.request.OpenerDirector, huge_id: str) -> None:
    cursor = next_rows_url(opener.open(f"{root}/artifacts").read().decode())
    # A cursor 50,000 rows deep: keyset pages cost the same at any depth.
    deep = opener.open(f"{root}/artifacts?limit=100").read().decode()
    for _ in range(499):
        deep = opener.open(urllib.request.Request(f"{root}{next_rows_url(deep)}", headers=HX)).read().decode()
    deep_cursor = next_rows_url(deep)
    rows = [
        "| request | median | p95 |",
        "|---|---:|---:|",
        report("GET /artifacts (full page, first 25)", timed(opener, f"{root}/artifacts")),
        report("next 25 rows (htmx fragment, page 2)", timed(opener, f"{root}{cursor}", HX)),
        report("next 100 rows after 50,000 (htmx fragment)", timed(opener, f"{root}{deep_cursor}", HX)),
        report("totals over 100,000 runs (htmx fragment)", timed(opener, f"{root}/artifacts/totals", HX)),
        report("small step tab of a run with a 20 MB step",
               timed(opener, f"{root}/artifacts/{huge_id}?tab=step-2", HX)),
        report("20 MB step's tab (first 64 KB rendered, cached)",
               timed(opener, f"{root}/artifacts/{huge_id}?tab=step-1", HX)),
    ]
    print("\n".join(rows))


if __name__ == "__main__":
    main()
