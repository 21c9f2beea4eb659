"""Login throttling: after too many failures for one email or one address, refuse for a while.

The counts must be shared by every gunicorn worker and host, so they live in the database by
default, or in any store the `limits` library speaks (Redis, Memcached) via RATELIMIT_STORAGE_URI.
Flask-Limiter decorates routes and counts every request; here only failures count and a
success clears the email's count, so the decision is made inside the login view instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Protocol

import limits
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import delete, func, select

from .extensions import db
from .models import LoginFailure
from .types import utcnow

MAX_FAILURES = 10
WINDOW = timedelta(minutes=15)


def email_key(email: str) -> str:
    """The throttle key for an email address, hashed so typed addresses are not stored."""
    return "email:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def address_key(address: str | None) -> str:
    """The throttle key for a client address."""
    return f"ip:{address or 'unknown'}"


class LoginThrottle(Protocol):
    def blocked_until(self, keys: Iterable[str]) -> datetime | None:
        """When the latest-freed of the blocked keys frees up, or None if none is blocked."""

    def record_failure(self, keys: Iterable[str]) -> None:
        """Count one failed login against each key."""

    def clear(self, key: str) -> None:
        """Forget a key's failures (after a successful login)."""


class DatabaseThrottle:
    """Failures as rows; the caller's transaction commits them."""

    def __init__(self, now: Callable[[], datetime] = utcnow) -> None:
        self.now = now

    def blocked_until(self, keys: Iterable[str]) -> datetime | None:
        since = self.now() - WINDOW
        rows = db.session.execute(
            select(LoginFailure.key, func.count(), func.min(LoginFailure.failed_at))
            .where(LoginFailure.key.in_(list(keys)), LoginFailure.failed_at > since)
            .group_by(LoginFailure.key)
        ).all()
        frees = [oldest + WINDOW for _, count, oldest in rows if count >= MAX_FAILURES]
        return max(frees) if frees else None

    def record_failure(self, keys: Iterable[str]) -> None:
        now = self.now()
        keys = list(keys)
        db.session.add_all(LoginFailure(key=key, failed_at=now) for key in keys)
        # Expired rows are never read again; dropping them here keeps the table small.
        db.session.execute(
            delete(LoginFailure).where(LoginFailure.key.in_(keys), LoginFailure.failed_at <= now - WINDOW)
        )

    def clear(self, key: str) -> None:
        db.session.execute(delete(LoginFailure).where(LoginFailure.key == key))


class LimitsThrottle:
    """Failures in a `limits` moving window: Redis or Memcached for many hosts, memory:// in tests."""

    def __init__(self, storage_uri: str) -> None:
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self.item = limits.RateLimitItemPerMinute(MAX_FAILURES, int(WINDOW.total_seconds() // 60))

    def blocked_until(self, keys: Iterable[str]) -> datetime | None:
        frees = []
        for key in keys:
            if not self.limiter.test(self.item, "login", key):
                reset = self.limiter.get_window_stats(self.item, "login", key).reset_time
                frees.append(datetime.fromtimestamp(reset, tz=utcnow().tzinfo))
        return max(frees) if frees else None

    def record_failure(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.limiter.hit(self.item, "login", key)

    def clear(self, key: str) -> None:
        self.limiter.clear(self.item, "login", key)


def make_throttle(storage_uri: str | None) -> LoginThrottle:
    """The database throttle by default; a `limits` store when a URI is configured."""
    return LimitsThrottle(storage_uri) if storage_uri else DatabaseThrottle()
