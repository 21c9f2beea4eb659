"""Benchmark: reading one step and posting steps (issue 13, point 2), over real HTTP.

Usage (PostgreSQL; the role must be allowed to create databases):
    BENCH_DATABASE_URL=postgresql://USER:PASS@127.0.0.1/postgres .venv/bin/python bench/read_steps.py

It bulk-inserts, at revision 0004 (steps inside `artifact_data`, as they were stored then), one user's
300,000 small runs (three steps of about 300 characters each) and two more runs that share a 2 KB
first step: R_big, whose second step holds 20 MB, and R_small, which has no big step. It migrates
to head (whatever head is: the revisions after 0004 move the data where the code of the day reads
it, so this script measures the schema before and after a change of where steps are stored),
serves the app with gunicorn (2 workers) on 127.0.0.1, and times from this process:

- the htmx fragment of the 2 KB step's tab in R_big and in R_small (and R_big's 20 MB tab),
  50 requests each;
- POST /api/v1/runs/<id>/steps with an API token: 30 runs started through the API, 100 steps of
  about 2 KB posted to each (step k to every run, then step k + 1); the 1st, 50th and 100th
  step's times over the 30 runs; then the same again with `Prefer: return=minimal` (no run in
  the answer).

It prints medians and 95th percentiles in milliseconds, and the migration's time. Nothing leaves
127.0.0.1. BENCH_RUNS=1000 makes a quick try of the script.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import time
import urllib.request
import uuid

import sqlalchemy as sa
from harness import EMAIL, HX, ROOT, median, migrate_to_head, report, scratch_database, served, timed

RUNS = int(os.environ.get("BENCH_RUNS", 300_000))
REPEAT = 50  # requests per tab
API_RUNS = 30  # running runs the steps are posted to
API_STEPS = 100  # steps posted to each
# The step both runs share: about 2 KB of markdown.
TWO_KB_STEP = "## Findings\n\n" + "".join(
    f"- Item {i}: the reviewer checked the pagination code and found nothing unusual.\n" for i in range(26)
)
# Steps posted through the API: about 2 KB each of words drawn from 1,728 made-up ones, different
# for every run and step, so they compress about as little as model output does.
VOCABULARY = ["".join(parts) for parts in itertools.product(
    ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "zu", "fi"], repeat=3)]


def posted_step(rng: random.Random, order: int) -> str:
    words = " ".join(rng.choice(VOCABULARY) for _ in range(290))
    return f"## Step {order}\n\n{words}"


def seed(url: str, user_id: str) -> tuple[str, str]:
    """Bulk-insert the runs at revision 0004; the ids of R_big and R_small."""
    engine = sa.create_engine(url)
    pipeline_id, big_id, small_id = (str(uuid.uuid4()) for _ in range(3))
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO pipelines (id, user_id, name, created_at) VALUES (:p, :u, 'Bulk', now())"),
            {"p": pipeline_id, "u": user_id})
        started = time.perf_counter()
        connection.execute(sa.text("""
            INSERT INTO pipeline_runs (id, pipeline_id, user_id, status, input, created_at, completed_at, model,
                                       input_tokens, output_tokens, cost, cost_source, artifact_data)
            SELECT gen_random_uuid()::text, :p, :u, CASE WHEN n % 10 = 0 THEN 'failed' ELSE 'completed' END,
                   'bulk input ' || n, now() - n * interval '1 minute' - interval '7 seconds',
                   now() - n * interval '1 minute',
                   (ARRAY['gpt-4o', 'claude-sonnet-4-5', 'gemini-2.5-flash'])[1 + n % 3], 1200, 340,
                   0.006400000000, 'computed',
                   jsonb_build_object('finalOutput', '# Final ' || n, 'steps', jsonb_build_array(
                       jsonb_build_object('agentId', 'a', 'agentName', 'Researcher', 'stepOrder', 0,
                                          'output', '## Notes ' || n || repeat(' lorem ipsum dolor sit', 13)),
                       jsonb_build_object('agentId', 'b', 'agentName', 'Analyst', 'stepOrder', 1,
                                          'output', '## Analysis ' || n || repeat(' consectetur adipiscing', 13)),
                       jsonb_build_object('agentId', 'c', 'agentName', 'Writer', 'stepOrder', 2,
                                          'output', '## Draft ' || n || repeat(' sed do eiusmod tempor', 13))))
            FROM generate_series(1, :runs) AS n
        """), {"p": pipeline_id, "u": user_id, "runs": RUNS})
        # R_big: the 2 KB step, a 20 MB step (200,001 lines of 100 characters), a small step.
        # R_small: the same 2 KB step and the same small step.
        for run_id, name, big in ((big_id, "R_big", True), (small_id, "R_small", False)):
            connection.execute(sa.text("""
                INSERT INTO pipeline_runs (id, pipeline_id, user_id, status, input, created_at, completed_at,
                                           model, input_tokens, output_tokens, cost, cost_source, artifact_data)
                VALUES (:id, :p, :u, 'completed', :name, now() - interval '10 seconds', now(), 'gpt-4o', 1200, 340,
                        0.006400000000, 'computed',
                        jsonb_build_object('finalOutput', '# Final', 'steps',
                            jsonb_build_array(jsonb_build_object('agentId', 'two-kb', 'agentName', 'Two KB',
                                                                 'stepOrder', 0, 'output', CAST(:two_kb AS text)))
                            || CASE WHEN :big THEN jsonb_build_array(jsonb_build_object(
                                   'agentId', 'big', 'agentName', 'Big', 'stepOrder', 1,
                                   'output', repeat('x', 99) || repeat(E'\\n' || repeat('y', 99), 200000)))
                               ELSE '[]'::jsonb END
                            || jsonb_build_array(jsonb_build_object('agentId', 'small', 'agentName', 'Small',
                                                                    'stepOrder', CASE WHEN :big THEN 2 ELSE 1 END,
                                                                    'output', '# Small step'))))
            """), {"id": run_id, "p": pipeline_id, "u": user_id, "name": name, "two_kb": TWO_KB_STEP, "big": big})
        print(f"inserted {RUNS + 2:,} runs ({RUNS * 3 + 5:,} steps) in {time.perf_counter() - started:.1f} s")
    engine.dispose()
    return big_id, small_id


def vacuum(url: str) -> None:
    """VACUUM after the bulk load and the backfills, as autovacuum would soon: it then neither runs
    during the timings nor holds the database when the harness drops it."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    started = time.perf_counter()
    with engine.connect() as connection:
        connection.execute(sa.text("VACUUM (ANALYZE)"))
    engine.dispose()
    print(f"vacuumed in {time.perf_counter() - started:.1f} s")


