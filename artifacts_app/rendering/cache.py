"""The render cache: shared by all gunicorn workers and kept across restarts (files, or Redis)."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from flask_caching import Cache

CACHE_SUBDIR = "render-cache"
CACHE_TIMEOUT_SECONDS = 30 * 24 * 3600  # renders are pure functions of text; expiry only frees space
CACHE_THRESHOLD = 5000  # FileSystemCache files before it prunes
CACHE_KEY_PREFIX = "artifacts:"  # namespaces our keys in a Redis shared with other uses

cache = Cache()



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
        config["CACHE_OPTIONS"] = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
    else:
        config["CACHE_TYPE"] = "FileSystemCache"
        config["CACHE_DIR"] = os.path.join(app.instance_path, CACHE_SUBDIR)
        config["CACHE_THRESHOLD"] = CACHE_THRESHOLD
    return config
