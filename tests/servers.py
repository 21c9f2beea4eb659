"""Servers that tests start on 127.0.0.1: the test's app in a werkzeug thread, and the helpers for
servers run as processes (gunicorn)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from artifacts_app import PROJECT_ROOT

GUNICORN = Path(sys.executable).parent / "gunicorn"
GUNICORN_CONFIG = PROJECT_ROOT / "gunicorn.conf.py"
# Settings a developer's shell may hold that would change what a started server does.
AMBIENT_SETTINGS = ("PORT", "RATELIMIT_STORAGE_URI", "CACHE_REDIS_URL", "TRUSTED_PROXIES", "SIGNUP_ENABLED",
                    "DATABASE_CONNECT_TIMEOUT", "DATABASE_POOL_TIMEOUT", "DATABASE_STATEMENT_TIMEOUT")

_open_responses = threading.local()


class _ClosedOnce:
    """A response body that closes at most once, so the handler below may close it again."""

    def __init__(self, body: Iterable[bytes]) -> None:
        self.body = body
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            getattr(self.body, "close", lambda: None)()


def _closing_every_response(app: Flask) -> Any:
    """The app, with each response body kept until its request's handler finishes (see below)."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        body = _ClosedOnce(app(environ, start_response))
        _open_responses.bodies.append(body)
        return body

    return wsgi


class Handler(WSGIRequestHandler):
    """werkzeug's request handler, closing what werkzeug leaves open: when a browser resets a
    connection while werkzeug drains it (a favicon request cut short), werkzeug skips closing the
    response, and the unclosed static file raises a ResourceWarning in a later test."""

    def run_wsgi(self) -> None:
        _open_responses.bodies = []
        try:
            super().run_wsgi()
        finally:
            for body in _open_responses.bodies:
                body.close()


class QuietHandler(Handler):
    """The handler without a log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@contextmanager
def serving(app: Flask, *, quiet: bool = True) -> Iterator[str]:
    """The app served by a threaded werkzeug server on a free port; yields its base URL."""
    server = make_server(
        "127.0.0.1", 0, _closing_every_response(app), threaded=True, request_handler=QuietHandler if quiet else Handler
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not gone within 10 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def start_gunicorn(settings: Mapping[str, str], log: Path, flags: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """gunicorn with gunicorn.conf.py (and any command-line `flags`) serving wsgi:app from the checkout,
    configured by `settings` on top of this environment less AMBIENT_SETTINGS, its output in `log`."""
    env = {name: value for name, value in os.environ.items() if name not in AMBIENT_SETTINGS}
    env.update({"PYTHONUNBUFFERED": "1", **settings})
    with log.open("wb") as output:
        return subprocess.Popen([str(GUNICORN), "--config", str(GUNICORN_CONFIG), *flags, "wsgi:app"], cwd=PROJECT_ROOT,
                                env=env, stdout=output, stderr=subprocess.STDOUT)


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    """Return once url/healthz answers 200; fail the test if the server exits first or takes longer."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
        try:
            if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or its worker still booting
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"gunicorn did not answer /healthz within {timeout} s:\n{log.read_text()}")
        time.sleep(0.1)
