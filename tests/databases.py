"""Test databases: a migrated SQLite template copied per test, and a PostgreSQL database per worker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import make_url

POSTGRES_URL_VARIABLE = "TEST_DATABASE_URL"


def postgres_base_url() -> str | None:
    """TEST_DATABASE_URL with the psycopg 3 driver made explicit, or None when it is unset."""
    raw = os.environ.get(POSTGRES_URL_VARIABLE)
    if not raw:
        return None
    url = make_url(raw)
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def in_ci() -> bool:
    """Under CI=true the PostgreSQL tests must run, never skip."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@contextmanager
def admin_connection(base_url: str) -> Iterator[sa.Connection]:
    """An autocommit connection to the server (CREATE/DROP DATABASE cannot run in a transaction)."""
    engine = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def create_postgres_database(base_url: str, name: str | None = None) -> str:
    """A new empty database on the test server (dropped first if it exists); its URL."""
    name = name or f"artifacts_scratch_{uuid.uuid4().hex[:12]}"
    with admin_connection(base_url) as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(base_url: str, url: str) -> None:
    """Drop a database made by create_postgres_database."""
    name = make_url(url).database
    with admin_connection(base_url) as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
