"""Settings read from the environment, in one place."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from .limits import LIMITS

TRUE_WORDS = {"1", "true", "yes", "on"}


def env_flag(name: str, default: bool = False) -> bool:
    """An environment variable read as a boolean ("1", "true", "yes", "on")."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in TRUE_WORDS


def env_int(name: str, default: int, minimum: int = 1, maximum: int | None = None) -> int:
    """An environment variable read as an integer from `minimum` to `maximum`, or a clear error at start-up."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise RuntimeError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise RuntimeError(f"{name} must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise RuntimeError(f"{name} must be at most {maximum}, got {number}")
    return number


def database_url(raw: str | None, instance_path: Path) -> str:
    """The SQLAlchemy URL: DATABASE_URL with the psycopg 3 driver made explicit, else SQLite in instance/."""
    if not raw:
        return f"sqlite:///{instance_path / 'artifacts.db'}"
    for prefix in ("postgres://", "postgresql://"):
        # Hosting platforms hand out bare postgres:// URLs; SQLAlchemy would pick psycopg2 for them.
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix):]
    return raw


# Defaults that answer a dead or hung database within 5 s: a request waits at most POOL for a free
# pooled connection, then at most CONNECT for a new one (libpq's minimum is 2 s). STATEMENT ends a
# runaway query in a 503: gunicorn's threaded workers do not time out a request (gunicorn.conf.py).
DEFAULT_CONNECT_TIMEOUT_SECONDS = 3
DEFAULT_POOL_TIMEOUT_SECONDS = 1
DEFAULT_STATEMENT_TIMEOUT_SECONDS = 30


def engine_options(url: str) -> dict[str, Any]:
    """SQLAlchemy engine options for `url`: on SQLite every pooled connection pinged before use, on
    PostgreSQL (whose dead pooled connections extensions.py finds without a ping) the connect, pool
    and statement timeouts from the environment
    (DATABASE_CONNECT_TIMEOUT, DATABASE_POOL_TIMEOUT, DATABASE_STATEMENT_TIMEOUT, in seconds; a
    statement timeout of 0 means none). SQLite keeps its own waits (extensions.SQLITE_BUSY_TIMEOUT_MS)."""
    # Read whatever the database, so a bad value stops start-up on SQLite too.
    connect_seconds = env_int("DATABASE_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT_SECONDS, minimum=2)
    pool_seconds = env_int("DATABASE_POOL_TIMEOUT", DEFAULT_POOL_TIMEOUT_SECONDS)
    statement_seconds = env_int("DATABASE_STATEMENT_TIMEOUT", DEFAULT_STATEMENT_TIMEOUT_SECONDS, minimum=0)
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return {"pool_pre_ping": True}
    # What DATABASE_URL itself says is the more specific choice and wins.
    given = parsed.query.get("options", "")
    server_options = " ".join(given) if isinstance(given, tuple) else given
    if "statement_timeout" not in server_options:
        # A startup parameter of the session: no extra statement per request or transaction.
        server_options = f"{server_options} -c statement_timeout={statement_seconds * 1000}".strip()
    connect_args: dict[str, Any] = {"options": server_options}
    if "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = connect_seconds
    # No pool_pre_ping: a connection the server closed is found without a round trip
    # (extensions.replace_connection_closed_by_server).
    return {"pool_timeout": pool_seconds, "connect_args": connect_args}


def secret_key(instance_path: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in instance/."""
    from_env = os.environ.get("SECRET_KEY")
    if from_env:
        return from_env
    key_file = instance_path / "secret_key"
    if key_file.exists():
        key = key_file.read_text().strip()
        if key:
            return key
    # Written whole to a private temporary file, then linked into place: the key file never
    # exists half-written, and of two workers starting at once the first link wins for both.
    temporary = instance_path / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    try:
        if key_file.exists():
            os.replace(temporary, key_file)  # an empty file left by an older, crashed start
        else:
            os.link(temporary, key_file)
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)
    return key_file.read_text().strip()


def public_base_url(raw: str | None) -> str | None:
    """PUBLIC_BASE_URL without its trailing slash: an http(s) URL with a host, or a clear error at start-up."""
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise RuntimeError(f"PUBLIC_BASE_URL must look like https://artifacts.example.com, got {raw!r}")
    return value


DEFAULT_TRUSTED_HOSTS = ("localhost", "127.0.0.1", "::1")


def trusted_hosts(raw: str | None, base_url: str | None) -> list[str]:
    """TRUSTED_HOSTS (comma-separated host names, port ignored, a leading dot for subdomains); by default
    the host of PUBLIC_BASE_URL when it is set, else only the local names `make run` and the tests use."""
    names = [name.strip().lower() for name in (raw or "").split(",") if name.strip()]
    if names:
        return names
    if base_url:
        return [str(urlsplit(base_url).hostname)]
    return list(DEFAULT_TRUSTED_HOSTS)


def load_settings(instance_path: Path) -> dict[str, Any]:
    """Every setting the app reads, from the environment, with its default."""
    url = database_url(os.environ.get("DATABASE_URL"), instance_path)
    return {
        "SECRET_KEY": secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(url),
        "PRICES_FILE": os.environ.get("PRICES_FILE") or None,
        "SIGNUP_ENABLED": env_flag("SIGNUP_ENABLED", default=False),
        "RENDER_LIMIT_BYTES": env_int("RENDER_LIMIT_BYTES", 64 * 1024),
        # Wall time one markdown render may take before the output is shown as plain text.
        "RENDER_TIME_BUDGET_MS": env_int("RENDER_TIME_BUDGET_MS", 1000),
        # How much of each side a comparison diffs; diffing.py bounds the work within it.
        "COMPARE_LIMIT_CHARS": env_int("COMPARE_LIMIT_CHARS", 256 * 1024),
        # At most 100 MiB: on PostgreSQL a request's runs reach the database as one jsonb document of
        # up to twice the body (a final output is stored twice), and jsonb holds at most 256 MB.
        "MAX_CONTENT_LENGTH": env_int("MAX_CONTENT_LENGTH", 16 * 1024 * 1024, maximum=100 * 1024 * 1024),
        # What one run may hold (names, outputs, steps, variables): see limits.py.
        **{name: env_int(name, spec.default) for name, spec in LIMITS.items()},
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI") or None,
        "CACHE_REDIS_URL": os.environ.get("CACHE_REDIS_URL") or None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Secure cookies everywhere except a local http://127.0.0.1 demo, which opts out explicitly.
        "SESSION_COOKIE_SECURE": not env_flag("INSECURE_COOKIES", default=False),
        # How many reverse proxies sit in front of the app; ProxyFix trusts exactly that many hops.
        # Remember-me: two weeks, not Flask-Login's default year; same flags as the session cookie.
        "REMEMBER_COOKIE_DURATION": timedelta(days=14),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": not env_flag("INSECURE_COOKIES", default=False),
        "TRUSTED_PROXIES": env_int("TRUSTED_PROXIES", 0, minimum=0),
        # Absolute URLs (the API's "url") are built from this when set, never from the request's Host.
        "PUBLIC_BASE_URL": public_base_url(os.environ.get("PUBLIC_BASE_URL")),
        # Checked by artifacts_app/urls.py, not by Flask's own TRUSTED_HOSTS (see there why).
        "ALLOWED_HOSTS": trusted_hosts(
            os.environ.get("TRUSTED_HOSTS"), public_base_url(os.environ.get("PUBLIC_BASE_URL"))
        ),
    }
