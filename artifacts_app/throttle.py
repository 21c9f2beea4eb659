"""Throttle guesses, not people: login and sign-up limits that a stranger cannot use to lock anyone out.

Four rules, all counted on failures only (sign-up: on every attempt):

* PAIR_RULE, per (account, address): 10 failures in 15 minutes and that pair meets a wall, 429
  until the window frees up. Only the guesser's own address is walled for that account.
* ADDRESS_RULE, per address across accounts: a looser wall, 100 failures in 15 minutes.
* ACCOUNT_RULE, per account across addresses: 10 failures in 15 minutes start a slowdown, never
  a wall: one attempt per ACCOUNT_GAP (30 s) on that account. The owner, from another address,
  gets in after at most 30 s; a distributed guesser gets about 30 tries per 15 minutes.
* SIGNUP_RULE, per address: 10 sign-up attempts an hour.

A success clears only the pair's count: clearing the account's would reset a distributed
guesser's budget, and clearing the address's would let one real login launder a hundred guesses.

The counts must be shared by every gunicorn worker and host, so they live in the database by
default (rows in login_failures, keyed "<rule>:<…>"), or in any store the `limits` library speaks
(Redis, Memcached) via RATELIMIT_STORAGE_URI. Emails are only ever stored hashed.

A store that is down or stalls fails closed: ThrottleUnavailable, which the app answers with a 503
(errors.py). Failing open would hand a guesser unlimited tries for as long as the store is away
(and an outage is something a guesser can wait for, or cause); refusing password checks for that
long is visible and ends by itself, and nothing else in the app needs the store.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

import limits
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import delete, or_, select

from .extensions import db
from .models import LoginFailure
from .types import utcnow


@dataclass(frozen=True)
class Rule:
    """At most `limit` counted events per key in any `window`."""

    prefix: str
    limit: int
    window: timedelta


PAIR_RULE = Rule("pair", 10, timedelta(minutes=15))
ADDRESS_RULE = Rule("ip", 100, timedelta(minutes=15))
ACCOUNT_RULE = Rule("email", 10, timedelta(minutes=15))
ACCOUNT_GAP = timedelta(seconds=30)
SIGNUP_RULE = Rule("signup", 10, timedelta(hours=1))
LOGIN_RULES = (PAIR_RULE, ADDRESS_RULE, ACCOUNT_RULE)
# The limits store counts account failures past the slowdown threshold too (a moving window that
# stopped counting at 10 would forget the slowdown 15 minutes after the first burst).
ACCOUNT_COUNT_CAPACITY = 1000
# A stalled Redis must answer a login within about a second (redis-py waits forever by default);
# a timeout in the URI's query (?socket_timeout=…) still wins, redis-py lets the URI override these.
STORE_TIMEOUT_SECONDS = 1.0
REDIS_SCHEMES = ("redis", "rediss", "valkey", "valkeys")  # with +unix, +sentinel, +cluster
UNAVAILABLE_RETRY_SECONDS = 30  # the Retry-After of the 503 while the store is away

logger = logging.getLogger(__name__)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _normal_email(email: str) -> str:
    return email.strip().lower()


def email_key(email: str) -> str:
    """The account rule's key, hashed so typed addresses are not stored."""
    return f"{ACCOUNT_RULE.prefix}:" + _digest(_normal_email(email))


def address_key(address: str | None) -> str:
    """The address rule's key."""
    return f"{ADDRESS_RULE.prefix}:{address or 'unknown'}"


def pair_key(email: str, address: str | None) -> str:
    """The (account, address) rule's key, hashed as a whole."""
    return f"{PAIR_RULE.prefix}:" + _digest(f"{_normal_email(email)}\n{address or 'unknown'}")


def signup_key(address: str | None) -> str:
    """The sign-up rule's key."""
    return f"{SIGNUP_RULE.prefix}:{address or 'unknown'}"


@dataclass(frozen=True)
class Attempt:
    """One login attempt: which account, from where."""

    email: str
    address: str | None

    def key(self, rule: Rule) -> str:
        if rule is PAIR_RULE:
            return pair_key(self.email, self.address)
        if rule is ADDRESS_RULE:
            return address_key(self.address)
        return email_key(self.email)


@dataclass(frozen=True)
class Refusal:
    """Why and for how long an attempt is refused: a wall (minutes) or a slowdown (seconds)."""

    until: datetime
    seconds: int
    slowdown: bool = False


def _refusal(until: datetime, now: datetime, *, slowdown: bool = False) -> Refusal:
    return Refusal(until, max(1, math.ceil((until - now).total_seconds())), slowdown)


def _longest(refusals: Iterable[Refusal | None]) -> Refusal | None:
    found = [refusal for refusal in refusals if refusal is not None]
    return max(found, key=lambda refusal: refusal.until) if found else None


