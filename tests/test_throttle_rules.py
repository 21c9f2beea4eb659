"""The login throttle throttles guesses, not people, on both stores and both engines.

A guesser's (account, address) pair meets a wall after 10 failures; the account itself only slows
to one attempt per 30 s, so its owner from another address gets in; one address failing on many
accounts is walled at 100; sign-up is limited per address.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import limits.storage.memory
import pytest
from flask import Flask
from sqlalchemy import select

from artifacts_app import throttle
from artifacts_app.extensions import db
from artifacts_app.models import LoginFailure
from tests.factories import LOGIN_FAILED_MESSAGE, PASSWORD, make_user
from tests.http_helpers import IsolatedClient, browser, csrf_token, post_login

ADA = "ada@example.com"
BOB = "bob@example.com"
WRONG = "not the password"
_runs = itertools.count(1)


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture(params=["database", "limits-memory"])
def clock(request: pytest.FixtureRequest, app: Flask, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The app's throttle on an injectable clock: the database store, or the limits memory store."""
    clock = Clock()
    if request.param == "database":
        app.extensions["login_throttle"] = throttle.DatabaseThrottle(now=clock)
    else:
        monkeypatch.setattr(limits.storage.memory, "time", SimpleNamespace(time=lambda: clock().timestamp()))
        app.extensions["login_throttle"] = throttle.LimitsThrottle("memory://", now=clock)
    return clock


@pytest.fixture
def users(app: Flask) -> None:
    make_user(ADA)
    make_user(BOB)


def at(number: int) -> dict[str, str]:
    return {"REMOTE_ADDR": f"10.1.{number // 250}.{number % 250 + 1}"}


def fail(client: IsolatedClient, email: str, environ: dict[str, str], times: int = 1) -> None:
    token = csrf_token(client)
    for _ in range(times):
        response = post_login(client, email, WRONG, token=token, environ_base=environ)
        assert response.status_code == 200, (email, environ, response.status_code)
        assert LOGIN_FAILED_MESSAGE in response.get_data(as_text=True)


def login(app: Flask, email: str, environ: dict[str, str]):  # type: ignore[no-untyped-def]
    return post_login(browser(app), email, PASSWORD, environ_base=environ)


