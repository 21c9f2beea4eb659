"""Benchmark: exporting every run of a user with 110,000 runs (issue 15, point 6), over real HTTP.

Usage (PostgreSQL; the role must be allowed to create databases):
    BENCH_DATABASE_URL=postgresql://USER:PASS@127.0.0.1/postgres .venv/bin/python bench/export.py

It bulk-inserts, at head, one user's 110,000 runs (five pipelines, three models, 10% failed, 1%
still running, which an export leaves out), each with an input of about 130 characters, variables,
tags and metadata, three steps of about 380 characters of varied words (each with its model,
tokens, cost and times) and a final output of about 190 characters: about 2.8 KB a line of JSONL,
305 MB in all, as in the issue's measurement (306 MB). The search index is not filled (an export does not read
it); the summaries are recounted. Then VACUUM ANALYZE.

It serves the app with gunicorn started with gunicorn.conf.py (its timeout, workers and limits as
deployed; BENCH_TIMEOUT=N lowers the worker timeout to N s), through bench/counted_wsgi.py, which
counts each export's SQL statements and the worker's peak RSS. From this process it downloads
/artifacts/export?format=jsonl and ?format=csv ATTEMPTS times each, to the end, and prints per
attempt: seconds, bytes, lines, whether the file is complete (all the finished runs there, and for
JSONL a summary line that says so when the code has one), statements and the worker's peak RSS.
Then `flask runs export` once, timed. Nothing leaves 127.0.0.1. BENCH_RUNS=2000 makes a quick try
of the script.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from harness import EMAIL, ROOT, flask, scratch_database, served

RUNS = int(os.environ.get("BENCH_RUNS", 110_000))
ATTEMPTS = int(os.environ.get("BENCH_ATTEMPTS", 3))
# BENCH_STEP_REPEAT=N makes each step's output N times as long (its words repeated): large runs, for
# an export's memory (BENCH_RUNS=600 BENCH_STEP_REPEAT=1000: about 1.1 MB a run, 660 MB in all).
STEP_REPEAT = int(os.environ.get("BENCH_STEP_REPEAT", 1))
# BENCH_TIMEOUT=5 serves with gunicorn's worker timeout shorter than an export takes (`--timeout`).
TIMEOUT = os.environ.get("BENCH_TIMEOUT")
PIPELINES = ["Code review", "Research brief", "Triage", "Translation", "Support reply"]
MODELS = ["gpt-4o-2024-08-06", "claude-sonnet-4-5", "gemini-2.5-flash"]
# 1,728 made-up words: outputs differ run to run and step to step, compressing as little as model output.
VOCABULARY = ["".join(parts) for parts in itertools.product(
    ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "zu", "fi"], repeat=3)]


def words(count: int, seed: str) -> str:
    """SQL for `count` vocabulary words chosen by the expression `seed` (an integer)."""
    chosen = f"1 + abs((CAST({seed} AS bigint) * 7919 + k * 104729) % 1728)"
    return f"(SELECT string_agg((CAST(:words AS text[]))[{chosen}], ' ') FROM generate_series(1, {count}) AS k)"


def seed(url: str, user_id: str) -> int:
    """Bulk-insert the runs and their steps at head; how many are finished (what an export holds)."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        pipeline_ids = [connection.execute(sa.text(
            "INSERT INTO pipelines (id, user_id, name, created_at) VALUES (gen_random_uuid()::text, :u, :n, now()) "
            "RETURNING id"), {"u": user_id, "n": name}).scalar_one() for name in PIPELINES]
        started = time.perf_counter()
        connection.execute(sa.text(f"""
            INSERT INTO pipeline_runs (
                id, pipeline_id, user_id, status, name, tags, metadata, input, variables, final_output,
                artifact_data, model, input_tokens, output_tokens, cost, cost_source, error, created_at,
                completed_at, listed_at, total_tokens, sort_cost, sort_duration_ms)
            SELECT id, pipeline_id, :u, status, 'Review change ' || n, tags, metadata, input, variables,
                   CASE WHEN status = 'completed' THEN final END,
                   CASE WHEN status <> 'running' THEN jsonb_build_object('finalOutput', final) END,
                   model, tokens_in, tokens_out, cost, cost_source,
                   CASE WHEN status = 'failed' THEN 'Timeout: step 3 exceeded 120 s' END,
                   created, completed, coalesce(completed, created), tokens_in + tokens_out,
                   coalesce(cost, -0.000000000001),
                   CASE WHEN completed IS NULL THEN -1 ELSE 42000 END
            FROM (
                SELECT n, gen_random_uuid()::text AS id, (CAST(:pipelines AS text[]))[1 + n % 5] AS pipeline_id,
                       CASE WHEN n % 100 = 1 THEN 'running' WHEN n % 10 = 0 THEN 'failed' ELSE 'completed' END
                           AS status,
                       CASE WHEN n % 3 = 0 THEN ARRAY['nightly', 'eval'] WHEN n % 3 = 1 THEN ARRAY['adhoc'] END
                           AS tags,
                       jsonb_build_object('env', 'prod', 'git.sha', substr(md5(n::text), 1, 7)) AS metadata,
                       'Review change ' || n || E' of the pagination module.\\n\\nFocus: ' || {words(12, "n")}
                           AS input,
                       jsonb_build_object('audience', 'engineers', 'depth', n % 4, 'draft', n % 2 = 0) AS variables,
                       '# Summary ' || n || E'\\n\\n' || {words(24, "n * 3")} AS final,
                       (CAST(:models AS text[]))[1 + n % 3] AS model,
                       3000 + n % 5000 AS tokens_in, 600 + n % 700 AS tokens_out,
                       CASE WHEN n % 100 = 1 THEN NULL ELSE 0.000010000000 * (1 + n % 997) END AS cost,
                       CASE WHEN n % 100 = 1 THEN NULL ELSE 'computed' END AS cost_source,
                       now() - n * interval '1 minute' - interval '42 seconds' AS created,
                       CASE WHEN n % 100 = 1 THEN NULL ELSE now() - n * interval '1 minute' END AS completed
                FROM generate_series(1, :runs) AS n
            ) AS run
        """), {"pipelines": pipeline_ids, "u": user_id, "words": VOCABULARY, "models": MODELS, "runs": RUNS})
        connection.execute(sa.text(f"""
            INSERT INTO pipeline_run_steps (
                run_id, step_order, agent_id, agent_name, output, status, model, input_tokens, output_tokens,
                cost, cost_source, started_at, completed_at)
            SELECT r.id, s, 'agent-' || s, (ARRAY['Researcher', 'Analyst', 'Writer'])[1 + s],
                   '## Step ' || s || E'\\n\\n' || repeat({words(52, "hashtext(r.id) + s")}, :repeat),
                   CASE WHEN r.status = 'failed' AND s = 2 THEN 'failed' ELSE 'completed' END,
                   r.model, 1000 + s, 200 + s, 0.000003300000 * (1 + s), 'computed',
                   r.created_at + s * interval '14 seconds', r.created_at + (s + 1) * interval '14 seconds'
            FROM pipeline_runs AS r CROSS JOIN generate_series(0, 2) AS s
        """), {"words": VOCABULARY, "repeat": STEP_REPEAT})
        finished = connection.execute(sa.text(
            "SELECT count(*) FROM pipeline_runs WHERE status IN ('completed', 'failed')")).scalar_one()
        print(f"inserted {RUNS:,} runs ({RUNS * 3:,} steps) in {time.perf_counter() - started:.1f} s", flush=True)
    engine.dispose()
    return int(finished)