class ThrottleUnavailable(Exception):
    """The throttle's store did not answer, so `what` (a sign-in, a sign-up) cannot be judged now."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}: the login throttle's store did not answer")
        self.what = what


class LoginThrottle(Protocol):
    def refusal(self, attempt: Attempt) -> Refusal | None:
        """Why this login attempt may not be judged now, or None if it may."""

    def record_failure(self, attempt: Attempt) -> None:
        """Count one failed login against the pair, the address and the account."""

    def record_success(self, attempt: Attempt) -> None:
        """Forget the pair's failures (only the pair's)."""

    def signup_refusal(self, address: str | None) -> Refusal | None:
        """Why a sign-up from this address may not go ahead now, or None."""

    def record_signup(self, address: str | None) -> None:
        """Count one sign-up attempt from the address."""

    def forget_account(self, email: str) -> None:
        """Drop what the store keeps under the email's own keys (a deleted account); never raises."""


def wall_until(times: list[datetime], rule: Rule, now: datetime) -> datetime | None:
    """When the rule's wall comes down, given the key's event times, or None if there is none."""
    recent = sorted(time for time in times if time > now - rule.window)
    if len(recent) < rule.limit:
        return None
    # Free once the count drops below the limit: when the limit-th newest event ages out.
    return recent[len(recent) - rule.limit] + rule.window


def slowdown_until(times: list[datetime], now: datetime) -> datetime | None:
    """When the account may be tried again, given its failure times, or None if it may be now."""
    recent = [time for time in times if time > now - ACCOUNT_RULE.window]
    if len(recent) < ACCOUNT_RULE.limit:
        return None
    until = max(recent) + ACCOUNT_GAP
    return until if until > now else None


class DatabaseThrottle:
    """Failures as rows; the caller's transaction commits them. `now` is injectable for tests."""

    def __init__(self, now: Callable[[], datetime] = utcnow) -> None:
        self.now = now

    def _times(self, keys: list[str], since: datetime) -> dict[str, list[datetime]]:
        rows = db.session.execute(
            select(LoginFailure.key, LoginFailure.failed_at).where(
                LoginFailure.key.in_(keys), LoginFailure.failed_at > since
            )
        ).all()
        times: dict[str, list[datetime]] = {key: [] for key in keys}
        for key, failed_at in rows:
            times[key].append(failed_at)
        return times

    def _record(self, keyed: list[tuple[str, Rule]]) -> None:
        now = self.now()
        db.session.add_all(LoginFailure(key=key, failed_at=now) for key, _ in keyed)
        # Expired rows are never read again; dropping them here keeps the table small.
        db.session.execute(
            delete(LoginFailure).where(
                or_(*(
                    (LoginFailure.key == key) & (LoginFailure.failed_at <= now - rule.window)
                    for key, rule in keyed
                ))
            )
        )

    def refusal(self, attempt: Attempt) -> Refusal | None:
        now = self.now()
        keys = {rule: attempt.key(rule) for rule in LOGIN_RULES}
        longest = max(rule.window for rule in LOGIN_RULES)
        times = self._times(list(keys.values()), now - longest)
        refusals = []
        for rule in (PAIR_RULE, ADDRESS_RULE):
            until = wall_until(times[keys[rule]], rule, now)
            refusals.append(_refusal(until, now) if until else None)
        until = slowdown_until(times[keys[ACCOUNT_RULE]], now)
        refusals.append(_refusal(until, now, slowdown=True) if until else None)
        return _longest(refusals)

    def record_failure(self, attempt: Attempt) -> None:
        self._record([(attempt.key(rule), rule) for rule in LOGIN_RULES])

    def record_success(self, attempt: Attempt) -> None:
        db.session.execute(delete(LoginFailure).where(LoginFailure.key == attempt.key(PAIR_RULE)))

    def signup_refusal(self, address: str | None) -> Refusal | None:
        now = self.now()
        key = signup_key(address)
        until = wall_until(self._times([key], now - SIGNUP_RULE.window)[key], SIGNUP_RULE, now)
        return _refusal(until, now) if until else None

    def record_signup(self, address: str | None) -> None:
        self._record([(signup_key(address), SIGNUP_RULE)])

    def forget_account(self, email: str) -> None:
        """Nothing more: deleting.delete_account deletes the email's rows in its own transaction."""


def store_options(storage_uri: str) -> dict[str, float | str | bool]:
    """Options for the `limits` store: its errors wrapped in StorageError, and socket timeouts for Redis."""
    options: dict[str, float | str | bool] = {"wrap_exceptions": True}
    if urlsplit(storage_uri).scheme.split("+")[0] in REDIS_SCHEMES:
        options |= {"socket_timeout": STORE_TIMEOUT_SECONDS, "socket_connect_timeout": STORE_TIMEOUT_SECONDS}
    return options


