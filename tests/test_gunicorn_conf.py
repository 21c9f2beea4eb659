"""gunicorn.conf.py, run for real: gunicorn started with it on 127.0.0.1 refuses over-long request
lines and headers itself, streams an export longer than its worker timeout to the end, lets a request
in flight finish on SIGTERM before it exits, and a download the client walks away from leaves
nothing open in the database."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from artifacts_app import recording
from artifacts_app.extensions import db
from tests.factories import PASSWORD, make_user
from tests.http_helpers import csrf_from
from tests.servers import free_port, start_gunicorn, stop, wait_until_healthy

START_TIMEOUT = 30.0
APP_NAME = "artifacts-gunicorn-test"  # how this server's sessions show in pg_stat_activity
EMAIL = "exporter@example.com"
STEP_CHARS = 256 * 1024


@dataclass
class Server:
    host: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@pytest.fixture
def gunicorn_flags() -> tuple[str, ...]:
    """Command-line flags on top of gunicorn.conf.py (a test overrides this by parametrizing it)."""
    return ()


@pytest.fixture
def gunicorn_settings() -> dict[str, str]:
    """Environment variables for gunicorn.conf.py (a test overrides this by parametrizing it)."""
    return {}


@pytest.fixture
def server(app: Flask, database_url: str, tmp_path: Path, gunicorn_flags: tuple[str, ...],
           gunicorn_settings: dict[str, str]) -> Iterator[Server]:
    """gunicorn with gunicorn.conf.py (and gunicorn_flags, gunicorn_settings) and one worker on this
    test's database, bound through BIND.

    Depends on `app`, so it is stopped before `app` empties the database.
    """
    port = free_port()
    log = tmp_path / "gunicorn.log"
    url = database_url
    if url.startswith("postgresql"):
        url = sa.engine.make_url(url).update_query_dict({"application_name": APP_NAME}).render_as_string(
            hide_password=False)
    process = start_gunicorn({"DATABASE_URL": url, "SECRET_KEY": "gunicorn-test-key", "INSECURE_COOKIES": "1",
                              "INSTANCE_PATH": str(tmp_path / "instance"), "BIND": f"127.0.0.1:{port}",
                              "WEB_CONCURRENCY": "1", **gunicorn_settings}, log, gunicorn_flags)
    running = Server("127.0.0.1", port, log, process)
    try:
        wait_until_healthy(running.url, process, log, START_TIMEOUT)
        yield running
    finally:
        stop(process)


def raw(server: Server, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are, read the whole answer: its status and body."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.engine_agnostic
def test_gunicorn_itself_refuses_an_over_long_request_line_or_header(server: Server) -> None:
    def get(target: str, headers: str = "") -> int:
        return raw(server, f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n".encode())[0]

    assert get("/healthz") == 200
    # Above gunicorn's default (4094) and within ours (8190): a long filter URL reaches the app.
    assert get("/healthz?q=" + "a" * 6000) == 200
    assert get("/healthz?q=" + "a" * 8200) == 414
    assert get("/healthz", "X-Padding: " + "a" * 8000 + "\r\n") == 200
    assert get("/healthz", "X-Padding: " + "a" * 9000 + "\r\n") == 431
    assert get("/healthz", "".join(f"X-Extra-{n}: 1\r\n" for n in range(40))) == 200
    assert get("/healthz", "".join(f"X-Extra-{n}: 1\r\n" for n in range(60))) == 431
    assert get("/healthz") == 200  # and it goes on serving


def seed_big_export(user_email: str) -> tuple[int, int]:
    """Enough finished runs that their export cannot fit in the sockets' buffers: the server is still
    writing it while the client has read only its start. How many runs, and the export's least size."""
    send_buffer_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    least = 2 * send_buffer_max + (1 << 20)
    user = make_user(user_email)
    runs = least // STEP_CHARS + 1
    for index in range(runs):
        recording.record_from_values(
            user, pipeline="Bulk", input=f"run {index}", model="gpt-4o", final_output="done",
            steps=[{"agentId": "a", "agentName": "A", "stepOrder": 0, "output": "pangolin " * (STEP_CHARS // 9)}],
        )
    db.session.commit()
    return runs, least


def session_cookie(server: Server, email: str) -> str:
    """Log in through the form, as a browser does; the Cookie header it then sends."""
    with requests.Session() as browser:
        form = browser.get(f"{server.url}/login", timeout=10)
        answer = browser.post(f"{server.url}/login", timeout=10, allow_redirects=False, data={
            "csrf_token": csrf_from(form.text), "email": email, "password": PASSWORD})
        assert answer.status_code == 302, answer.text
        return "; ".join(f"{name}={value}" for name, value in browser.cookies.items())


def slow_reader(server: Server, target: str, cookie: str) -> socket.socket:
    """A client with a small receive buffer that has sent its request and read nothing yet."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(10)
    sock.connect((server.host, server.port))
    # HTTP/1.0: the body is sent as it is and ends when the server closes.
    sock.sendall(f"GET {target} HTTP/1.0\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n".encode())
    return sock


EXPORT = "/artifacts/export?format=jsonl"
SHORT_TIMEOUT = 3
STALL_SECONDS = 2


def read_to_end(sock: socket.socket, start: bytes) -> bytes:
    """The rest of the answer, read as fast as it comes, after `start`."""
    answer = start
    with sock:
        while chunk := sock.recv(1 << 20):
            answer += chunk
    return answer


def assert_whole_export(answer: bytes, runs: int, least: int) -> None:
    """Every run once, then the summary line saying the export ran to its end."""
    head, _, body = answer.partition(b"\r\n\r\n")
    assert len(body) > least
    *lines, summary = body.decode().splitlines()
    assert len(lines) == runs and body.endswith(b"\n")
    assert json.loads(summary) == {"export": {"runs": runs, "complete": True}}
    assert sorted(json.loads(line)["input"] for line in lines) == sorted(f"run {index}" for index in range(runs))


@pytest.mark.parametrize("gunicorn_flags", [("--timeout", str(SHORT_TIMEOUT))])
@pytest.mark.parametrize("gunicorn_settings", [{"STALLED_CLIENT_TIMEOUT": str(STALL_SECONDS)}])
def test_an_export_longer_than_the_worker_timeout_finishes_whole(app: Flask, server: Server) -> None:
    """Also: a client reading slowly but steadily is not taken for a stalled one."""
    runs, least = seed_big_export(EMAIL)
    cookie = session_cookie(server, EMAIL)
    sock = slow_reader(server, EXPORT, cookie)
    # Read it at a pace that makes the download last three times the worker timeout.
    duration = 3 * SHORT_TIMEOUT
    pause = duration / (least / 65536)
    started = time.monotonic()
    answer = sock.recv(65536)
    assert b" 200 " in answer.split(b"\r\n", 1)[0], answer[:200]
    # The one worker answers other requests meanwhile, on its other threads (a sync worker would
    # answer only once the export ends or it is killed, a timeout later).
    assert requests.get(f"{server.url}/healthz", timeout=SHORT_TIMEOUT - 1).status_code == 200
    with sock:
        while chunk := sock.recv(65536):
            answer += chunk
            time.sleep(pause)
    elapsed = time.monotonic() - started

    assert elapsed > 2 * SHORT_TIMEOUT
    assert_whole_export(answer, runs, least)
    log = server.log.read_text()
    assert "WORKER TIMEOUT" not in log and log.count("Booting worker") == 1, log  # the same worker throughout


def test_sigterm_lets_the_request_in_flight_finish_then_gunicorn_exits(app: Flask, server: Server) -> None:
    runs, least = seed_big_export(EMAIL)
    cookie = session_cookie(server, EMAIL)
    sock = slow_reader(server, EXPORT, cookie)
    start = sock.recv(65536)  # the status line, headers and the export's first bytes
    assert start.startswith(b"HTTP/1.0 200") or start.startswith(b"HTTP/1.1 200"), start[:200]

    server.process.send_signal(signal.SIGTERM)  # as a deploy or `systemctl stop` sends it
    time.sleep(0.5)
    assert server.process.poll() is None  # still serving the export: most of it is not sent yet

    answer = read_to_end(sock, start)
    exit_code = server.process.wait(timeout=10)

    assert_whole_export(answer, runs, least)  # it ran to its end
    assert exit_code == 0, server.log.read_text()


def app_sessions(states: tuple[str, ...]) -> list[tuple[str, str]]:
    """The server's PostgreSQL sessions in these states, with their query."""
    with db.engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT state, query FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = :name AND state = ANY(:states)"), {"name": APP_NAME, "states": list(states)}).all()
    return [(row[0], row[1]) for row in rows]


BUSY = ("idle in transaction", "idle in transaction (aborted)", "active")


def test_an_export_the_client_walks_away_from_leaves_nothing_open(app: Flask, server: Server, engine_name: str
                                                                  ) -> None:
    seed_big_export(EMAIL)
    cookie = session_cookie(server, EMAIL)
    sock = slow_reader(server, EXPORT, cookie)
    assert b" 200 " in sock.recv(65536).split(b"\r\n", 1)[0]
    if engine_name == "postgresql":
        # Mid-stream the export reads in a transaction of its own: the check below can see one.
        assert [state for state, _ in app_sessions(BUSY)] == ["idle in transaction"]

    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset, as a
    sock.close()  # browser's cancelled download does

    deadline = time.monotonic() + 5
    if engine_name == "postgresql":
        while app_sessions(BUSY) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app_sessions(BUSY) == []
    else:
        # No read lock left behind: a writer commits at once, without waiting.
        with sa.create_engine(db.engine.url, connect_args={"timeout": 0}).connect() as writer:
            writer.execute(sa.text("UPDATE users SET email = email"))
            writer.commit()
    # The one worker is free again and serves the next request.
    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
    again = requests.get(f"{server.url}/artifacts/export?format=csv", headers={"Cookie": cookie}, timeout=10)
    assert again.status_code == 200 and again.text.count("\n") > 1


@pytest.mark.parametrize("gunicorn_settings", [{"STALLED_CLIENT_TIMEOUT": str(STALL_SECONDS)}])
def test_a_client_that_stops_reading_is_dropped_and_leaves_nothing_open(app: Flask, server: Server,
                                                                        engine_name: str) -> None:
    seed_big_export(EMAIL)
    cookie = session_cookie(server, EMAIL)
    sock = slow_reader(server, EXPORT, cookie)  # and then reads nothing, keeping the connection open
    started = time.monotonic()
    if engine_name == "postgresql":
        time.sleep(0.5)
        assert [state for state, _ in app_sessions(BUSY)] == ["idle in transaction"]  # the export's
        while app_sessions(BUSY) and time.monotonic() - started < 10 * STALL_SECONDS:
            time.sleep(0.1)
        assert app_sessions(BUSY) == []
    else:
        time.sleep(4 * STALL_SECONDS)

    # When the client reads again, it gets what was already on its way, then the connection's end,
    # and no summary line: the download says it was cut off.
    answer = b""
    with sock, contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(1 << 20):
            answer += chunk
    assert time.monotonic() - started > STALL_SECONDS
    assert b" 200 " in answer.split(b"\r\n", 1)[0] and b'{"export":' not in answer
    if engine_name == "sqlite":
        # No read lock left behind: a writer commits at once, without waiting.
        with sa.create_engine(db.engine.url, connect_args={"timeout": 0}).connect() as writer:
            writer.execute(sa.text("UPDATE users SET email = email"))
            writer.commit()
    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
    assert "WORKER TIMEOUT" not in server.log.read_text()
