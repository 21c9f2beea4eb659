"""Ingestion throughput on PostgreSQL: finished 5-step runs recorded through POST /api/v1/runs by 4
clients at once, through POST /api/v1/runs/batch (500 a request), and the same rows bulk-inserted as
the reference, against gunicorn started with gunicorn.conf.py on 127.0.0.1.

BENCH_DATABASE_URL=postgresql://USER:PASS@127.0.0.1/postgres .venv/bin/python bench/ingest.py
(SINGLE_RUNS, BATCH_RUNS, WEB_CONCURRENCY to change the sizes; the defaults are in the README;
CLIENT_CPU=1 to keep the clients on core 1 and the server on the others while the single endpoint is measured.)
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import secrets
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, gunicorn, scratch_database

CLIENTS = 4
SINGLE_RUNS = int(os.environ.get("SINGLE_RUNS", "2000"))
BATCH_RUNS = int(os.environ.get("BATCH_RUNS", "10000"))
BATCH_SIZE = 500
WORKERS = os.environ.get("WEB_CONCURRENCY", "4")
# CLIENT_CPU=1: the clients on that core, the server (gunicorn, its PostgreSQL backends) on the others,
# as executors would not share the server's machine; unset, they all share every core.
CLIENT_CPU = os.environ.get("CLIENT_CPU") or None
STEPS = 5
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "the", "model", "writes",
         "a", "careful", "review", "of", "it"]


def text(seed: int, words: int) -> str:
    return " ".join(WORDS[(seed + i * 7) % len(WORDS)] for i in range(words))


def run_body(number: int) -> dict[str, object]:
    """A finished run with 5 steps of about 500 characters, each with its usage (priced by the server)."""
    finished = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=number)
    steps = [{"agentId": f"agent-{i}", "agentName": f"Agent {i}", "output": text(number + i, 90), "stepOrder": i,
              "inputTokens": 400 + i, "outputTokens": 120 + i,
              "startedAt": (finished - timedelta(seconds=10 - 2 * i)).isoformat(),
              "completedAt": (finished - timedelta(seconds=9 - 2 * i)).isoformat()} for i in range(STEPS)]
    return {"pipeline": f"pipeline-{number % 5}", "input": text(number, 40), "status": "completed",
            "model": "gpt-4o", "tags": ["bench"], "steps": steps, "finalOutput": text(number + 3, 60),
            "createdAt": (finished - timedelta(seconds=10)).isoformat(), "completedAt": finished.isoformat()}


def make_token(url: str, user_id: str) -> str:
    clear = "art_" + secrets.token_urlsafe(32)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO api_tokens (id, user_id, name, token_hash, prefix, created_at) "
            "VALUES (:id, :user_id, 'bench', :hash, :prefix, now())"
        ), {"id": str(uuid.uuid4()), "user_id": user_id, "hash": hashlib.sha256(clear.encode()).hexdigest(),
            "prefix": clear[:12]})
    engine.dispose()
    return clear


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: set[int]) -> dict[int, float]:
    """User and system CPU seconds each process has used so far (Linux /proc)."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone
        used[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return used


def busy_fraction(seconds: float) -> float:
    """How busy the machine's CPUs were over the next `seconds` (Linux /proc/stat), 0 to 1."""

    def sample() -> tuple[int, int]:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all, idle + iowait

    total, idle = sample()
    time.sleep(seconds)
    total_after, idle_after = sample()
    return 1 - (idle_after - idle) / max(total_after - total, 1)


def settle(quiet: float = 0.15, most_seconds: float = 90.0) -> None:
    """Wait until the machine is quiet (at most `quiet` busy for two seconds in a row), or most_seconds.
    What the previous measurement left running (the checkpoint after a database is dropped, autovacuum)
    otherwise lands on the next one, and made a round's "after" up to 1.6 times slower than the next."""
    started, calm = time.monotonic(), 0
    while calm < 2 and time.monotonic() - started < most_seconds:
        calm = calm + 1 if busy_fraction(1.0) <= quiet else 0
    print(f"settled in {time.monotonic() - started:.0f} s", file=sys.stderr)


@contextmanager
def pinned_apart(master: int, url: str) -> Iterator[None]:
    """With CLIENT_CPU set, inside: this process (the clients' threads start from it) on that core,
    every thread of the server's processes on the other cores; every thread back on every core after,
    so the batch and bulk measurements are as without it."""
    if CLIENT_CPU is None:
        yield
        return
    every = set(range(os.cpu_count() or 1))
    client = {int(CLIENT_CPU)}
    app, database = server_pids(master, url)
    tasks = [int(task.name) for pid in app | database for task in Path(f"/proc/{pid}/task").iterdir()]
    for task in tasks:
        os.sched_setaffinity(task, every - client)
    os.sched_setaffinity(0, client)
    try:
        yield
    finally:
        os.sched_setaffinity(0, every)
        for task in tasks:
            with suppress(ProcessLookupError):  # a thread that has ended since
                os.sched_setaffinity(task, every)


def server_pids(master: int, url: str) -> tuple[set[int], set[int]]:
    """gunicorn and its workers; the PostgreSQL backends serving this database (not the one asking)."""
    workers = {int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()}
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        backends = set(connection.execute(sa.text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )).scalars())
    return workers | {master}, backends