@contextmanager
def _judging(what: str) -> Iterator[None]:
    """Turn the store's failure into ThrottleUnavailable(what)."""
    try:
        yield
    except StorageError as error:
        raise ThrottleUnavailable(what) from error


def _item(amount: int, window: timedelta) -> limits.RateLimitItem:
    return limits.RateLimitItemPerSecond(amount, int(window.total_seconds()))


class LimitsThrottle:
    """The same rules in `limits` moving windows: Redis or Memcached for many hosts, memory:// in tests.

    The store keeps its own clock (time.time()); `now` only turns its reset times into waits.
    """

    NAMESPACE = "login"

    def __init__(self, storage_uri: str, now: Callable[[], datetime] = utcnow) -> None:
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri, **store_options(storage_uri)))
        self.now = now
        self.items = {
            PAIR_RULE: _item(PAIR_RULE.limit, PAIR_RULE.window),
            ADDRESS_RULE: _item(ADDRESS_RULE.limit, ADDRESS_RULE.window),
            ACCOUNT_RULE: _item(ACCOUNT_COUNT_CAPACITY, ACCOUNT_RULE.window),
            SIGNUP_RULE: _item(SIGNUP_RULE.limit, SIGNUP_RULE.window),
        }
        self.gap = _item(1, ACCOUNT_GAP)

    def _at(self, timestamp: float) -> datetime:
        return datetime.fromtimestamp(timestamp, tz=self.now().tzinfo)

    def _wall(self, rule: Rule, key: str, now: datetime) -> Refusal | None:
        stats = self.limiter.get_window_stats(self.items[rule], self.NAMESPACE, key)
        return _refusal(self._at(stats.reset_time), now) if stats.remaining <= 0 else None

    def _gap_refusal(self, gap_key: str, now: datetime) -> Refusal:
        reset = self.limiter.get_window_stats(self.gap, self.NAMESPACE, gap_key).reset_time
        return _refusal(max(self._at(reset), now), now, slowdown=True)

    def refusal(self, attempt: Attempt) -> Refusal | None:
        with _judging("Sign-in"):
            return self._refusal(attempt)

    def _refusal(self, attempt: Attempt) -> Refusal | None:
        now = self.now()
        wall = _longest(self._wall(rule, attempt.key(rule), now) for rule in (PAIR_RULE, ADDRESS_RULE))
        if wall is not None:
            return wall
        account = attempt.key(ACCOUNT_RULE)
        remaining = self.limiter.get_window_stats(self.items[ACCOUNT_RULE], self.NAMESPACE, account).remaining
        if ACCOUNT_COUNT_CAPACITY - remaining < ACCOUNT_RULE.limit:
            return None
        gap_key = "gap:" + account
        # In the slowdown an attempt takes the account's one slot per gap, atomically in the
        # store, so parallel requests cannot all slip through together.
        if not self.limiter.hit(self.gap, self.NAMESPACE, gap_key):
            return self._gap_refusal(gap_key, now)
        return None

    # A failure to record a failure (or a success) is answered like one to judge: the same 503
    # either way, so the answer never tells a guesser whether the password was right.
    def record_failure(self, attempt: Attempt) -> None:
        with _judging("Sign-in"):
            for rule in LOGIN_RULES:
                self.limiter.hit(self.items[rule], self.NAMESPACE, attempt.key(rule))
            # Each failure also starts a gap, as in the database: the attempt after the tenth waits.
            self.limiter.hit(self.gap, self.NAMESPACE, "gap:" + attempt.key(ACCOUNT_RULE))

    def record_success(self, attempt: Attempt) -> None:
        with _judging("Sign-in"):
            self.limiter.clear(self.items[PAIR_RULE], self.NAMESPACE, attempt.key(PAIR_RULE))

    def signup_refusal(self, address: str | None) -> Refusal | None:
        with _judging("Sign-up"):
            return self._wall(SIGNUP_RULE, signup_key(address), self.now())

    def record_signup(self, address: str | None) -> None:
        with _judging("Sign-up"):
            self.limiter.hit(self.items[SIGNUP_RULE], self.NAMESPACE, signup_key(address))

    def forget_account(self, email: str) -> None:
        """Clear the account rule's count and its gap. The (email, address) pairs are hashed whole
        and cannot be found without the addresses; they expire with their window (15 minutes)."""
        account = email_key(email)
        try:
            self.limiter.clear(self.items[ACCOUNT_RULE], self.NAMESPACE, account)
            self.limiter.clear(self.gap, self.NAMESPACE, "gap:" + account)
        except StorageError:
            logger.warning("the login throttle's store did not answer; a deleted account's counts expire "
                           "within %s", ACCOUNT_RULE.window, exc_info=True)


def make_throttle(storage_uri: str | None) -> LoginThrottle:
    """The database throttle by default; a `limits` store when a URI is configured."""
    return LimitsThrottle(storage_uri) if storage_uri else DatabaseThrottle()
