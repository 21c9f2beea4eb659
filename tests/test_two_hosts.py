"""The web tier keeps no state of its own: two gunicorn servers ("hosts", each with its own instance
folder) on one PostgreSQL database and one real Redis (the login-throttle counters and the render
cache) behave as one site. Each test starts its own redis-server and both servers on 127.0.0.1."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests
from cachelib import RedisCache
from flask import Flask
from sqlalchemy import func, select

from artifacts_app import recording
from artifacts_app.extensions import db
from artifacts_app.models import LoginFailure
from tests.factories import LOGIN_FAILED_MESSAGE, PASSWORD, make_user
from tests.http_helpers import csrf_from
from tests.redis_servers import running_redis
from tests.servers import free_port, start_gunicorn, stop, wait_until_healthy

pytestmark = pytest.mark.postgres_only

EMAIL = "ada@example.com"
SECRET_KEY = "both-hosts-share-this-key"
CACHE_PREFIX = "artifacts:"  # CACHE_KEY_PREFIX in artifacts_app/rendering/cache.py
TIMEOUT = 10.0
MARKDOWN = "## Findings\n\nThe **pangolin** count rose:\n\n- north: 12\n- south: 9\n"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test's own on a free port, keeping nothing on disk."""
    with running_redis(tmp_path / "redis") as server:
        yield server.url