@contextmanager
def cpu_used(master: int, url: str) -> Iterator[list[float]]:
    """The CPU seconds the server used inside, in the list yielded: gunicorn's (the app's), then its
    PostgreSQL backends'; load from other processes on the machine slows the wall clock, not this."""
    app_before, database_before = server_pids(master, url)
    before = cpu_seconds(app_before | database_before)
    used: list[float] = []
    yield used
    app_after, database_after = server_pids(master, url)
    for pids in (app_before | app_after, database_before | database_after):
        after = cpu_seconds(pids)
        used.append(sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items()))


def serving(env: dict[str, str]) -> AbstractContextManager[tuple[str, int]]:
    """gunicorn with the project's gunicorn.conf.py (WEB_CONCURRENCY workers) on a free port: (root, pid)."""
    return gunicorn(["--config", str(ROOT / "gunicorn.conf.py"), "wsgi:app"], {**env, "WEB_CONCURRENCY": WORKERS},
                    stop_seconds=40)


def run_count(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        count = connection.execute(sa.text("SELECT count(*) FROM pipeline_runs")).scalar_one()
    engine.dispose()
    return int(count)


def single(root: str, token: str, first: int, runs: int) -> float:
    """Runs a second through POST /api/v1/runs, CLIENTS clients at once, each on one kept-alive
    connection (http.client: the clients share the server's 2 cores, and requests' own CPU a call,
    about 0.8 ms, was a fifth of the server's). They ask for compressed answers, as HTTP libraries do."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
               "Accept-Encoding": "gzip, deflate, br"}
    share = runs // CLIENTS
    bodies = [[json.dumps(run_body(first + c * share + i)).encode() for i in range(share)] for c in range(CLIENTS)]
    address = urllib.parse.urlsplit(root)

    def client(mine: list[bytes]) -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
        try:
            for body in mine:
                connection.request("POST", "/api/v1/runs", body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                assert response.status == 201, answer[:500]
        finally:
            connection.close()

    started, own = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, bodies))
    took = time.perf_counter() - started
    print(f"single: the clients' own CPU {(time.process_time() - own) * 1000 / (share * CLIENTS):.2f} ms a run, "
          f"load average {os.getloadavg()[0]:.1f}", file=sys.stderr)
    return share * CLIENTS / took


def batch(root: str, token: str, first: int) -> float | None:
    """Runs a second through POST /api/v1/runs/batch, BATCH_SIZE a request, CLIENTS clients at once;
    None where the endpoint does not exist."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if requests.post(f"{root}/api/v1/runs/batch", data="{}", headers=headers, timeout=60).status_code in (404, 405):
        return None
    batches = [json.dumps({"runs": [run_body(first + start + i) for i in range(BATCH_SIZE)]})
               for start in range(0, BATCH_RUNS, BATCH_SIZE)]

    def client(body: str) -> None:
        response = requests.post(f"{root}/api/v1/runs/batch", data=body, headers=headers, timeout=300)
        assert response.status_code == 200, response.text[:500]
        assert all(item["status"] == 201 for item in response.json()["results"]), response.text[:500]

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, batches))
    return len(batches) * BATCH_SIZE / (time.perf_counter() - started)