def create_token(env: dict[str, str]) -> str:
    """An API token for the bench user, made by the CLI as a person would (it is the last line printed)."""
    done = subprocess.run([sys.executable, "-m", "flask", "tokens", "create", EMAIL, "--name", "bench"],
                          cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1].strip()


def api_post(
    root: str, token: str, path: str, body: dict[str, object], prefer: str | None = None
) -> tuple[float, dict[str, object]]:
    """Milliseconds for one API POST, read to the end, and its JSON answer (empty for a 204)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if prefer:
        headers["Prefer"] = prefer
    request = urllib.request.Request(f"{root}/api/v1{path}", json.dumps(body).encode(), method="POST",
                                     headers=headers)
    start = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        data = response.read()
        assert response.status in (200, 201, 204), (path, response.status)
    took = (time.perf_counter() - start) * 1000
    return took, json.loads(data) if data else {}


def post_steps(root: str, token: str, prefer: str | None = None) -> dict[int, list[float]]:
    """Start API_RUNS runs, post API_STEPS steps to each; each step number's times over the runs."""
    run_ids = [str(api_post(root, token, "/runs", {"pipeline": "Live", "input": f"live run {i}",
                                                     "model": "gpt-4o"})[1]["id"]) for i in range(API_RUNS)]
    times: dict[int, list[float]] = {}
    rng = random.Random(13)
    for order in range(API_STEPS):
        for run_id in run_ids:
            took, _ = api_post(root, token, f"/runs/{run_id}/steps", {
                "agentId": f"agent-{order}", "agentName": f"Agent {order}", "stepOrder": order,
                "output": posted_step(rng, order)}, prefer)
            times.setdefault(order + 1, []).append(took)
    return times


def main() -> None:
    with scratch_database("0004") as (url, env, user_id):
        big_id, small_id = seed(url, user_id)
        migration = migrate_to_head(env, url)
        print(f"migrated to head (backfills included) in {migration:.1f} s")
        vacuum(url)
        token = create_token(env)
        with served(env) as (root, opener):
            big_tab = timed(opener, f"{root}/artifacts/{big_id}?tab=step-1", HX, REPEAT)
            small_tab = timed(opener, f"{root}/artifacts/{small_id}?tab=step-1", HX, REPEAT)
            huge_tab = timed(opener, f"{root}/artifacts/{big_id}?tab=step-2", HX, REPEAT)
            steps = post_steps(root, token)
            minimal = post_steps(root, token, prefer="return=minimal")
        base = median(small_tab)
        first = median(steps[1])
        rows = [
            "| request | median | p95 | × baseline |", "|---|---:|---:|---:|",
            report("2 KB step's tab in R_big (beside a 20 MB step)", big_tab, f" {median(big_tab) / base:.1f} |"),
            report("2 KB step's tab in R_small (no big step)", small_tab, " 1.0 |"),
            report("R_big's 20 MB step's tab (first 64 KB rendered)", huge_tab, f" {median(huge_tab) / base:.1f} |"),
            report("POST step 1 to a running run", steps[1], " 1.0 |"),
            report("POST step 50", steps[50], f" {median(steps[50]) / first:.1f} |"),
            report(f"POST step {API_STEPS}", steps[API_STEPS], f" {median(steps[API_STEPS]) / first:.1f} |"),
            report("POST step 1, Prefer: return=minimal", minimal[1], f" {median(minimal[1]) / first:.1f} |"),
            report("POST step 50, Prefer: return=minimal", minimal[50], f" {median(minimal[50]) / first:.1f} |"),
            report(f"POST step {API_STEPS}, Prefer: return=minimal", minimal[API_STEPS],
                   f" {median(minimal[API_STEPS]) / first:.1f} |"),
        ]
        print("\n".join(rows))
        print(f"\nmigration to head: {migration:.1f} s; tab baseline: R_small's tab; step baseline: step 1")


if __name__ == "__main__":
    sys.exit(main())
