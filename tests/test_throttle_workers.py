"""The login throttle holds across gunicorn workers: its counts live in the shared database."""

from __future__ import annotations

import http.cookiejar
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask

from tests.factories import PASSWORD, make_user
from tests.http_helpers import csrf_from
from tests.servers import free_port, start_gunicorn, stop, wait_until_healthy

EMAIL = "ada@example.com"
START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 10.0
ACCESS_LINE = re.compile(r"^<(\d+)> (\S+) (\S+) \S+ (\d{3})$")


@dataclass
class Server:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def access_lines(self) -> list[tuple[int, str, str, int]]:
        """(worker pid, method, path, status) for every request logged so far."""
        lines = []
        for line in self.log.read_text(errors="replace").splitlines():
            match = ACCESS_LINE.match(line.strip())
            if match:
                pid, method, path, status = match.groups()
                lines.append((int(pid), method, path, int(status)))
        return lines

    def logged_posts(self, expected: int) -> list[tuple[int, int]]:
        """(worker pid, status) of the logged POSTs, once `expected` are in (a worker logs after answering)."""
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while True:
            posts = [(pid, status) for pid, method, _, status in self.access_lines() if method == "POST"]
            if len(posts) >= expected or time.monotonic() > deadline:
                return posts
            time.sleep(0.05)


@pytest.fixture
def server(app: Flask, database_url: str, tmp_path: Path) -> Iterator[Server]:
    """gunicorn with two workers on this test's (migrated) database, with Ada as a user.

    Depends on `app`, so it is stopped before `app` empties the database.
    """
    make_user(EMAIL)
    port = free_port()
    log = tmp_path / "gunicorn.log"
    settings = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "workers-share-this-key",
        "INSECURE_COOKIES": "1",
        "INSTANCE_PATH": str(tmp_path / "instance"),
    }
    flags = [
        "--workers", "2", "--bind", f"127.0.0.1:{port}",
        "--access-logfile", "-", "--access-logformat", "%(p)s %(r)s %(s)s",
        "--timeout", "60",
    ]
    process = start_gunicorn(settings, log, flags)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log, START_TIMEOUT)
        yield Server(url, log, process)
    finally:
        stop(process)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def attempt_login(server: Server, password: str) -> tuple[int, dict[str, str], str]:
    """A browser's login: GET the form (cookie and CSRF token), POST it. Status, headers, body."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect()
    )
    with opener.open(f"{server.url}/login", timeout=REQUEST_TIMEOUT) as page:
        token = csrf_from(page.read().decode())
    form = urllib.parse.urlencode({"csrf_token": token, "email": EMAIL, "password": password}).encode()
    try:
        with opener.open(f"{server.url}/login", data=form, timeout=REQUEST_TIMEOUT) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:  # 302, 4xx: still an answer
        with error:
            return error.code, dict(error.headers), error.read().decode()


def test_failures_counted_by_one_worker_block_logins_on_the_other(server: Server) -> None:
    for attempt in range(10):
        status, _, body = attempt_login(server, "not the password")
        assert status == 200, (attempt, status)
        assert "Email or password is incorrect." in body

    status, headers, body = attempt_login(server, PASSWORD)

    assert status == 429, body
    assert 1 <= int(headers["Retry-After"]) <= 900
    assert "Try again in" in body
    posts = server.logged_posts(11)
    assert [status for _, status in posts] == [200] * 10 + [429]
    # Requests spread over the workers by chance. Should every login so far have landed on one
    # worker, more attempts (refused, so never counted) will reach the other one.
    for extra in range(12, 40):
        if len({pid for pid, _ in posts}) == 2:
            break
        status, _, body = attempt_login(server, PASSWORD)
        assert status == 429, body
        posts = server.logged_posts(extra)
    failure_workers = {pid for pid, status in posts if status == 200}
    refusing_workers = {pid for pid, status in posts if status == 429}
    assert [status for _, status in posts[10:]] == [429] * (len(posts) - 10)
    assert len(failure_workers | refusing_workers) == 2, f"one worker served every login:\n{server.log.read_text()}"
