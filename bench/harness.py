"""What the benchmarks share: a scratch PostgreSQL database migrated to a revision, the app served by
gunicorn on 127.0.0.1, a logged-in HTTP client, and medians with 95th percentiles.

Runs are bulk-inserted at an older revision and then migrated to head, so the migrations' own
backfills (names, sort keys, summaries, the search index) fill in what the writer would have written.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from werkzeug.security import generate_password_hash

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EMAIL, PASSWORD = "bench@example.com", "bench-password"
HX = {"HX-Request": "true"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(opener: urllib.request.OpenerDirector, url: str, headers: dict[str, str] | None = None,
          repeat: int = 50) -> list[float]:
    """Milliseconds for each of `repeat` requests to `url`, each read to the end."""
    samples = []
    for _ in range(repeat):
        request = urllib.request.Request(url, headers=headers or {})
        start = time.perf_counter()
        with opener.open(request) as response:
            response.read()
            assert response.status == 200, (url, response.status)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def report(name: str, samples: list[float], extra: str = "") -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"| {name} | {statistics.median(ordered):.1f} ms | {p95:.1f} ms |{extra}"


def flask(env: dict[str, str], *args: str, stdin: bytes | None = None) -> None:
    subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, input=stdin, check=True,
                   capture_output=True)


@contextmanager
def scratch_database(revision: str) -> Iterator[tuple[str, dict[str, str], str]]:
    """A new database migrated to `revision` with one user: (url, the app's environment, user id)."""
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if not base:
        sys.exit("set BENCH_DATABASE_URL to a PostgreSQL server where the role may create databases")
    from tests.databases import create_postgres_database, drop_postgres_database

    base = sa.engine.make_url(base).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    url = create_postgres_database(base, f"artifacts_bench_{uuid.uuid4().hex[:8]}")
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench", "INSECURE_COOKIES": "1"}
    try:
        flask(env, "db", "upgrade", revision)
        # In SQL, with the columns users had from the first revision on: the app of today would
        # ask an older schema for columns it does not have yet.
        user_id = str(uuid.uuid4())
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO users (id, email, password_hash, session_token, created_at) "
                "VALUES (:id, :email, :hash, :session, now())"
            ), {"id": user_id, "email": EMAIL, "hash": generate_password_hash(PASSWORD),
                "session": secrets.token_urlsafe(32)})
        engine.dispose()
        yield url, env, user_id
    finally:
        drop_when_idle(base, url, drop_postgres_database)


def drop_when_idle(base: str, url: str, drop: Callable[[str, str], None]) -> None:
    """Drop the scratch database; autovacuum may still be on it after a bulk load, and a role that is
    not a superuser cannot end that session, so wait for it (up to five minutes: at 300,000 runs it
    took longer than one)."""
    for _ in range(150):
        try:
            drop(base, url)
            return
        except sa.exc.ProgrammingError:
            time.sleep(2)
    print(f"could not drop {url}; drop it by hand", file=sys.stderr)


def migrate_to_head(env: dict[str, str], url: str) -> float:
    """`flask db upgrade` (the backfills run here), then ANALYZE; the seconds the upgrade took."""
    started = time.perf_counter()
    flask(env, "db", "upgrade")
    took = time.perf_counter() - started
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("ANALYZE"))
    engine.dispose()
    return took


@contextmanager
def gunicorn(args: list[str], env: dict[str, str], stop_seconds: int = 20) -> Iterator[tuple[str, int]]:
    """gunicorn with these arguments, bound to a free port on 127.0.0.1: (its root URL, its pid)
    once /healthz answers."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), *args, "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    root = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(f"{root}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        yield root, server.pid
    finally:
        server.terminate()
        server.wait(timeout=stop_seconds)


@contextmanager
def served(
    env: dict[str, str], options: tuple[str, ...] = ("--workers", "2"), app: str = "wsgi:app"
) -> Iterator[tuple[str, urllib.request.OpenerDirector]]:
    """gunicorn (2 workers, or as `options` say) on 127.0.0.1 and an HTTP client logged in as the bench user."""
    with gunicorn([*options, app], env) as (root, _pid):
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        login_page = opener.open(f"{root}/login").read().decode()
        match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page)
        assert match, "no CSRF token on the login page"
        opener.open(f"{root}/login", urllib.parse.urlencode(
            {"csrf_token": match.group(1), "email": EMAIL, "password": PASSWORD}).encode())
        yield root, opener


def next_rows_url(page: str) -> str:
    """The load-more URL of a list page or fragment."""
    match = re.search(r'id="load-more"[^>]*hx-get="([^"]+)"', page)
    assert match, "no load-more row"
    return match.group(1).replace("&amp;", "&")
