"""Benchmark: the list, its totals and a step tab for a user with 100,000 runs, over real HTTP.

Usage (PostgreSQL; the role must be allowed to create databases):
    BENCH_DATABASE_URL=postgresql://USER:PASS@127.0.0.1/postgres .venv/bin/python bench/list_and_tabs.py

It creates a scratch database, migrates it, bulk-inserts 100,000 runs for one user (10% failed, one
run with a 20 MB artifact), serves the app with gunicorn (2 workers) on 127.0.0.1, and times each
request 50 times from this process. It prints medians and 95th percentiles, and the plan of the
page query. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUNS = 100_000
REPEAT = 50


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed(opener: urllib.request.OpenerDirector, url: str, headers: dict[str, str] | None = None) -> list[float]:
    samples = []
    for _ in range(REPEAT):
        request = urllib.request.Request(url, headers=headers or {})
        start = time.perf_counter()
        with opener.open(request) as response:
            response.read()
            assert response.status == 200, (url, response.status)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def report(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"| {name} | {statistics.median(ordered):.1f} ms | {p95:.1f} ms |"


def main() -> None:
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if not base:
        sys.exit("set BENCH_DATABASE_URL to a PostgreSQL server where the role may create databases")
    from tests.databases import create_postgres_database, drop_postgres_database

    base = sa.engine.make_url(base).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    url = create_postgres_database(base, f"artifacts_bench_{uuid.uuid4().hex[:8]}")
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench", "INSECURE_COOKIES": "1"}
    server = None
    try:
        subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        subprocess.run([sys.executable, "-m", "flask", "users", "create", "bench@example.com", "--password-stdin"],
                       cwd=ROOT, env=env, input=b"bench-password\n", check=True, capture_output=True)
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            user_id = connection.execute(sa.text("SELECT id FROM users")).scalar_one()
            pipeline_id = str(uuid.uuid4())
            connection.execute(sa.text("INSERT INTO pipelines (id, user_id, name, created_at) VALUES (:p, :u, 'Bulk', now())"),
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
        with engine.begin() as connection:
            connection.execute(sa.text("ANALYZE"))
        engine.dispose()

        port = free_port()
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "wsgi:app"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        root = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{root}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        login_page = opener.open(f"{root}/login").read().decode()
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
        opener.open(f"{root}/login", urllib.parse.urlencode(
            {"csrf_token": token, "email": "bench@example.com", "password": "bench-password"}).encode())
        first = opener.open(f"{root}/artifacts").read().decode()
        cursor = re.search(r'id="load-more"[^>]*hx-get="([^"]+)"', first).group(1).replace("&amp;", "&")
        hx = {"HX-Request": "true"}
        # A cursor 50,000 rows deep: keyset pages cost the same at any depth.
        deep = opener.open(f"{root}/artifacts?limit=100").read().decode()
        for _ in range(499):
            deep_cursor = re.search(r'id="load-more"[^>]*hx-get="([^"]+)"', deep).group(1).replace("&amp;", "&")
            deep = opener.open(urllib.request.Request(f"{root}{deep_cursor}", headers=hx)).read().decode()
        deep_cursor = re.search(r'id="load-more"[^>]*hx-get="([^"]+)"', deep).group(1).replace("&amp;", "&")
        rows = [
            "| request | median | p95 |",
            "|---|---:|---:|",
            report("GET /artifacts (full page, first 25)", timed(opener, f"{root}/artifacts")),
            report("next 25 rows (htmx fragment, page 2)", timed(opener, f"{root}{cursor}", hx)),
            report("next 100 rows after 50,000 (htmx fragment)", timed(opener, f"{root}{deep_cursor}", hx)),
            report("totals over 100,000 runs (htmx fragment)", timed(opener, f"{root}/artifacts/totals?status=all", hx)),
            report("small step tab of a run with a 20 MB step", timed(opener, f"{root}/artifacts/{huge_id}?tab=step-2", hx)),
            report("20 MB step's tab (first 64 KB rendered, cached)", timed(opener, f"{root}/artifacts/{huge_id}?tab=step-1", hx)),
        ]
        print("\n".join(rows))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        drop_postgres_database(base, url)


if __name__ == "__main__":
    main()