def bulk(url: str, user_id: str, first: int, *, searchable: bool = False) -> tuple[float, float]:
    """Runs a second, and CPU milliseconds a run (this process and its PostgreSQL backend), for a
    bulk insert of the same rows (runs and their steps, priced as the server would, no summaries or
    search index): one executemany per table in one transaction, the reference. `searchable` writes
    each run's search vector too, computed in the INSERT as the app does (the row as the app stores it)."""
    pipelines = {f"pipeline-{n}": str(uuid.uuid4()) for n in range(5)}
    vector = ", search_vector" if searchable else ""
    vector_value = ", run_search_append(''::tsvector, CAST(:parts AS text[]))" if searchable else ""
    runs, steps = [], []
    for number in range(first, first + BATCH_RUNS):
        body = run_body(number)
        run_id = str(uuid.uuid4())
        runs.append({"id": run_id, "pipeline_id": pipelines[str(body["pipeline"])], "user_id": user_id,
                     "status": "completed", "name": str(body["input"])[:80], "tags": ["bench"],
                     "input": body["input"], "final_output": body["finalOutput"],
                     "artifact_data": json.dumps({"finalOutput": body["finalOutput"]}), "model": "gpt-4o",
                     "input_tokens": 2010, "output_tokens": 610, "cost": "0.011125", "cost_source": "computed",
                     "created_at": body["createdAt"], "completed_at": body["completedAt"],
                     "listed_at": body["completedAt"], "total_tokens": 2620, "sort_cost": "0.011125",
                     "sort_duration_ms": 10000,
                     "parts": [str(body["input"])[:80], body["input"], body["finalOutput"],
                               *(step["output"] for step in body["steps"])]})  # type: ignore[attr-defined]
        for step in body["steps"]:  # type: ignore[attr-defined]
            steps.append({"run_id": run_id, "step_order": step["stepOrder"], "agent_id": step["agentId"],
                          "agent_name": step["agentName"], "output": step["output"], "status": "completed",
                          "input_tokens": step["inputTokens"], "output_tokens": step["outputTokens"],
                          "cost": "0.002225", "cost_source": "computed", "started_at": step["startedAt"],
                          "completed_at": step["completedAt"]})
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO pipelines (id, user_id, name, created_at) VALUES "
                                   "(:id, :user_id, :name, now())"),
                           [{"id": i, "user_id": user_id, "name": f"bulk-{n}-{searchable}"}
                            for n, i in pipelines.items()])
    started, own = time.perf_counter(), time.process_time()
    with engine.begin() as connection:
        backend = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        backend_before = cpu_seconds({backend}).get(backend, 0.0)
        connection.execute(sa.text(
            "INSERT INTO pipeline_runs (id, pipeline_id, user_id, status, name, tags, input, final_output, "
            "artifact_data, model, input_tokens, output_tokens, cost, cost_source, created_at, completed_at, "
            f"listed_at, total_tokens, sort_cost, sort_duration_ms{vector}) VALUES (:id, :pipeline_id, :user_id, "
            ":status, :name, :tags, :input, :final_output, CAST(:artifact_data AS jsonb), :model, :input_tokens, "
            ":output_tokens, :cost, :cost_source, :created_at, :completed_at, :listed_at, :total_tokens, "
            f":sort_cost, :sort_duration_ms{vector_value})"), runs)
        connection.execute(sa.text(
            "INSERT INTO pipeline_run_steps (run_id, step_order, agent_id, agent_name, output, status, "
            "input_tokens, output_tokens, cost, cost_source, started_at, completed_at) VALUES (:run_id, "
            ":step_order, :agent_id, :agent_name, :output, :status, :input_tokens, :output_tokens, :cost, "
            ":cost_source, :started_at, :completed_at)"), steps)
        backend_cpu = cpu_seconds({backend}).get(backend, 0.0) - backend_before
    took = time.perf_counter() - started
    cpu = backend_cpu + time.process_time() - own
    engine.dispose()
    return BATCH_RUNS / took, cpu * 1000 / BATCH_RUNS


def per_run(cpu: list[float], runs: int) -> str:
    """CPU milliseconds a run: the total, then the app's and the database's parts."""
    app, database = (seconds * 1000 / runs for seconds in cpu)
    return f"{app + database:.2f} ({app:.2f} + {database:.2f})"


def main() -> None:
    with scratch_database("head") as (url, env, user_id):
        token = make_token(url, user_id)
        with serving(env) as (root, master):
            # Warm up every worker (imports, connections) before measuring.
            single(root, token, 10_000_000, 40)
            with pinned_apart(master, url):
                settle()
                with cpu_used(master, url) as single_cpu:
                    single_rate = single(root, token, 0, SINGLE_RUNS)
            settle()
            with cpu_used(master, url) as batch_cpu:
                batch_rate = batch(root, token, 1_000_000)
        settle()
        bulk_rate, bulk_cpu = bulk(url, user_id, 2_000_000)
        searchable_rate, searchable_cpu = bulk(url, user_id, 3_000_000, searchable=True)
        stored = run_count(url)
    print("| how | runs/s (wall clock) | server CPU ms a run (app + database) |")
    print("|---|---:|---:|")
    print(f"| single POST /api/v1/runs, {CLIENTS} clients, {SINGLE_RUNS} runs | {single_rate:.0f} | "
          f"{per_run(single_cpu, SINGLE_RUNS)} |")
    if batch_rate is None:
        print("| POST /api/v1/runs/batch | (no such endpoint) | |")
    else:
        print(f"| POST /api/v1/runs/batch, {CLIENTS} clients, {BATCH_RUNS} runs, {BATCH_SIZE} a request | "
              f"{batch_rate:.0f} ({batch_rate / bulk_rate:.2f} of bulk) | {per_run(batch_cpu, BATCH_RUNS)} |")
    print(f"| bulk insert of the same rows, {BATCH_RUNS} runs | {bulk_rate:.0f} | {bulk_cpu:.2f} |")
    print(f"| the same, with each run's search vector | {searchable_rate:.0f} | {searchable_cpu:.2f} |")
    if batch_rate is not None:
        print(f"batch / bulk with search vectors: {batch_rate / searchable_rate:.2f}")
    print(f"runs stored: {stored}")


if __name__ == "__main__":
    main()