def wall_seconds(response) -> int:  # type: ignore[no-untyped-def]
    assert response.status_code == 429, response.get_data(as_text=True)
    seconds = int(response.headers["Retry-After"])
    minutes = -(-seconds // 60)
    assert re.search(rf"Try again in {minutes} minutes?\.", response.get_data(as_text=True))
    return seconds


def slowdown_seconds(response) -> int:  # type: ignore[no-untyped-def]
    assert response.status_code == 429, response.get_data(as_text=True)
    seconds = int(response.headers["Retry-After"])
    assert 1 <= seconds <= 30
    assert re.search(rf"Wait {seconds} seconds? and try again\.", response.get_data(as_text=True))
    return seconds


def test_the_guessers_pair_is_walled_after_ten_failures(app: Flask, clock: Clock, users: None) -> None:
    fail(browser(app), ADA, at(1), times=10)

    assert wall_seconds(login(app, ADA, at(1))) > 890
    clock.advance(60)  # past the account's slowdown: the pair's wall still stands
    assert 830 <= wall_seconds(login(app, ADA, at(1))) <= 840
    # Bob, from the guesser's own address, is not affected.
    assert login(app, BOB, at(1)).status_code == 302
    clock.advance(15 * 60)
    assert login(app, ADA, at(1)).status_code == 302


def test_the_owner_from_another_address_gets_in_after_the_slowdown_gap(
    app: Flask, clock: Clock, users: None
) -> None:
    fail(browser(app), ADA, at(1), times=10)

    assert slowdown_seconds(login(app, ADA, at(2))) == 30
    clock.advance(12)
    assert slowdown_seconds(login(app, ADA, at(2))) == 18
    clock.advance(18.5)  # a `limits` window still holds an event exactly 30 s old
    response = login(app, ADA, at(2))
    assert response.status_code == 302 and response.headers["Location"] == "/artifacts"
    # The success cleared only the owner's own pair: the guesser is still walled.
    assert wall_seconds(login(app, ADA, at(1))) > 800


def test_a_distributed_guesser_gets_one_try_per_thirty_seconds(app: Flask, clock: Clock, users: None) -> None:
    guesser = browser(app)
    for n in range(10):
        fail(guesser, ADA, at(n))
    tries = 0
    for step in range(148):  # 15 minutes in steps of 6.1 s, each from a new address
        clock.advance(6.1)
        response = post_login(guesser, ADA, WRONG, environ_base=at(100 + step))
        if response.status_code == 200:
            tries += 1
        else:
            slowdown_seconds(response)
    assert tries == 29  # every fifth step, 30.5 s after the last try: 148 steps hold 29 of them


def test_success_clears_only_the_pairs_count(app: Flask, clock: Clock, users: None) -> None:
    if not isinstance(app.extensions["login_throttle"], throttle.DatabaseThrottle):
        pytest.skip("counts rows of the database store")
    for n in range(6):
        fail(browser(app), ADA, at(n))
    fail(browser(app), ADA, at(20), times=3)
    assert login(app, ADA, at(20)).status_code == 302
    db.session.expire_all()
    keys = [row.key for row in db.session.execute(select(LoginFailure)).scalars()]
    assert throttle.pair_key(ADA, at(20)["REMOTE_ADDR"]) not in keys
    assert keys.count(throttle.email_key(ADA)) == 9  # the account keeps its count
    assert keys.count(throttle.address_key(at(20)["REMOTE_ADDR"])) == 3
    assert all(ADA not in key for key in keys)  # emails are stored hashed
    # So one more failure makes ten on the account, and the next attempt from anywhere waits.
    fail(browser(app), ADA, at(40))
    slowdown_seconds(login(app, ADA, at(30)))


def test_one_address_failing_on_many_accounts_is_walled_only_at_one_hundred(
    app: Flask, clock: Clock, users: None
) -> None:
    guesser = browser(app)
    token = csrf_token(guesser)
    for n in range(99):
        response = post_login(guesser, f"guess{n}@example.com", WRONG, token=token, environ_base=at(5))
        assert response.status_code == 200, n

    assert login(app, ADA, at(5)).status_code == 302
    response = post_login(guesser, "guess99@example.com", WRONG, token=token, environ_base=at(5))
    assert response.status_code == 200
    assert wall_seconds(login(app, BOB, at(5))) > 890
    assert login(app, BOB, at(6)).status_code == 302


def test_signup_is_limited_per_address(app: Flask, clock: Clock) -> None:
    app.config["SIGNUP_ENABLED"] = True
    client = browser(app)
    token = csrf_token(client, "/signup", environ_base=at(7))
    run = next(_runs)
    for n in range(10):
        response = client.post(
            "/signup", environ_base=at(7),
            data={"csrf_token": token, "email": f"new{run}-{n}@example.com", "password": "long enough",
                  "confirm": "differs"},
        )
        assert response.status_code == 200, n
        assert "The passwords differ." in response.get_data(as_text=True)

    refused = client.post(
        "/signup", environ_base=at(7),
        data={"csrf_token": token, "email": f"new{run}@example.com", "password": "long enough", "confirm": "long enough"},
    )
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 3500
    assert "Too many sign-ups" in refused.get_data(as_text=True)
    other = browser(app)
    token = csrf_token(other, "/signup", environ_base=at(8))
    created = other.post(
        "/signup", environ_base=at(8),
        data={"csrf_token": token, "email": f"new{run}@example.com", "password": "long enough", "confirm": "long enough"},
    )
    assert created.status_code == 302


def test_rule_numbers_are_the_documented_ones() -> None:
    assert (throttle.PAIR_RULE.limit, throttle.PAIR_RULE.window) == (10, timedelta(minutes=15))
    assert (throttle.ADDRESS_RULE.limit, throttle.ADDRESS_RULE.window) == (100, timedelta(minutes=15))
    assert (throttle.ACCOUNT_RULE.limit, throttle.ACCOUNT_GAP) == (10, timedelta(seconds=30))
    assert (throttle.SIGNUP_RULE.limit, throttle.SIGNUP_RULE.window) == (10, timedelta(hours=1))