def recount_and_vacuum(env: dict[str, str], url: str) -> None:
    """The summaries recounted as the writer keeps them (`flask runs export` reads its total there),
    then VACUUM ANALYZE, so autovacuum neither runs during the timings nor holds the database."""
    subprocess.run([sys.executable, "-c", "from artifacts_app import create_app, rollups\n"
                    "from artifacts_app.extensions import db\n"
                    "app = create_app()\n"
                    "with app.app_context():\n    rollups.rebuild()\n    db.session.commit()"],
                   cwd=ROOT, env=env, check=True)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text("VACUUM (ANALYZE)"))
    engine.dispose()


def download(opener: object, url: str) -> tuple[float, int, int, bytes, str]:
    """Seconds, bytes, lines and the last line of a download read to its end, and how it ended."""
    started = time.perf_counter()
    size, lines, last, ended = 0, 0, b"", "ok"
    try:
        with opener.open(url, timeout=600) as response:  # type: ignore[attr-defined]
            while chunk := response.read(1 << 20):
                size += len(chunk)
                lines += chunk.count(b"\n")
                last = (last + chunk)[-(1 << 16):]
    except (http.client.IncompleteRead, ConnectionError, OSError) as error:
        ended = f"cut ({type(error).__name__})"
    return time.perf_counter() - started, size, lines, last.rstrip(b"\n").rpartition(b"\n")[2], ended