@pytest.fixture
def store(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the test's Redis, to look at what the hosts keep there."""
    client = redis.Redis.from_url(redis_url, socket_timeout=TIMEOUT)
    yield client
    client.close()


@dataclass
class Host:
    url: str
    log: Path
    process: subprocess.Popen[bytes]


@pytest.fixture
def hosts(app: Flask, database_url: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[Host, Host]]:
    """Two gunicorn servers with gunicorn.conf.py, one worker each, sharing only the database, the
    Redis and SECRET_KEY; each has its own instance folder, as separate machines would.

    Depends on `app`, so they are stopped before `app` empties the database.
    """
    started: list[Host] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            log = tmp_path / f"host-{name}.log"
            process = start_gunicorn({
                "BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1", "DATABASE_URL": database_url,
                "SECRET_KEY": SECRET_KEY, "INSECURE_COOKIES": "1", "INSTANCE_PATH": str(tmp_path / f"instance-{name}"),
                "RATELIMIT_STORAGE_URI": redis_url, "CACHE_REDIS_URL": redis_url,
            }, log)
            started.append(Host(f"http://127.0.0.1:{port}", log, process))
        for host in started:
            wait_until_healthy(host.url, host.process, host.log)
        yield started[0], started[1]
    finally:
        for host in started:
            host.process.terminate()  # both shut down at once; stop() waits, and kills past 10 s
        for host in started:
            stop(host.process)


def log_in(browser: requests.Session, host: Host, password: str = PASSWORD) -> requests.Response:
    """Fetch the login form from `host` and post it there, as a browser does; the answer, unfollowed."""
    form = browser.get(f"{host.url}/login", timeout=TIMEOUT)
    return browser.post(f"{host.url}/login", timeout=TIMEOUT, allow_redirects=False,
                        data={"csrf_token": csrf_from(form.text), "email": EMAIL, "password": password})


def test_failures_spread_over_both_hosts_are_throttled_as_one(hosts: tuple[Host, Host], store: redis.Redis) -> None:
    make_user(EMAIL)
    a, b = hosts

    # Five wrong passwords on each host: each host alone has seen fewer than the 10 that close the
    # pair's wall, so only counts they share can stop the next attempt.
    for attempt in range(10):
        answer = log_in(requests.Session(), (a, b)[attempt % 2], "not the password")
        assert answer.status_code == 200, (attempt, answer.status_code)
        assert LOGIN_FAILED_MESSAGE in answer.text

    for host in (a, b):
        answer = log_in(requests.Session(), host)  # the right password, refused unjudged
        assert answer.status_code == 429, (host.url, answer.text)
        assert 1 <= int(answer.headers["Retry-After"]) <= 15 * 60
        assert "Try again in" in answer.text
    # The counts are in Redis, not in the database.
    assert any(store.scan_iter(match="*login*"))
    assert db.session.scalar(select(func.count()).select_from(LoginFailure)) == 0


@contextmanager
def commands_run(store: redis.Redis) -> Iterator[list[str]]:
    """The commands Redis runs, from any client, during the with block (seen through MONITOR)."""
    seen: list[str] = []
    marker = f"end-{uuid.uuid4().hex}"
    with store.monitor() as monitor:
        yield seen
        store.echo(marker)  # Redis reports commands in the order it runs them: this one comes last
        while (command := monitor.next_command()["command"]) != f"ECHO {marker}":
            seen.append(command)


def on_key(commands: list[str], key: str) -> list[str]:
    """The verbs (GET, SET, ...) of the commands on `key`."""
    return [command.split(" ", 1)[0].upper() for command in commands if f" {key}" in command]


def test_a_render_cached_by_one_host_is_served_by_the_other(hosts: tuple[Host, Host], store: redis.Redis) -> None:
    user = make_user(EMAIL)
    run = recording.record_from_values(user, pipeline="Survey", input="count them", model="gpt-4o",
                                       final_output="done", steps=[
                                           {"agentId": "w", "agentName": "Writer", "stepOrder": 0, "output": MARKDOWN}])
    db.session.commit()
    a, b = hosts
    panel = f"/artifacts/{run.id}?tab=step-1"
    fragment = {"HX-Request": "true"}
    on_a, on_b = requests.Session(), requests.Session()
    assert log_in(on_a, a).status_code == 302
    assert log_in(on_b, b).status_code == 302
    assert not list(store.scan_iter(match=f"{CACHE_PREFIX}md:*"))

    with commands_run(store) as by_a:
        from_a = on_a.get(f"{a.url}{panel}", headers=fragment, timeout=TIMEOUT)
    assert from_a.status_code == 200
    [key] = [key.decode() for key in store.scan_iter(match=f"{CACHE_PREFIX}md:*")]
    assert run.id in key
    assert on_key(by_a, key) == ["GET", "SET"]  # a miss: A rendered the step and stored the HTML
    cached = RedisCache(host=store, key_prefix=CACHE_PREFIX).get(key.removeprefix(CACHE_PREFIX))
    assert "<strong>pangolin</strong>" in cached and "<li>north: 12</li>" in cached
    assert cached in from_a.text

    hits = store.info("stats")["keyspace_hits"]
    with commands_run(store) as by_b:
        from_b = on_b.get(f"{b.url}{panel}", headers=fragment, timeout=TIMEOUT)
    assert from_b.status_code == 200
    assert cached in from_b.text
    # A hit: B read A's render and stored nothing (a render of its own would have been written back).
    assert on_key(by_b, key) == ["GET"]
    assert store.info("stats")["keyspace_hits"] == hits + 1


def test_a_session_made_on_one_host_is_valid_on_the_other_until_logout_on_either(
        hosts: tuple[Host, Host]) -> None:
    user = make_user(EMAIL)
    recording.record_from_values(user, pipeline="Nightly digest", input="today", model="gpt-4o", final_output="ok")
    db.session.commit()
    a, b = hosts
    browser = requests.Session()  # one browser behind a load balancer that sends it to either host
    assert log_in(browser, a).status_code == 302

    page = browser.get(f"{b.url}/artifacts", timeout=TIMEOUT, allow_redirects=False)
    assert page.status_code == 200
    assert "Nightly digest" in page.text
    # Logging out on A with the form B served: the CSRF token's secret travels in the session cookie.
    cookies = browser.cookies.get_dict()
    assert set(cookies) == {"session"}
    out = browser.post(f"{a.url}/logout", data={"csrf_token": csrf_from(page.text)}, timeout=TIMEOUT,
                       allow_redirects=False)
    assert out.status_code == 302 and out.headers["Location"].endswith("/login")

    # The old cookie, replayed to either host, is a stranger's: sent to log in, shown nothing.
    for host in (b, a):
        replay = requests.get(f"{host.url}/artifacts", cookies=cookies, timeout=TIMEOUT, allow_redirects=False)
        assert replay.status_code == 302, (host.url, replay.status_code)
        assert "/login" in replay.headers["Location"]
        assert "Nightly digest" not in replay.text
