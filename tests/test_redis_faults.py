"""Faults are answered, not suffered (DESIGN.md rule 11), when Redis holds the login-throttle counts
and the render cache: a Redis that is stopped, or frozen with SIGSTOP (it accepts connections and
answers nothing), costs a page at most about a second and the page is still served; a password
check is refused at once with a 503 (the throttle fails closed) while signed-in pages and the API,
which need no throttle, keep working; and all comes back by itself when Redis does.

The app is served over real HTTP by werkzeug in a thread, with a redis-server the test starts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
import redis
import requests
from flask import Flask
from sqlalchemy import func, select

from artifacts_app import recording, throttle, tokens
from artifacts_app.extensions import db
from artifacts_app.models import PipelineRun, User
from artifacts_app.rendering.cache import CACHE_PAUSE_SECONDS
from tests.conftest import dispose, make_app
from tests.factories import LOGIN_FAILED_MESSAGE, PASSWORD, make_user
from tests.http_helpers import csrf_from
from tests.redis_servers import RedisServer, running_redis
from tests.servers import serving

EMAIL = "ada@example.com"
TIMEOUT = 10.0  # what requests waits for, far beyond any bound asserted
FAST = 3.0  # seconds: a loose bound on a loaded machine; the stores' socket timeouts are 1 s
CACHED = "artifacts:md:*"  # the render cache's keys (CACHE_KEY_PREFIX in artifacts_app/rendering/cache.py)
STEP_OUTPUT = "## Step {n}\n\nThe **pangolin {n}** count rose:\n\n- north: 12\n"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def store(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the test's Redis, to look at what the app keeps there."""
    client = redis.Redis.from_url(redis_server.url, socket_timeout=TIMEOUT)
    yield client
    client.close()


@pytest.fixture
def site(app: Flask, database_url: str, tmp_path: Path, redis_server: RedisServer) -> Iterator[str]:
    """The app with its login throttle and render cache in the test's Redis, served on 127.0.0.1;
    its base URL. Depends on `app`, which empties the database after it has stopped."""
    served = make_app(database_url, tmp_path / "instance-redis", RATELIMIT_STORAGE_URI=redis_server.url,
                      CACHE_REDIS_URL=redis_server.url, SIGNUP_ENABLED=True,
                      SESSION_COOKIE_SECURE=False, REMEMBER_COOKIE_SECURE=False)
    try:
        with serving(served) as url:
            yield url
    finally:
        with served.app_context():
            dispose(served)


def timed(call: Callable[[], requests.Response]) -> tuple[requests.Response, float]:
    """The response and the seconds it took."""
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def log_in(browser: requests.Session, site: str, password: str = PASSWORD) -> requests.Response:
    """Fetch the login form and post it, as a browser does; the answer, unfollowed."""
    form = browser.get(f"{site}/login", timeout=TIMEOUT)
    return browser.post(f"{site}/login", timeout=TIMEOUT, allow_redirects=False,
                        data={"csrf_token": csrf_from(form.text), "email": EMAIL, "password": password})


def assert_unavailable(answer: requests.Response, what: str) -> None:
    """A 503 that says what cannot be done now and when to retry."""
    assert answer.status_code == 503, answer.text
    assert 1 <= int(answer.headers["Retry-After"]) <= 120
    assert f"{what} is unavailable for a moment" in answer.text
    assert "Nothing was changed" in answer.text


def run_with_steps(user: User, count: int) -> PipelineRun:
    run = recording.record_from_values(
        user, pipeline="Survey", input="count them", model="gpt-4o", final_output="done",
        steps=[{"agentId": "w", "agentName": "Writer", "stepOrder": n, "output": STEP_OUTPUT.format(n=n + 1)}
               for n in range(count)])
    db.session.commit()
    return run


