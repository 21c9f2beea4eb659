"""A real redis-server of a test's own on 127.0.0.1, keeping nothing on disk, that the test can stop,
start again on the same port, or freeze (SIGSTOP) to play a stalled Redis."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.databases import in_ci
from tests.servers import free_port, stop

START_TIMEOUT = 10.0


class RedisServer:
    """One redis-server process on a fixed port; `url` stays valid across stop() and start()."""

    def __init__(self, executable: str, folder: Path) -> None:
        self.executable = executable
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and return once it answers PING."""
        log = self.folder / "redis.log"
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--save", "", "--appendonly", "no", "--logfile", str(log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                if self.process.poll() is not None:
                    pytest.fail(f"redis-server exited with {self.process.returncode}:\n{log.read_text()}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server (a frozen one is thawed first, or it could not act on SIGTERM)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            stop(self.process)
            self.process = None

    def freeze(self) -> None:
        """SIGSTOP: connections are still accepted by the kernel, but nothing is answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: the server answers again."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@contextmanager
def running_redis(folder: Path) -> Iterator[RedisServer]:
    """A started RedisServer keeping its log in `folder`, stopped afterwards; skipped without
    redis-server, except under CI where it must be installed (.ci/run installs it)."""
    executable = shutil.which("redis-server")
    if executable is None:
        if in_ci():
            pytest.fail("redis-server must be installed when CI=true (.ci/run installs it)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    folder.mkdir(parents=True, exist_ok=True)
    server = RedisServer(executable, folder)
    try:
        server.start()
        yield server
    finally:
        server.stop()
