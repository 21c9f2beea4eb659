"""A memory:// login-throttle store counts inside each worker process, so gunicorn.conf.py refuses it
at start with more than one worker, saying why and what to use instead."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from flask import Flask

from tests.servers import free_port, start_gunicorn, stop, wait_until_healthy

REFUSAL = ("RATELIMIT_STORAGE_URI=memory:// counts login failures in each worker separately, so 2 workers "
           "would allow 2 times the attempts.")


def settings(tmp_path: Path, port: int, workers: str, **more: str) -> dict[str, str]:
    return {"BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": workers, "RATELIMIT_STORAGE_URI": "memory://",
            "SECRET_KEY": "memory-store-test", "INSTANCE_PATH": str(tmp_path / "instance"), **more}


@pytest.mark.parametrize(("workers", "flags"), [("2", []), ("1", ["--workers", "2"])],
                         ids=["WEB_CONCURRENCY=2", "--workers 2"])
def test_gunicorn_refuses_a_memory_store_with_two_workers(tmp_path: Path, workers: str, flags: list[str]) -> None:
    port = free_port()
    log = tmp_path / "gunicorn.log"
    process = start_gunicorn(settings(tmp_path, port, workers), log, flags)
    try:
        exit_code = process.wait(timeout=30)
    finally:
        stop(process)

    output = log.read_text()
    assert exit_code == 1, output
    assert f"Error: {REFUSAL}" in output
    # It says what to do instead.
    assert "redis://" in output and "leave RATELIMIT_STORAGE_URI unset" in output and "WEB_CONCURRENCY=1" in output
    # Refused before it listened or started a worker.
    assert "Listening at" not in output and "Booting worker" not in output


@pytest.mark.engine_agnostic
def test_one_worker_with_a_memory_store_serves_and_a_second_one_added_later_is_reported(
        app: Flask, database_url: str, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "gunicorn.log"
    process = start_gunicorn(settings(tmp_path, port, "1", DATABASE_URL=database_url), log)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process, log)
        # TTIN adds a worker to a running gunicorn: too late to refuse, so it is logged as an error.
        process.send_signal(signal.SIGTTIN)
        deadline = time.monotonic() + 10
        while REFUSAL not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process.poll() is None
    finally:
        stop(process)
    output = log.read_text()
    assert f"[ERROR] {REFUSAL}" in output, output
