"""What one run costs the app and the database, without HTTP: the WSGI app called directly (no
gunicorn, no other process on the cores), on one database connection, so the CPU a run is steady
enough to compare two versions of the code a few percent apart (bench/ingest.py's wall clock moves
by a fifth with the host).

BENCH_DATABASE_URL=postgresql+psycopg://USER:PASS@127.0.0.1/postgres .venv/bin/python bench/ingest_inprocess.py
(MODE=single|batch, N runs; PROFILE=1 prints cProfile's top TOP functions (40) by SORT (cumulative, or tottime).)
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from werkzeug.test import EnvironBuilder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import scratch_database
from ingest import BATCH_SIZE, cpu_seconds, make_token, run_body

MODE = os.environ.get("MODE", "single")
N = int(os.environ.get("N", "3000"))
WARM_UP = 200


def main() -> None:
    with scratch_database("head") as (url, env, user_id):
        os.environ.update(env)
        token = make_token(url, user_id)
        from artifacts_app import create_app
        from artifacts_app.extensions import db

        app = create_app()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                   "Accept-Encoding": "gzip, deflate, br"}

        def call(path: str, body: str) -> None:
            environ = EnvironBuilder(path=path, method="POST", data=body, headers=headers).get_environ()
            status: list[str] = []
            answer = b"".join(app.wsgi_app(environ, lambda line, _headers, _info=None: status.append(line)))
            assert status[0][:3] in ("200", "201"), (status, answer[:300])

        if MODE == "single":
            requests = [("/api/v1/runs", json.dumps(run_body(i))) for i in range(WARM_UP + N)]
            warm, measured, runs = requests[:WARM_UP], requests[WARM_UP:], N
        else:
            requests = [("/api/v1/runs/batch", json.dumps({"runs": [run_body(start + i) for i in range(BATCH_SIZE)]}))
                        for start in range(0, BATCH_SIZE + N, BATCH_SIZE)]
            warm, measured, runs = requests[:1], requests[1:], len(requests[1:]) * BATCH_SIZE
        for path, body in warm:
            call(path, body)
        with app.app_context():
            backends = set(db.session.execute(sa.text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND backend_type = 'client backend'"
            )).scalars())
            db.session.rollback()
        profile = cProfile.Profile() if os.environ.get("PROFILE") else None
        database_before = sum(cpu_seconds(backends).values())
        started, own = time.perf_counter(), time.process_time()
        if profile:
            profile.enable()
        for path, body in measured:
            call(path, body)
        if profile:
            profile.disable()
        took, app_cpu = time.perf_counter() - started, time.process_time() - own
        database_cpu = sum(cpu_seconds(backends).values()) - database_before
        print(f"{MODE}: {runs / took:.0f} runs/s; CPU a run: app {app_cpu * 1000 / runs:.3f} ms, "
              f"database {database_cpu * 1000 / runs:.3f} ms ({len(backends)} connection)")
        if profile:
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out).sort_stats(os.environ.get("SORT", "cumulative"))
            stats.print_stats(int(os.environ.get("TOP", "40")))
            print(out.getvalue())


if __name__ == "__main__":
    main()
