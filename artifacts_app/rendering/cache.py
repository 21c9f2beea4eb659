"""The render cache: shared by all gunicorn workers and kept across restarts (files, or Redis)."""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask
from flask_caching import Cache

CACHE_SUBDIR = "render-cache"
CACHE_TIMEOUT_SECONDS = 30 * 24 * 3600  # renders are pure functions of text; expiry only frees space
CACHE_THRESHOLD = 5000  # FileSystemCache files before it prunes
CACHE_KEY_PREFIX = "artifacts:"  # namespaces our keys in a Redis shared with other uses
CACHE_SOCKET_TIMEOUT_SECONDS = 1.0
# After a failure the cache is left alone this long: a stalled Redis then costs a worker one socket
# timeout per pause instead of one (or two: the read, then the write) on every page.
CACHE_PAUSE_SECONDS = 5.0
PAUSE_EXTENSION = "render_cache_pause"  # where init_app keeps the app's CachePause

cache = Cache()


class CachePause:
    """Whether the cache is being skipped after a failure. Hand-written, not a circuit-breaker
    library: one deadline is all it takes, and a race between threads only costs one more try."""

    def __init__(self, seconds: float = CACHE_PAUSE_SECONDS) -> None:
        self.seconds = seconds
        self.until = 0.0

    def active(self) -> bool:
        """True while the cache is to be skipped."""
        return time.monotonic() < self.until

    def start(self) -> None:
        """The cache just failed: skip it for the next `seconds`."""
        self.until = time.monotonic() + self.seconds


def cache_config(app: Flask) -> dict[str, Any]:
    """Flask-Caching settings: RedisCache when CACHE_REDIS_URL is set, else files in the instance folder."""
    config: dict[str, Any] = {
        "CACHE_DEFAULT_TIMEOUT": CACHE_TIMEOUT_SECONDS,
        "CACHE_KEY_PREFIX": CACHE_KEY_PREFIX,
    }
    redis_url = app.config.get("CACHE_REDIS_URL")
    if redis_url:
        config["CACHE_TYPE"] = "RedisCache"
        config["CACHE_REDIS_URL"] = redis_url
        # A stalled Redis must cost a page a second, not hang it (redis-py waits forever by default).
        config["CACHE_OPTIONS"] = {"socket_timeout": CACHE_SOCKET_TIMEOUT_SECONDS,
                                   "socket_connect_timeout": CACHE_SOCKET_TIMEOUT_SECONDS}
    else:
        config["CACHE_TYPE"] = "FileSystemCache"
        config["CACHE_DIR"] = os.path.join(app.instance_path, CACHE_SUBDIR)
        config["CACHE_THRESHOLD"] = CACHE_THRESHOLD
    return config