def completeness(kind: str, lines: int, last: bytes, ended: str, finished: int) -> str:
    """Whether the download holds every finished run (and, for JSONL, a summary line saying so)."""
    if ended != "ok":
        return f"NO: {ended}"
    if kind == "csv":
        return "yes" if lines == finished + 1 else f"NO: {lines - 1:,} runs"
    try:
        summary = json.loads(last).get("export")
    except ValueError:
        summary = None
    if summary is None:
        return "yes (no summary line)" if lines == finished else f"NO: {lines:,} runs, no summary line"
    if lines - 1 == finished and summary.get("runs") == finished and summary.get("complete") is True:
        return "yes (summary line)"
    return f"NO: {lines - 1:,} runs, summary {summary}"


def line_count(path: Path) -> int:
    with path.open("rb") as source:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: source.read(1 << 20), b""))


def main() -> None:
    with scratch_database("head") as (url, env, _user_id), tempfile.TemporaryDirectory() as scratch:
        finished = seed(url, _user_id)
        recount_and_vacuum(env, url)
        counts = Path(scratch) / "counts.jsonl"
        log = Path(scratch) / "gunicorn.log"
        served_env = {**env, "BENCH_COUNTS": str(counts), "PYTHONPATH": str(ROOT / "bench")}
        rows = ["| format | attempt | seconds | MB | lines | complete | statements | worker peak RSS |",
                "|---|---:|---:|---:|---:|---|---:|---:|"]
        options = ("--config", "gunicorn.conf.py", "--error-logfile", str(log),
                   *(("--timeout", TIMEOUT) if TIMEOUT else ()))
        with served(served_env, options, "counted_wsgi:app") as (root, opener):
            for kind in ("jsonl", "csv"):
                for attempt in range(1, ATTEMPTS + 1):
                    before = counts.read_text().count("\n") if counts.exists() else 0
                    seconds, size, lines, last, ended = download(opener, f"{root}/artifacts/export?format={kind}")
                    time.sleep(0.5)  # the worker writes its counts on close
                    written = counts.read_text().splitlines()[before:] if counts.exists() else []
                    cost = json.loads(written[0]) if written else None
                    memory = (f"{cost['peak_kb'] / 1024:.0f} MB (from {cost['rss_before_kb'] / 1024:.0f})"
                              if cost else "—")
                    rows.append(
                        f"| {kind} | {attempt} | {seconds:.1f} | {size / 1e6:.1f} | {lines:,} | "
                        f"{completeness(kind, lines, last, ended, finished)} | "
                        f"{cost['statements'] if cost else '—'} | {memory} |")
                    print(rows[-1], flush=True)
        timeouts = log.read_text().count("WORKER TIMEOUT")
        target = Path(scratch) / "cli.jsonl"
        started = time.perf_counter()
        flask(env, "runs", "export", "--user", EMAIL, "--output", str(target))
        cli = time.perf_counter() - started
        print("\n".join(rows))
        print(f"\nfinished runs: {finished:,}; worker timeouts in gunicorn's log: {timeouts}")
        print(f"flask runs export: {cli:.1f} s, {target.stat().st_size / 1e6:.1f} MB, {line_count(target):,} lines")


if __name__ == "__main__":
    sys.exit(main())