def test_a_frozen_or_stopped_render_cache_costs_a_page_at_most_a_second(
        site: str, redis_server: RedisServer, store: redis.Redis) -> None:
    run = run_with_steps(make_user(EMAIL), 8)
    browser = requests.Session()
    assert log_in(browser, site).status_code == 302

    def panel(n: int) -> requests.Response:
        """Step n's tab as htmx asks for it; it must come rendered, cache or no cache."""
        answer = browser.get(f"{site}/artifacts/{run.id}?tab=step-{n}", headers={"HX-Request": "true"},
                             timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        assert f"<strong>pangolin {n}</strong>" in answer.text and "<li>north: 12</li>" in answer.text
        return answer

    panel(1)
    assert len(list(store.scan_iter(match=CACHED))) == 1  # Redis answers: the render was cached

    redis_server.freeze()
    seconds = [timed(partial(panel, n))[1] for n in (2, 3, 4)]
    page, whole_page_seconds = timed(lambda: browser.get(f"{site}/artifacts/{run.id}", timeout=TIMEOUT))
    assert page.status_code == 200 and "Survey" in page.text
    # Each page within the bound; and together they paid the socket timeout once, not once (or
    # twice: the read, then the write) per render.
    assert max(seconds) < FAST, seconds
    assert sum(seconds) + whole_page_seconds < FAST, (seconds, whole_page_seconds)
    print(f"frozen Redis: step pages took {[round(s, 2) for s in seconds]} s, the whole page "
          f"{whole_page_seconds:.2f} s")
    redis_server.thaw()

    redis_server.stop()
    _, down_seconds = timed(lambda: panel(5))
    assert down_seconds < FAST

    # Redis back, empty (it keeps nothing on disk): the cache is used again once its pause is over.
    redis_server.start()
    deadline = time.monotonic() + CACHE_PAUSE_SECONDS + TIMEOUT
    n = 6
    while not list(store.scan_iter(match=CACHED)):
        assert time.monotonic() < deadline, "the render cache was not used again after Redis came back"
        panel(n if n <= 8 else 6 + n % 3)
        n += 1
        time.sleep(0.25)


def test_with_redis_stopped_password_checks_are_a_fast_503_and_the_rest_still_works(
        site: str, redis_server: RedisServer) -> None:
    user = make_user(EMAIL)
    run = run_with_steps(user, 1)
    _, token = tokens.create_token(user, "executor")
    db.session.commit()
    signed_in = requests.Session()
    assert log_in(signed_in, site).status_code == 302  # before Redis goes

    redis_server.stop()

    stranger = requests.Session()
    right, seconds = timed(lambda: log_in(stranger, site))
    assert_unavailable(right, "Sign-in")
    assert seconds < FAST
    # The wrong password gets the very same answer: it does not tell a guesser which it was.
    wrong = log_in(requests.Session(), site, "not the password")
    assert_unavailable(wrong, "Sign-in")
    assert LOGIN_FAILED_MESSAGE not in wrong.text
    # The 503 signed nobody in.
    assert stranger.get(f"{site}/artifacts", timeout=TIMEOUT, allow_redirects=False).status_code == 302

    form = requests.get(f"{site}/signup", timeout=TIMEOUT)
    signup = requests.post(f"{site}/signup", cookies=form.cookies, timeout=TIMEOUT, allow_redirects=False, data={
        "csrf_token": csrf_from(form.text), "email": "new@example.com", "password": PASSWORD, "confirm": PASSWORD})
    assert_unavailable(signup, "Sign-up")
    assert db.session.scalar(select(func.count()).select_from(User)) == 1

    # Signed-in browsing needs no throttle: the list, and a run with its output rendered.
    listing = signed_in.get(f"{site}/artifacts", timeout=TIMEOUT, allow_redirects=False)
    assert listing.status_code == 200 and "Survey" in listing.text
    detail = signed_in.get(f"{site}/artifacts/{run.id}?tab=step-1", timeout=TIMEOUT)
    assert detail.status_code == 200 and "<strong>pangolin 1</strong>" in detail.text
    # Deleting the account checks the password: refused, and nothing is deleted.
    form = signed_in.get(f"{site}/settings/account/delete", timeout=TIMEOUT)
    deleting = signed_in.post(f"{site}/settings/account/delete", timeout=TIMEOUT, allow_redirects=False,
                              data={"csrf_token": csrf_from(form.text), "password": PASSWORD})
    assert_unavailable(deleting, "Checking your password")
    db.session.expire_all()
    assert db.session.get(User, user.id) is not None

    # The API needs no throttle either: reading, and recording a run.
    bearer = {"Authorization": f"Bearer {token}"}
    runs = requests.get(f"{site}/api/v1/runs", headers=bearer, timeout=TIMEOUT)
    assert runs.status_code == 200 and [item["id"] for item in runs.json()["runs"]] == [run.id]
    recorded = requests.post(f"{site}/api/v1/runs", headers=bearer, timeout=TIMEOUT, json={
        "pipeline": "Survey", "input": "again", "model": "gpt-4o", "status": "completed", "finalOutput": "ok"})
    assert recorded.status_code == 201, recorded.text

    # Redis back: signing in works again, without a restart.
    redis_server.start()
    assert log_in(stranger, site).status_code == 302


def test_with_redis_frozen_sign_in_is_a_503_within_two_seconds_and_recovers(
        site: str, redis_server: RedisServer) -> None:
    make_user(EMAIL)
    log_in(requests.Session(), site, "not the password")  # the throttle's connection is open and used

    redis_server.freeze()
    answers = [timed(lambda: log_in(requests.Session(), site)) for _ in range(2)]
    for answer, seconds in answers:
        assert_unavailable(answer, "Sign-in")
        assert seconds < FAST, seconds
    print(f"frozen Redis: sign-in answered 503 in {[round(seconds, 2) for _, seconds in answers]} s")

    redis_server.thaw()
    assert log_in(requests.Session(), site).status_code == 302


def test_deleting_the_account_clears_its_counts_in_redis(site: str, store: redis.Redis) -> None:
    make_user(EMAIL)
    browser = requests.Session()
    for _ in range(3):
        assert LOGIN_FAILED_MESSAGE in log_in(browser, site, "not the password").text
    assert log_in(browser, site).status_code == 302
    email_digest = throttle.email_key(EMAIL).removeprefix(f"{throttle.ACCOUNT_RULE.prefix}:")
    pair_digest = throttle.pair_key(EMAIL, "127.0.0.1").removeprefix(f"{throttle.PAIR_RULE.prefix}:")

    def keys_naming_the_email() -> list[bytes]:
        return [key for key in store.scan_iter() if email_digest.encode() in key or pair_digest.encode() in key]

    # The account's failures are counted in Redis (the pair's were cleared by the right password).
    assert keys_naming_the_email()

    form = browser.get(f"{site}/settings/account/delete", timeout=TIMEOUT)
    deleted = browser.post(f"{site}/settings/account/delete", timeout=TIMEOUT, allow_redirects=False,
                           data={"csrf_token": csrf_from(form.text), "password": PASSWORD})
    assert deleted.status_code == 303, deleted.text
    assert db.session.scalar(select(func.count()).select_from(User)) == 0
    assert keys_naming_the_email() == []
    # The address's own count is about the address, not the account: it stays.
    assert any(b"ip:127.0.0.1" in key for key in store.scan_iter())
