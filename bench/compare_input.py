"""Benchmark: what one request of the comparison and of a run's page costs when the runs' inputs are 20 MB.

Usage (PostgreSQL; the role must be allowed to create databases):
    BENCH_DATABASE_URL=postgresql://USER:PASS@127.0.0.1/postgres .venv/bin/python bench/compare_input.py

In a scratch database at head it records two runs of one pipeline, each with a 20 MB input (random
words from 1,728 made-up ones, so it compresses about as little as real text) and two small steps,
and asks the app in this process (Flask's test client, logged in) for each of the comparison's
lazily loaded panels (htmx: the input pair, the final output pair, a step pair), the comparison's
full page, and a tab and the live update of one run's page. For each request: the median and 95th
percentile of REPEAT requests in milliseconds, and the bytes of the values one more such request
fetched from the database (tests/fetched.py measures every row that reaches Python).
"""

from __future__ import annotations

import itertools
import os
import random
import tempfile
import time

from harness import EMAIL, HX, PASSWORD, report, scratch_database

REPEAT = int(os.environ.get("BENCH_REPEAT", 20))
INPUT_CHARS = 20 * 1024 * 1024
VOCABULARY = ["".join(parts) for parts in itertools.product(
    ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "zu", "fi"], repeat=3)]


def words(rng: random.Random, chars: int) -> str:
    """About `chars` characters of random words, ten to a line."""
    lines, size = [], 0
    while size < chars:
        line = " ".join(rng.choice(VOCABULARY) for _ in range(10))
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)[:chars]


def main() -> None:
    with scratch_database("head") as (url, env, _):
        os.environ.update(env, INSTANCE_PATH=tempfile.mkdtemp(prefix="bench-instance-"))
        from artifacts_app import create_app, queries, recording
        from artifacts_app.extensions import db
        from tests.fetched import fetched_from
        from tests.http_helpers import log_in

        app = create_app()
        rng = random.Random(7)
        shared = words(rng, INPUT_CHARS)
        with app.app_context():
            user = queries.user_by_email(EMAIL)
            assert user is not None
            ids = []
            for index in range(2):
                text = shared[:1000] + f"\nchanged line {index}\n" + shared[1000 + 20:]
                steps = [{"agentId": "writer", "agentName": "Writer", "output": f"draft {index}", "stepOrder": 0}]
                run = recording.record_from_values(user, pipeline="Bench", input=text, steps=steps,
                                                   final_output=f"final {index}", model="gpt-4o")
                ids.append(run.id)
            db.session.commit()
            engine = db.engine
        old, new = ids
        requests = [
            ("compare: input pair (htmx)", f"/artifacts/compare?a={old}&b={new}&tab=input", HX),
            ("compare: final output pair (htmx)", f"/artifacts/compare?a={old}&b={new}&tab=final", HX),
            ("compare: step pair (htmx)", f"/artifacts/compare?a={old}&b={new}&tab=step-1-1", HX),
            ("compare: full page (final output pair)", f"/artifacts/compare?a={old}&b={new}", {}),
            ("run page: step tab (htmx)", f"/artifacts/{old}?tab=step-1", HX),
            ("run page: live update", f"/artifacts/{old}/live?steps=1", HX),
            ("run page: full page", f"/artifacts/{old}", {}),
        ]
        client = app.test_client()
        log_in(client, EMAIL, PASSWORD)
        print("| request | median | p95 | fetched per request |\n|---|---:|---:|---:|")
        for name, path, headers in requests:
            samples = []
            for _ in range(REPEAT):
                start = time.perf_counter()
                response = client.get(path, headers=headers)
                response.get_data()
                samples.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            with fetched_from(engine) as fetched:  # measured apart: measuring 40 MB takes time too
                client.get(path, headers=headers).get_data()
            print(report(name, samples, f" {fetched.total_bytes:,} bytes |"))
        with app.app_context():
            db.session.remove()
            engine.dispose()


if __name__ == "__main__":
    main()
