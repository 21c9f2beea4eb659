"""The database goes away: with PostgreSQL stopped (or hung), every page, fragment and API call answers
503 within 5 s and says to retry, /healthz says the database is down, and when it comes back the app
serves again without a restart, stale pooled connections included.

The test starts its own PostgreSQL server (initdb into a temporary folder, pg_ctl on its own port) so
it may stop, freeze and restart it, and serves the app against it with real gunicorn (gunicorn.conf.py,
one worker, so every request meets the same connection pool) configured through the environment
alone: what is measured is the app's default timeouts.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import requests
import sqlalchemy as sa

from artifacts_app import config, recording, tokens
from artifacts_app.extensions import db
from artifacts_app.models import User
from tests import databases
from tests.conftest import dispose, make_app, migrate, truncate_all
from tests.factories import PASSWORD, make_run, make_user
from tests.http_helpers import IsolatedClient, csrf_from, log_in
from tests.servers import free_port, start_gunicorn, stop, wait_until_healthy

pytestmark = pytest.mark.postgres_only

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
APP_NAME = "artifacts-outage-test"  # how the app's sessions show in pg_stat_activity
EMAIL = "outage@example.com"
LIMIT_SECONDS = 5.0  # issue 15: every answer within 5 s while the database is away
START_TIMEOUT = 30.0
STEP_CHARS = 256 * 1024


def need(condition: bool, reason: str) -> None:
    """Skip outside CI when this machine cannot run a PostgreSQL server of its own; fail under CI."""
    if not condition:
        if databases.in_ci():
            pytest.fail(f"{reason} (CI=true: this test must run)")
        pytest.skip(reason)


@dataclass
class Cluster:
    """A PostgreSQL server of the test's own, in a temporary folder, on its own port."""

    root: Path
    port: int
    as_owner: list[str]  # runs a command as the user that owns the data (initdb refuses root)
    admin_password: str

    @property
    def data(self) -> Path:
        return self.root / "data"

    def run(self, tool: str, *args: str, timeout: float = 60) -> None:
        done = subprocess.run([*self.as_owner, str(PG_BIN / tool), *args], cwd=self.root, capture_output=True,
                              timeout=timeout)
        if done.returncode != 0:
            log = self.root / "server.log"
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({done.returncode}): {done.stderr.decode()}\n"
                               + (log.read_text() if log.exists() else ""))

    def start(self) -> None:
        settings = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                    "-c full_page_writes=off -c synchronous_commit=off -c shared_buffers=16MB -c max_connections=30")
        self.run("pg_ctl", "start", "-w", "-t", "30", "-D", str(self.data), "-l", str(self.root / "server.log"),
                 "-o", settings)

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "stop", "-w", "-t", "30", "-D", str(self.data), "-m", mode)

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def url(self, user: str, password: str, database: str) -> str:
        return f"postgresql+psycopg://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def admin(self, statement: str, **values: object) -> list[sa.Row[tuple[object, ...]]]:
        """One statement as the server's superuser, outside a transaction; its rows, if any."""
        engine = sa.create_engine(self.url("outage_admin", self.admin_password, "postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                result = connection.execute(sa.text(statement), values)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Its own PostgreSQL 15 server, running; stopped and removed at the end whatever happened."""
    need((PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists(), f"no PostgreSQL binaries in {PG_BIN}")
    as_owner: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="artifacts-outage-pg-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            owner = None
        need(owner is not None and shutil.which("runuser") is not None, "running as root without a postgres user")
        assert owner is not None
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"]
    password = secrets.token_hex(16)
    password_file = root / "admin-password"
    password_file.write_text(password + "\n")
    if as_owner:
        os.chown(password_file, root.stat().st_uid, root.stat().st_gid)
    server = Cluster(root, free_port(), as_owner, password)
    try:
        server.run("initdb", "-D", str(server.data), "-U", "outage_admin", f"--pwfile={password_file}",
                   "--auth=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C")
        server.start()
        yield server
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(server.postmaster_pid(), signal.SIGCONT)  # a frozen server cannot stop
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Site:
    """The app served by gunicorn against the cluster, with a user, a run and an API token."""

    url: str
    log: Path
    process: subprocess.Popen[bytes]
    run_id: str
    bearer: dict[str, str]
    app_url: str


@pytest.fixture(scope="module")
def site(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A database on the cluster, migrated, seeded, and served over HTTP on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("outage")
    password = secrets.token_hex(16)
    cluster.admin(f"CREATE ROLE artifacts LOGIN PASSWORD '{password}'")
    cluster.admin("CREATE DATABASE artifacts OWNER artifacts")
    url = cluster.url("artifacts", password, "artifacts")
    migrate(url, folder)
    app = make_app(url, folder)
    with app.app_context():
        user = make_user(EMAIL)
        run_id = make_run(user).id
        _, clear = tokens.create_token(user, "executor")
        db.session.commit()
        dispose(app)

    port = free_port()
    log = folder / "gunicorn.log"
    served_url = sa.engine.make_url(url).update_query_dict({"application_name": APP_NAME}).render_as_string(
        hide_password=False)
    settings = {"DATABASE_URL": served_url, "SECRET_KEY": "outage-test-key", "INSECURE_COOKIES": "1",
                "INSTANCE_PATH": str(folder / "instance"), "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1"}
    process = start_gunicorn(settings, log)  # not the shell's DATABASE_*_TIMEOUT: the defaults are what is measured
    site = Site(f"http://127.0.0.1:{port}", log, process, run_id, {"Authorization": f"Bearer {clear}"}, url)
    try:
        wait_until_healthy(site.url, process, log, START_TIMEOUT)
        yield site
    finally:
        stop(process)


def signed_in(site: Site) -> requests.Session:
    """A browser that signed in through the form; it keeps its session cookie."""
    browser = requests.Session()
    form = browser.get(f"{site.url}/login", timeout=10)
    answer = browser.post(f"{site.url}/login", timeout=10, allow_redirects=False,
                          data={"csrf_token": csrf_from(form.text), "email": EMAIL, "password": PASSWORD})
    assert answer.status_code == 302, answer.text
    return browser


Answer = TypeVar("Answer")


def timed(call: Callable[[], Answer]) -> tuple[Answer, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


@dataclass
class Requests:
    """What a person and an executor would send: a page, an htmx fragment, an API call, the health check."""

    site: Site
    browser: requests.Session

    def page(self) -> requests.Response:
        return self.browser.get(f"{self.site.url}/artifacts", timeout=30)

    def fragment(self) -> requests.Response:
        return self.browser.get(f"{self.site.url}/artifacts/{self.site.run_id}", params={"tab": "step-1"},
                                headers={"HX-Request": "true"}, timeout=30)

    def rows(self) -> requests.Response:
        return self.browser.get(f"{self.site.url}/artifacts", params={"q": "batteries"},
                                headers={"HX-Request": "true"}, timeout=30)

    def api(self) -> requests.Response:
        return requests.get(f"{self.site.url}/api/v1/runs/{self.site.run_id}", headers=self.site.bearer, timeout=30)

    def health(self) -> requests.Response:
        return requests.get(f"{self.site.url}/healthz", timeout=30)

    def all(self) -> dict[str, Callable[[], requests.Response]]:
        return {"page": self.page, "fragment": self.fragment, "rows": self.rows, "api": self.api,
                "health": self.health}


def assert_all_serve(asking: Requests) -> None:
    for name, call in asking.all().items():
        response = call()
        assert response.status_code == 200, (name, response.status_code, response.text[:300])
    assert "Research brief" in asking.page().text  # the person's own run, not a sign-in page


def assert_all_unavailable(asking: Requests, label: str) -> dict[str, float]:
    """Every kind of request answers 503 within the limit, saying the database is away and to retry."""
    seconds: dict[str, float] = {}
    answers: dict[str, requests.Response] = {}
    for name, call in asking.all().items():
        answers[name], seconds[name] = timed(call)
    print(f"\n{label}: 503 in " + ", ".join(f"{name} {value:.3f} s" for name, value in seconds.items()))
    for name, response in answers.items():
        assert response.status_code == 503, (label, name, response.status_code, response.text[:300])
        assert seconds[name] < LIMIT_SECONDS, (label, name, seconds[name])
        assert response.headers["Retry-After"] == "5", (label, name)
        assert response.headers["Cache-Control"] == "no-store", (label, name)
        if name in ("api", "health"):
            assert response.headers["Content-Type"] == "application/json", (label, name)
        else:
            assert response.headers["Content-Type"].startswith("text/html"), (label, name)
            assert "The database is unavailable at the moment. Try again in a few seconds." in response.text
    page = answers["page"].text
    assert "<!doctype html>" in page and "<h1>Unavailable for a moment</h1>" in page
    assert '<a href="/artifacts">Try again</a>' in page
    for fragment in (answers["fragment"].text, answers["rows"].text):
        assert "<html" not in fragment and 'role="alert"' in fragment and "<h2>Unavailable for a moment</h2>" in fragment
    assert answers["api"].json() == {
        "error": "service_unavailable", "message": "The database is unavailable at the moment. Try again in a few seconds."}
    health = answers["health"].json()
    assert (health["status"], health["database"]) == ("unavailable", "down")
    assert "The database is down" in health["message"]
    return seconds


def time_to_first_200(asking: Requests) -> float:
    """Seconds from now until the signed-in page answers 200 again (polled every 50 ms)."""
    started = time.monotonic()
    while time.monotonic() - started < 30:
        if asking.page().status_code == 200:
            return time.monotonic() - started
        time.sleep(0.05)
    pytest.fail("the app did not serve again within 30 s of the database's return")


def app_sessions(cluster: Cluster) -> list[str]:
    """The states of the app's PostgreSQL sessions."""
    rows = cluster.admin("SELECT state FROM pg_stat_activity WHERE application_name = :name", name=APP_NAME)
    return [str(row[0]) for row in rows]


def test_stopped_or_hung_database_answers_503_fast_and_the_app_comes_back(
    engine_name: str, cluster: Cluster, site: Site
) -> None:
    log_start = site.log.stat().st_size
    asking = Requests(site, signed_in(site))
    assert_all_serve(asking)

    # A restart while the pool holds a connection: the stale one is found before use, never served a 500.
    assert "idle" in app_sessions(cluster)
    cluster.stop()
    cluster.start()
    first, seconds = timed(asking.page)
    assert first.status_code == 200, first.text[:300]
    print(f"\nfirst request after a restart with stale pooled connections: 200 in {seconds:.3f} s")
    assert_all_serve(asking)

    # Stopped: refused at once.
    cluster.stop()
    assert_all_unavailable(asking, "stopped")
    # Any other error page of a signed-in person is still drawn, as for a visitor, with its own status.
    missing = asking.browser.get(f"{site.url}/no-such-page", timeout=30)
    assert missing.status_code == 404 and "<h1>Page not found</h1>" in missing.text, missing.text[:300]
    # Signing in counts failures in the database (the login throttle) before it checks anything.
    visitor = requests.Session()
    form = visitor.get(f"{site.url}/login", timeout=10)
    assert form.status_code == 200  # the form itself needs no database
    attempt, seconds = timed(lambda: visitor.post(f"{site.url}/login", timeout=30, allow_redirects=False, data={
        "csrf_token": csrf_from(form.text), "email": EMAIL, "password": PASSWORD}))
    assert attempt.status_code == 503 and seconds < LIMIT_SECONDS, (attempt.status_code, seconds)
    assert "The database is unavailable" in attempt.text and ">Try again</a>" not in attempt.text  # no GET to repeat
    started = time.monotonic()
    cluster.start()
    ready = time.monotonic() - started
    recovery = time_to_first_200(asking)
    print(f"recovery: PostgreSQL ready {ready:.3f} s after pg_ctl start; first 200 (same session cookie) "
          f"{recovery:.3f} s after that")
    assert_all_serve(asking)

    # Hung: the server takes connections and never answers (postmaster frozen); the app's own
    # sessions are ended first, so every request needs a new connection. The connect timeout answers.
    cluster.admin("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = :name",
                  name=APP_NAME)
    postmaster = cluster.postmaster_pid()
    os.kill(postmaster, signal.SIGSTOP)
    try:
        hung = assert_all_unavailable(asking, "hung")
        assert min(hung.values()) >= 2  # the connect timeout did the waiting: these were not refusals
    finally:
        os.kill(postmaster, signal.SIGCONT)
    recovery = time_to_first_200(asking)
    print(f"recovery after the hang: first 200 {recovery:.3f} s after the server resumed")
    assert_all_serve(asking)
    assert "Error handling request" not in site.log.read_text()[log_start:]  # every failure was answered


def test_a_database_lost_in_the_middle_of_a_download_cuts_it_detectably(
    engine_name: str, cluster: Cluster, site: Site
) -> None:
    """The headers (200) are gone before the failure: the download ends without HTTP's last chunk, so
    the client sees it incomplete rather than a short file, and the worker goes on serving."""
    app = make_app(site.app_url, site.log.parent)
    with app.app_context():
        user = db.session.execute(sa.select(User).where(User.email == EMAIL)).scalar_one()
        # More than the sockets can buffer, one step output read from the database at a time.
        send_buffer_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
        steps = (2 * send_buffer_max + (1 << 20)) // STEP_CHARS + 2
        run = recording.record_from_values(
            user, pipeline="Long", input="long", model="gpt-4o", final_output="done",
            steps=[{"agentId": "a", "agentName": "A", "stepOrder": n, "output": f"{n:04d} " * (STEP_CHARS // 5)}
                   for n in range(steps)],
        )
        db.session.commit()
        run_id = run.id
        dispose(app)
    cookie = "; ".join(f"{name}={value}" for name, value in signed_in(site).cookies.items())
    log_start = site.log.stat().st_size

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", int(site.url.rsplit(":", 1)[1])))
    sock.sendall(f"GET /artifacts/{run_id}/download?part=all&format=md HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Cookie: {cookie}\r\nConnection: close\r\n\r\n".encode())
    answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in answer, answer[:300]
    time.sleep(0.5)  # the worker fills the buffers and waits to write more
    cluster.stop()
    try:
        with sock:
            while chunk := sock.recv(1 << 20):
                answer += chunk
        body = answer.partition(b"\r\n\r\n")[2]
        assert len(body) < steps * STEP_CHARS  # cut short ...
        assert not body.endswith(b"0\r\n\r\n")  # ... without the last chunk: any HTTP client reports it
        assert requests.get(f"{site.url}/healthz", timeout=10).status_code == 503  # the worker still answers
        assert "OperationalError" in site.log.read_text()[log_start:]  # cut by the lost database, and logged
    finally:
        cluster.start()
    assert requests.get(f"{site.url}/healthz", timeout=10).status_code == 200


def test_a_statement_past_the_statement_timeout_answers_503_saying_it_was_slow(
    engine_name: str, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DATABASE_STATEMENT_TIMEOUT reaches every session; a query stuck behind a lock is cancelled by
    PostgreSQL at that point and the person is told to retry, not left waiting for the worker's timeout."""
    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT", "1")
    app = make_app(database_url, tmp_path, SQLALCHEMY_ENGINE_OPTIONS=config.engine_options(database_url))
    app.test_client_class = IsolatedClient
    locker = sa.create_engine(database_url)
    with app.app_context():
        try:
            user = make_user(EMAIL)
            _, clear = tokens.create_token(user, "executor")
            db.session.commit()
            client = app.test_client()
            log_in(client, EMAIL)
            assert db.session.execute(sa.text("SHOW statement_timeout")).scalar_one() == "1s"
            db.session.rollback()
            with locker.connect() as holder:
                holder.execute(sa.text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"))  # till the block ends
                page, page_seconds = timed(lambda: client.get("/artifacts"))
                api, api_seconds = timed(lambda: client.get(
                    "/api/v1/runs", headers={"Authorization": f"Bearer {clear}"}))
                holder.rollback()
            for response, seconds in ((page, page_seconds), (api, api_seconds)):
                assert response.status_code == 503 and 1 <= seconds < 3, (response.status_code, seconds)
                assert response.headers["Retry-After"] == "5"
            assert "The database took too long to answer. Try again in a moment." in page.get_data(as_text=True)
            assert api.json == {"error": "service_unavailable",
                                "message": "The database took too long to answer. Try again in a moment."}
            assert client.get("/artifacts").status_code == 200  # the lock gone, the same session is served
        finally:
            locker.dispose()
            dispose(app)
            truncate_all(app)
            dispose(app)


def test_no_free_pooled_connection_answers_503_after_the_pool_timeout(
    engine_name: str, database_url: str, tmp_path: Path
) -> None:
    """Every pooled connection busy (a threaded worker under load, or stuck on a hung server): the next
    request waits DATABASE_POOL_TIMEOUT, not SQLAlchemy's 30 s, then says to retry."""
    app = make_app(database_url, tmp_path, SQLALCHEMY_ENGINE_OPTIONS=config.engine_options(database_url))
    app.test_client_class = IsolatedClient
    with app.app_context():
        held: list[sa.Connection] = []
        try:
            make_user(EMAIL)
            client = app.test_client()
            log_in(client, EMAIL)
            db.session.remove()
            pool = db.engine.pool
            while len(held) < pool.size() + pool._max_overflow:  # type: ignore[attr-defined]
                held.append(db.engine.connect())
            response, seconds = timed(lambda: client.get("/artifacts", headers={"HX-Request": "true"}))
            assert response.status_code == 503 and 1 <= seconds < 2, (response.status_code, seconds)
            assert response.headers["Retry-After"] == "5"
            assert "The database is unavailable at the moment" in response.get_data(as_text=True)
            held.pop().close()
            assert client.get("/artifacts").status_code == 200
        finally:
            for connection in held:
                connection.close()
            dispose(app)
            truncate_all(app)
            dispose(app)
